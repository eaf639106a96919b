"""Who can reach the dashboard (config/access.py, dashboard/auth.py): a proxy dashboard believes
its user header only from the proxy's own address, refuses to start off loopback without that
address, and a dashboard without login off loopback says so on every page."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from cli.daemon import dashboard_command, dashboard_env
from cli.main import main
from config import access
from config.settings import ConfigError, load_config
from dashboard import auth

ROOT = Path(__file__).resolve().parents[2]


def config(tmp_path: Path, dashboard: str) -> Path:
    path = tmp_path / "gpuledger.toml"
    path.write_text(
        f'[warehouse]\npath = "{tmp_path}/w.duckdb"\n'
        f'[catalog]\npath = "{ROOT}/config/catalog.csv"\n[demo]\nmode = "off"\n'
        f"[dashboard]\n{dashboard}\n"
    )
    return path


def app(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    dashboard: str,
    *,
    peer: str | None = None,
    headers: dict[str, str] | None = None,
    peer_env: bool = True,
) -> AppTest:
    """streamlit_app.py under AppTest, the session's peer address and request headers as given
    (AppTest has no connection of its own)."""
    monkeypatch.setenv("GPULEDGER_CONFIG", str(config(tmp_path, dashboard)))
    for var in ("GPULEDGER_DB", "GPULEDGER_SNAPSHOT", "GPULEDGER_SPOOL"):
        monkeypatch.delenv(var, raising=False)
    if peer_env:
        monkeypatch.setenv("FORWARDED_ALLOW_IPS", "")
    else:
        monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    monkeypatch.setattr(auth, "peer_address", lambda: peer)
    monkeypatch.setattr(auth, "request_header", lambda name: (headers or {}).get(name))
    st.cache_resource.clear()
    st.cache_data.clear()
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=30).run()


PROXY = 'auth = "proxy"\nhost = "0.0.0.0"\ntrusted_proxies = ["10.0.0.5", "192.168.7.0/24"]'
ALICE = {"X-Forwarded-User": "alice@example.com"}


def shows_pages(at: AppTest) -> bool:
    return not at.exception and [t.value for t in at.title] == ["Overview"]


@pytest.mark.parametrize("peer", ["10.0.0.5", "192.168.7.20", "::ffff:10.0.0.5"])
def test_the_header_counts_from_a_trusted_proxy(tmp_path, monkeypatch, peer):
    at = app(tmp_path, monkeypatch, PROXY, peer=peer, headers=ALICE)
    assert shows_pages(at), [e.value for e in at.error]


@pytest.mark.parametrize("peer", ["10.0.0.6", "192.168.8.1", "127.0.0.1", None])
def test_the_header_from_any_other_peer_is_refused(tmp_path, monkeypatch, peer):
    """Anyone who reaches the port can send X-Forwarded-User: from an address that is not the
    proxy's (loopback included, once the list is set; an unknown peer too) it is ignored."""
    at = app(tmp_path, monkeypatch, PROXY, peer=peer, headers=ALICE)
    assert not at.exception
    assert [t.value for t in at.title] == ["gpuledger"]  # no page content
    (error,) = at.error
    assert "Not authenticated" in error.value and "not a trusted proxy" in error.value
    assert str(peer or "an unknown address") in error.value


def test_a_trusted_proxy_without_the_header_is_still_refused(tmp_path, monkeypatch):
    at = app(tmp_path, monkeypatch, PROXY, peer="10.0.0.5", headers={})
    assert [t.value for t in at.title] == ["gpuledger"]
    assert "X-Forwarded-User" in at.error[0].value


def test_a_server_that_rewrites_peers_from_forwarded_headers_is_refused(tmp_path, monkeypatch):
    """Uvicorn takes X-Forwarded-For from loopback peers unless FORWARDED_ALLOW_IPS is empty:
    started any other way than `gpuledger dashboard`, a proxy dashboard lets nobody in."""
    at = app(tmp_path, monkeypatch, PROXY, peer="10.0.0.5", headers=ALICE, peer_env=False)
    assert [t.value for t in at.title] == ["gpuledger"]
    assert "FORWARDED_ALLOW_IPS" in at.error[0].value


def test_on_loopback_an_empty_list_trusts_loopback_only(tmp_path, monkeypatch):
    on_loopback = 'auth = "proxy"\nhost = "127.0.0.1"'
    assert shows_pages(app(tmp_path, monkeypatch, on_loopback, peer="127.0.0.1", headers=ALICE))
    assert shows_pages(app(tmp_path, monkeypatch, on_loopback, peer="::1", headers=ALICE))
    at = app(tmp_path, monkeypatch, on_loopback, peer="10.0.0.5", headers=ALICE)
    assert [t.value for t in at.title] == ["gpuledger"]


def test_a_proxy_dashboard_off_loopback_without_the_list_does_not_serve(tmp_path, monkeypatch):
    at = app(tmp_path, monkeypatch, 'auth = "proxy"\nhost = "0.0.0.0"', peer="10.0.0.5")
    assert [t.value for t in at.title] == []
    assert "trusted_proxies" in at.error[0].value


def test_and_it_refuses_to_start(tmp_path, capsys):
    """`gpuledger dashboard` and `gpuledger run --dashboard` stop before starting anything."""
    cfg_path = config(tmp_path, 'auth = "proxy"\nhost = "0.0.0.0"')
    for command in (["dashboard"], ["run", "--dashboard", "--once"]):
        assert main([*command, "--config", str(cfg_path)]) == 2
        err = capsys.readouterr().err
        assert "[dashboard] auth" in err and "trusted_proxies" in err, err
    assert not (tmp_path / "w.duckdb").exists()  # the daemon did not start either
    with pytest.raises(ConfigError, match="trusted_proxies"):
        dashboard_command(load_config(cfg_path))


def test_no_login_off_loopback_warns_on_every_page_and_in_the_log(tmp_path, monkeypatch, caplog):
    at = app(tmp_path, monkeypatch, 'host = "0.0.0.0"')
    assert [t.value for t in at.title] == ["Overview"]  # allowed, but
    assert any("no login" in w.value and "0.0.0.0" in w.value for w in at.warning)
    on_loopback = app(tmp_path, monkeypatch, 'host = "127.0.0.1"')
    assert not any("no login" in w.value for w in on_loopback.warning)
    with caplog.at_level("WARNING"):
        command = dashboard_command(load_config(config(tmp_path, 'host = "0.0.0.0"')))
    assert any("no login" in r.getMessage() for r in caplog.records)
    assert command[command.index("--client.disableDataExport") + 1] == "true"


def test_the_dashboard_server_reports_real_peers(tmp_path):
    env = dashboard_env(load_config(config(tmp_path, 'auth = "proxy"')))
    assert env["FORWARDED_ALLOW_IPS"] == ""  # uvicorn believes no X-Forwarded-For


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('["10.0.0.300"]', "'10.0.0.300' is neither"),
        ('["proxy.example.com"]', "'proxy.example.com' is neither"),
        ('"10.0.0.5"', "must be a list of strings"),
    ],
)
def test_trusted_proxies_are_checked_at_load_naming_the_key(tmp_path, value, problem):
    with pytest.raises(ConfigError, match=r"\[dashboard\] trusted_proxies") as err:
        load_config(config(tmp_path, f"trusted_proxies = {value}"))
    assert problem in str(err.value)


@pytest.mark.parametrize(
    ("peer", "trusted", "expected"),
    [
        ("10.0.0.5", ["10.0.0.5"], True),
        ("10.0.0.5", ["10.0.0.0/8"], True),
        ("10.0.0.5", ["10.0.1.0/24"], False),
        ("::ffff:10.0.0.5", ["10.0.0.5"], True),  # an IPv4 peer on a dual-stack socket
        ("fd00::7", ["fd00::/64"], True),
        ("fe80::1%eth0", ["fe80::/64"], True),
        ("fd00::7", ["10.0.0.0/8"], False),
        ("", ["0.0.0.0/0"], False),
        (None, ["0.0.0.0/0"], False),
        ("not-an-address", ["0.0.0.0/0"], False),
    ],
)
def test_peer_trusted(peer, trusted, expected):
    assert access.peer_trusted(peer, access.networks(trusted)) is expected


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.3.2.1", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.2", False),
        ("gpu-box.example.com", False),
    ],
)
def test_which_bind_addresses_are_loopback(host, loopback):
    assert access.is_loopback_host(host) is loopback


# A real `streamlit run`: the peer address as the server sees it -----------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dashboard(tmp: Path, trusted: str, *, peer_env: bool = True) -> Iterator[int]:
    """`gpuledger dashboard`'s own command and environment (or, `peer_env=False`, a plain
    `streamlit run` environment) on a free port of 127.0.0.1; yields the port."""
    port = free_port()
    cfg = load_config(
        config(tmp, f'auth = "proxy"\nport = {port}\ntrusted_proxies = {trusted}'), db=None
    )
    env = dashboard_env(cfg)
    if not peer_env:
        env.pop("FORWARDED_ALLOW_IPS")
    log = tmp / f"streamlit-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            dashboard_command(cfg), env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-2000:]
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def page(port: int, headers: dict[str, str]) -> list[str]:
    """What one browser session is shown: the text of each element of the first run, over
    Streamlit's own WebSocket protocol (a BackMsg asking for a run, ForwardMsgs back)."""
    import websockets
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    async def session() -> list[str]:
        url = f"ws://127.0.0.1:{port}/_stcore/stream"
        async with websockets.connect(
            url, subprotocols=["streamlit"], additional_headers=headers, max_size=None
        ) as ws:
            ask = BackMsg()
            ask.rerun_script.query_string = ""
            await ws.send(ask.SerializeToString())
            shown = []
            while True:
                msg = ForwardMsg()
                msg.ParseFromString(await asyncio.wait_for(ws.recv(), 30))
                if msg.WhichOneof("type") == "script_finished":
                    return shown
                element = msg.delta.new_element if msg.HasField("delta") else None
                kind = element.WhichOneof("type") if element is not None else None
                if kind in ("heading", "alert", "markdown"):
                    shown.append(getattr(element, kind).body)

    return asyncio.run(session())


@pytest.mark.slow
def test_a_real_server_checks_the_real_peer(tmp_path):
    """Through a real server: X-Forwarded-For does not make a local client the proxy it names,
    a server left to believe X-Forwarded-For lets nobody in, and the proxy itself gets in."""
    forged = {**ALICE, "X-Forwarded-For": "10.9.9.9"}
    with dashboard(tmp_path, '["10.9.9.9"]') as port:
        shown = page(port, forged)
    assert shown[0] == "gpuledger"
    assert "this request comes from 127.0.0.1, not a trusted proxy" in shown[1]
    with dashboard(tmp_path, '["10.9.9.9"]', peer_env=False) as port:
        shown = page(port, forged)  # uvicorn now says the peer is 10.9.9.9
    assert shown[0] == "gpuledger" and "FORWARDED_ALLOW_IPS" in shown[1]
    with dashboard(tmp_path, '["127.0.0.1"]') as port:
        assert page(port, ALICE)[0] == "Overview"
        refused = page(port, {})
    assert refused[0] == "gpuledger" and "X-Forwarded-User" in refused[1]
