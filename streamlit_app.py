"""gpuledger dashboard entry point: routing only (pages live in dashboard/pages/, listed in
dashboard/pages/__init__.py)."""

import streamlit as st

from dashboard import auth, data
from dashboard.pages import PAGES

st.set_page_config(page_title="gpuledger", page_icon=":material/memory:", layout="wide")

settings = data.effective_config().dashboard
user = auth.require_login(settings.auth, settings.proxy_header)

pages = [
    st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=p.default)
    for p in PAGES
]
if user and settings.auth == "oidc":
    st.sidebar.caption(f"Signed in as {user}")
    st.sidebar.button("Sign out", on_click=st.logout)
st.navigation(pages).run()
