"""gpuledger dashboard entry point: routing only (pages live in dashboard/pages/)."""

import streamlit as st

from dashboard import auth, data

st.set_page_config(page_title="gpuledger", page_icon=":material/memory:", layout="wide")

settings = data.effective_config().dashboard
user = auth.require_login(settings.auth, settings.proxy_header)

pages = [
    st.Page(
        "dashboard/pages/overview.py", title="Overview", icon=":material/dashboard:", default=True
    ),
    st.Page("dashboard/pages/live.py", title="Live", icon=":material/monitor_heart:"),
    st.Page("dashboard/pages/workloads.py", title="Workloads", icon=":material/table_chart:"),
    st.Page(
        "dashboard/pages/recommendations.py", title="Recommendations", icon=":material/savings:"
    ),
    st.Page("dashboard/pages/whatif.py", title="What-if", icon=":material/calculate:"),
    st.Page("dashboard/pages/alerts.py", title="Alerts", icon=":material/notifications:"),
    st.Page(
        "dashboard/pages/data_health.py", title="Data health", icon=":material/health_and_safety:"
    ),
    st.Page("dashboard/pages/settings.py", title="Settings", icon=":material/settings:"),
]
if user and settings.auth == "oidc":
    st.sidebar.caption(f"Signed in as {user}")
    st.sidebar.button("Sign out", on_click=st.logout)
st.navigation(pages).run()
