"""gpuledger dashboard entry point: routing only (pages live in dashboard/pages/)."""

import streamlit as st

st.set_page_config(page_title="gpuledger", page_icon=":material/memory:", layout="wide")

pages = [
    st.Page(
        "dashboard/pages/overview.py", title="Overview", icon=":material/dashboard:", default=True
    ),
    st.Page("dashboard/pages/live.py", title="Live", icon=":material/monitor_heart:"),
    st.Page(
        "dashboard/pages/data_health.py", title="Data health", icon=":material/health_and_safety:"
    ),
    st.Page("dashboard/pages/settings.py", title="Settings", icon=":material/settings:"),
]
st.navigation(pages).run()
