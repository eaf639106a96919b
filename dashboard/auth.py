"""Who may look at the dashboard ([dashboard] auth in the configuration; docs/dashboard.md).

- none: no login; the server binds to 127.0.0.1 by default, so only this machine sees it.
- oidc: Streamlit's built-in login (`st.login`) against the OpenID Connect provider configured in
  `.streamlit/secrets.toml` [auth].
- proxy: a trusted reverse proxy authenticates users and passes the name in a header; the header
  counts only on a connection from one of `[dashboard] trusted_proxies` (config/access.py), and
  requests without it are refused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import streamlit as st

from config.access import PEER_ENV, IpNetwork, peer_trusted


def peer_address() -> str | None:
    """The TCP peer of this session's connection as the server saw it (None when unknown).

    `st.context.ip_address` hides loopback peers (None for 127.0.0.1 and ::1), so the address
    comes from the session's client context, the one Streamlit's own code treats as the
    unforgeable peer."""
    from streamlit.runtime import exists, get_instance
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not exists():
        return None
    client = get_instance().get_client(ctx.session_id)
    context = getattr(client, "client_context", None)
    return getattr(context, "remote_ip", None)


def request_header(name: str) -> str | None:
    """A header of the request that opened this session (the WebSocket handshake)."""
    return st.context.headers.get(name)


def proxy_refusal(trusted: Sequence[IpNetwork]) -> str | None:
    """Why a proxy-mode request is refused before its header is read; None when its peer is a
    trusted proxy and the server reports real peers."""
    if any(os.environ.get(k) != v for k, v in PEER_ENV.items()):
        return (
            "the server believes X-Forwarded-For from local peers: start the dashboard with "
            "`gpuledger dashboard` (or set FORWARDED_ALLOW_IPS to an empty value)"
        )
    peer = peer_address()
    if not peer_trusted(peer, trusted):
        return f"this request comes from {peer or 'an unknown address'}, not a trusted proxy"
    return None


def current_user(mode: str, proxy_header: str, trusted: Sequence[IpNetwork] = ()) -> str | None:
    """The signed-in user's name, "" when no login is required, None when not signed in (in
    proxy mode also when the request does not come from a trusted proxy)."""
    if mode == "none":
        return ""
    if mode == "proxy":
        if proxy_refusal(trusted) is not None:
            return None
        value = request_header(proxy_header)
        return value.strip() if value and value.strip() else None
    if mode == "oidc":
        if getattr(st.user, "is_logged_in", False):
            return str(st.user.get("email") or st.user.get("name") or "signed in")
        return None
    raise ValueError(f"unknown auth mode {mode!r}")


def require_login(mode: str, proxy_header: str, trusted: Sequence[IpNetwork] = ()) -> str:
    """Stop the page with a logged-out screen unless the visitor is signed in."""
    user = current_user(mode, proxy_header, trusted)
    if user is not None:
        return user
    st.title("gpuledger")
    if mode == "oidc":
        st.info("Sign in to see your team's GPU costs.")
        if st.button("Sign in", type="primary"):
            st.login()
    else:
        refusal = proxy_refusal(trusted)
        st.error(
            f"Not authenticated: this dashboard only answers requests that carry the "
            f"{proxy_header} header set by the trusted proxy in front of it"
            + (f"; {refusal}." if refusal else ".")
        )
    st.stop()
    return ""  # unreachable: st.stop() ends the run
