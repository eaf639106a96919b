"""Filters that live in the URL (`?days=7&host=dgx-a100&workload=llm&placement=cloud`), so a view
can be shared by its address. Widgets in the sidebar read them and write them back."""

from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

DAY_CHOICES = (1, 7, 14, 30, 90, 365)  # the ledger covers all history (DESIGN.md §2)
PLACEMENTS = ("cloud", "local")


@dataclass(frozen=True)
class Filters:
    days: int = 7
    hosts: list[str] = field(default_factory=list)
    workloads: list[str] = field(default_factory=list)
    placements: list[str] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, list[str]]:
        return {"hosts": self.hosts, "workloads": self.workloads, "placements": self.placements}

    def describe(self) -> str:
        parts = [f"last {self.days} day{'s' if self.days != 1 else ''}"]
        for label, values in (
            ("host", self.hosts),
            ("workload", self.workloads),
            ("placement", self.placements),
        ):
            if values:
                parts.append(f"{label}: {', '.join(values)}")
        return " · ".join(parts)


def from_query(params, choices: dict[str, list[str]]) -> Filters:
    """Filters from query parameters, keeping only values that exist (a stale link shows all)."""
    try:
        days = int(params.get("days", 7))
    except (TypeError, ValueError):
        days = 7
    if days not in DAY_CHOICES:
        days = 7

    def pick(key: str, allowed: list[str] | tuple[str, ...]) -> list[str]:
        values = params.get_all(key) if hasattr(params, "get_all") else params.get(key, [])
        if isinstance(values, str):
            values = [values]
        return [v for v in values if v in allowed]

    return Filters(
        days=days,
        hosts=pick("host", choices.get("host", [])),
        workloads=pick("workload", choices.get("workload", [])),
        placements=pick("placement", PLACEMENTS),
    )


def sidebar(choices: dict[str, list[str]]) -> Filters:
    """Draw the filter widgets (seeded from the URL) and keep the URL in step with them."""
    current = from_query(st.query_params, choices)
    with st.sidebar:
        st.subheader("Filters")
        days = st.selectbox(
            "Time range (days)", DAY_CHOICES, index=DAY_CHOICES.index(current.days), key="f_days"
        )
        hosts = st.multiselect("Host", choices.get("host", []), default=current.hosts, key="f_host")
        workloads = st.multiselect(
            "Workload", choices.get("workload", []), default=current.workloads, key="f_workload"
        )
        placements = st.multiselect(
            "Placement", list(PLACEMENTS), default=current.placements, key="f_placement"
        )
    chosen = Filters(days=days, hosts=hosts, workloads=workloads, placements=placements)
    query: dict[str, str | list[str]] = {"days": str(chosen.days)}
    for key, values in (("host", hosts), ("workload", workloads), ("placement", placements)):
        if values:
            query[key] = values
    managed = {"days", "host", "workload", "placement"}
    for key in st.query_params:  # keep what other widgets put there (e.g. a drill-down)
        if key not in managed:
            values = st.query_params.get_all(key)
            query[key] = values if len(values) > 1 else values[0]
    st.query_params.from_dict(query)  # updates the address bar; does not rerun
    return chosen
