"""gpuledger dashboard entry point: routing only (pages live in dashboard/pages/, listed in
dashboard/pages/__init__.py)."""

import streamlit as st

from config import access
from dashboard import auth, data
from dashboard.pages import PAGES

st.set_page_config(page_title="gpuledger", page_icon=":material/memory:", layout="wide")
# The tables' own CSV export writes cells as they are (a name beginning with `=` would be a
# formula in a spreadsheet); the pages' Download buttons write neutralised CSV instead.
st.set_option("client.disableDataExport", True)

settings = data.effective_config().dashboard
problem = access.startup_problem(settings.auth, settings.host, settings.trusted_proxies)
if problem:
    st.error(problem)
    st.stop()
exposed = access.exposure_warning(settings.auth, settings.host)
if exposed:
    st.warning(exposed, icon=":material/public:")
trusted = access.trusted_networks(settings.host, settings.trusted_proxies)
user = auth.require_login(settings.auth, settings.proxy_header, trusted)

pages = [
    st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=p.default)
    for p in PAGES
]
if user and settings.auth == "oidc":
    st.sidebar.caption(f"Signed in as {user}")
    st.sidebar.button("Sign out", on_click=st.logout)
st.navigation(pages).run()
