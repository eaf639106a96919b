"""The dashboard's pages, in the sidebar's order: one line each in `PAGES`.

Each page is a script in this folder (Streamlit runs it by its path) and a line here: its file,
its title (the sidebar's label and the page's `st.title`), its Material icon and its URL path.
streamlit_app.py routes exactly these, the browser test clicks through them and saves each one's
screenshot for docs/, and the dashboard benchmark times each; docs/architecture.md says how to
add a page. Nothing here imports Streamlit.
"""

from __future__ import annotations

from dataclasses import dataclass

FOLDER = "dashboard/pages"  # relative to the repository root, where streamlit_app.py is


@dataclass(frozen=True)
class Page:
    """One page: its script in this folder, title, icon and URL path (`/<url_path>`)."""

    file: str
    title: str
    icon: str
    url_path: str
    default: bool = False  # shown at `/` (its URL path still names it)

    @property
    def path(self) -> str:
        """The script's path from the repository root (what `st.Page` takes)."""
        return f"{FOLDER}/{self.file}"

    @property
    def screenshot(self) -> str:
        """The file name of its picture in docs/ (`make screenshots`)."""
        return f"screenshot-{self.title.lower().replace(' ', '-').replace('/', '-')}.png"


PAGES: tuple[Page, ...] = (
    Page("overview.py", "Overview", ":material/dashboard:", "overview", default=True),
    Page("live.py", "Live", ":material/monitor_heart:", "live"),
    Page("workloads.py", "Workloads", ":material/table_chart:", "workloads"),
    Page("recommendations.py", "Recommendations", ":material/savings:", "recommendations"),
    Page("whatif.py", "What-if", ":material/calculate:", "whatif"),
    Page("alerts.py", "Alerts", ":material/notifications:", "alerts"),
    Page("data_health.py", "Data health", ":material/health_and_safety:", "data_health"),
    Page("settings.py", "Settings", ":material/settings:", "settings"),
)
