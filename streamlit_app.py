"""gpuledger dashboard entry point: routing only (pages live in dashboard/pages/)."""

import streamlit as st

st.set_page_config(page_title="gpuledger", page_icon=":material/memory:", layout="wide")

pages = [
    st.Page(
        "dashboard/pages/overview.py", title="Overview", icon=":material/dashboard:", default=True
    ),
]
st.navigation(pages).run()
