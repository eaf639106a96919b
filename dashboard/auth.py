"""Who may look at the dashboard ([dashboard] auth in the configuration; docs/dashboard.md).

- none: no login; the server binds to 127.0.0.1 by default, so only this machine sees it.
- oidc: Streamlit's built-in login (`st.login`) against the OpenID Connect provider configured in
  `.streamlit/secrets.toml` [auth].
- proxy: a trusted reverse proxy authenticates users and passes the name in a header; requests
  without it are refused. Only safe when the dashboard is reachable through that proxy alone.
"""

from __future__ import annotations

import streamlit as st


def current_user(mode: str, proxy_header: str) -> str | None:
    """The signed-in user's name, "" when no login is required, None when not signed in."""
    if mode == "none":
        return ""
    if mode == "proxy":
        value = st.context.headers.get(proxy_header)
        return value.strip() if value and value.strip() else None
    if mode == "oidc":
        if getattr(st.user, "is_logged_in", False):
            return str(st.user.get("email") or st.user.get("name") or "signed in")
        return None
    raise ValueError(f"unknown auth mode {mode!r}")


def require_login(mode: str, proxy_header: str) -> str:
    """Stop the page with a logged-out screen unless the visitor is signed in."""
    user = current_user(mode, proxy_header)
    if user is not None:
        return user
    st.title("gpuledger")
    if mode == "oidc":
        st.info("Sign in to see your team's GPU costs.")
        if st.button("Sign in", type="primary"):
            st.login()
    else:
        st.error(
            f"Not authenticated: this dashboard only answers requests that carry the "
            f"{proxy_header} header set by the trusted proxy in front of it."
        )
    st.stop()
    return ""  # unreachable: st.stop() ends the run
