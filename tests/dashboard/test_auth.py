"""Who may look: none by default, Streamlit's OIDC login, or a trusted proxy header."""

from __future__ import annotations

import os
import types

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from config import access
from dashboard import auth

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _app_with(tmp_path, monkeypatch, mode: str) -> AppTest:
    conf = tmp_path / "gpuledger.toml"
    conf.write_text(
        f'[warehouse]\npath = "{tmp_path}/w.duckdb"\n[dashboard]\nauth = "{mode}"\n'
        f'[catalog]\npath = "{ROOT}/config/catalog.csv"\n'
    )
    monkeypatch.setenv("GPULEDGER_CONFIG", str(conf))
    for var in ("GPULEDGER_DB", "GPULEDGER_SNAPSHOT", "GPULEDGER_SPOOL"):
        monkeypatch.delenv(var, raising=False)
    st.cache_resource.clear()
    st.cache_data.clear()
    return AppTest.from_file(os.path.join(ROOT, "streamlit_app.py"), default_timeout=30).run()


def test_no_login_by_default_shows_the_pages(tmp_path, monkeypatch):
    at = _app_with(tmp_path, monkeypatch, "none")
    assert not at.exception
    assert at.title[0].value == "Overview"


def test_proxy_mode_refuses_a_request_without_the_header(tmp_path, monkeypatch):
    at = _app_with(tmp_path, monkeypatch, "proxy")
    assert not at.exception
    assert "Not authenticated" in at.error[0].value and "X-Forwarded-User" in at.error[0].value
    assert [t.value for t in at.title] == ["gpuledger"]  # no page content leaked


def test_oidc_mode_logged_out_offers_sign_in_only(tmp_path, monkeypatch):
    at = _app_with(tmp_path, monkeypatch, "oidc")
    assert not at.exception
    assert at.button[0].label == "Sign in"
    assert "Sign in" in at.info[0].value
    assert not at.metric


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Forwarded-User": "alice@example.com"}, "alice@example.com"),
        ({}, None),
        ({"X-Forwarded-User": "  "}, None),
    ],
)
def test_proxy_user_comes_from_the_configured_header(monkeypatch, headers, expected):
    monkeypatch.setattr(auth.st, "context", types.SimpleNamespace(headers=headers))
    monkeypatch.setattr(auth, "peer_address", lambda: "127.0.0.1")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "")
    loopback = access.networks(access.LOOPBACK)
    assert auth.current_user("proxy", "X-Forwarded-User", loopback) == expected
    assert auth.current_user("none", "X-Forwarded-User") == ""
