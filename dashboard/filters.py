"""The filters the pages with figures share: a time range (the last N days, a calendar week or
month, custom dates), hosts, workloads, placements, and a comparison with the previous period.

They live in the address, so a view can be shared by it:
`?days=30&host=dgx-a100&workload=llm&placement=cloud`, `?period=last_month`,
`?from=2026-11-01&to=2026-11-15`, each with `&compare=1` for the previous period beside it. They
also live in the session, so they hold from page to page (the sidebar's page links carry no query
string): a page takes them from its address when that names any the session did not write (a
shared link, an edited address), else from the session, and writes both back.

Days are UTC calendar days, `start` to `end` both included: "last 7 days" is today and the six
before it, seven bars on a daily chart.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta

import polars as pl
import streamlit as st

DAY_CHOICES = (1, 7, 14, 30, 90, 365)  # the ledger covers all history (DESIGN.md §2)
PERIODS = {
    "this_week": "this week",
    "last_week": "last week",
    "this_month": "this month",
    "last_month": "last month",
}
CUSTOM = "custom"
# The time range selectbox: "7" (the last 7 days), a calendar period, or custom dates.
RANGES: tuple[str, ...] = (*(str(d) for d in DAY_CHOICES), *PERIODS, CUSTOM)
DEFAULT_RANGE = "7"
MAX_CUSTOM_DAYS = 3 * 366  # a typo'd year in an address must not scan decades of days
PLACEMENTS = ("cloud", "local")
MANAGED = ("days", "period", "from", "to", "host", "workload", "placement", "compare")
STATE = "gpuledger_filters"  # the session's copy: {"query": ..., "written": ...}
KEYS = {  # the sidebar widgets' keys
    "range": "f_range",
    "dates": "f_dates",
    "host": "f_host",
    "workload": "f_workload",
    "placement": "f_placement",
    "compare": "f_compare",
}

Query = dict[str, list[str]]


@dataclass(frozen=True)
class Window:
    """UTC calendar days `start` to `end`, both included; `label` says which in words."""

    start: date
    end: date
    label: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def since(self) -> datetime:
        """The first instant of the window (midnight UTC of `start`)."""
        return datetime.combine(self.start, time(), tzinfo=UTC)

    @property
    def until(self) -> datetime:
        """The first instant after it (midnight UTC after `end`)."""
        return datetime.combine(self.end + timedelta(days=1), time(), tzinfo=UTC)

    def day_list(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range(self.days)]

    def short_span(self) -> str:
        """`Nov 20–26`, `Oct 28–Nov 03`: the dates without the year."""
        if self.start == self.end:
            return f"{self.end:%b %d}"
        if (self.start.year, self.start.month) == (self.end.year, self.end.month):
            return f"{self.start:%b %d}–{self.end:%d}"
        return f"{self.start:%b %d}–{self.end:%b %d}"

    def span(self) -> str:
        """`Nov 27 – Dec 03, 2026`, the dates it covers."""
        if self.start == self.end:
            return f"{self.end:%b %d, %Y}"
        first = (
            f"{self.start:%b %d}" if self.start.year == self.end.year else f"{self.start:%b %d, %Y}"
        )
        return f"{first} – {self.end:%b %d, %Y}"


def _months_back(day: date, months: int = 1) -> date:
    """The same day of the month `months` earlier, clamped to that month's last day."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def window_for(range_: str, today: date, custom: tuple[date, date] | None = None) -> Window:
    """The days a range covers on `today` (UTC): "7" the last seven days including today, a
    calendar week (Monday to Sunday, this one up to today) or month, or the custom dates."""
    if range_ == CUSTOM and custom:
        start, end = custom
        return Window(start, end, Window(start, end, "").span())
    if range_ == "this_week":
        return Window(today - timedelta(days=today.weekday()), today, PERIODS[range_])
    if range_ == "last_week":
        monday = today - timedelta(days=today.weekday() + 7)
        return Window(monday, monday + timedelta(days=6), PERIODS[range_])
    if range_ == "this_month":
        return Window(today.replace(day=1), today, PERIODS[range_])
    if range_ == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return Window(end.replace(day=1), end, PERIODS[range_])
    days = int(range_) if range_.isdigit() and int(range_) in DAY_CHOICES else int(DEFAULT_RANGE)
    label = "today" if days == 1 else f"last {days} days"
    return Window(today - timedelta(days=days - 1), today, label)


def previous_window(range_: str, window: Window) -> Window:
    """The period a window is compared with: a month's the same days of the month before
    (month to date against the same days of last month, a whole month against the whole month
    before); any other the same number of days just before it."""
    if range_ in ("this_month", "last_month"):
        start = _months_back(window.start)
        whole = window.end.day == calendar.monthrange(window.end.year, window.end.month)[1]
        end = window.start - timedelta(days=1) if whole else _months_back(window.end)
    else:
        end = window.start - timedelta(days=1)
        start = end - timedelta(days=window.days - 1)
    return Window(start, end, f"previous period ({Window(start, end, '').span()})")


@dataclass(frozen=True)
class Filters:
    """What the sidebar chose; `window` the days, `previous` those it is compared with (when
    `compare`)."""

    window: Window
    range: str = DEFAULT_RANGE
    hosts: list[str] = field(default_factory=list)
    workloads: list[str] = field(default_factory=list)
    placements: list[str] = field(default_factory=list)
    compare: bool = False

    @property
    def days(self) -> int:
        return self.window.days

    @property
    def previous(self) -> Window:
        return previous_window(self.range, self.window)

    def as_kwargs(self) -> dict[str, list[str]]:
        return {"hosts": self.hosts, "workloads": self.workloads, "placements": self.placements}

    def matches(self, column: str) -> list[str]:
        """The chosen values of `host`, `workload` or `placement` (empty: all)."""
        return {"host": self.hosts, "workload": self.workloads, "placement": self.placements}[
            column
        ]

    def gpus(self, frame: pl.DataFrame, cloud_hosts: list[str]) -> pl.DataFrame:
        """GPU rows (`host`, `workload`) the filters keep: their hosts, their workloads (a GPU
        counts for the workload it runs now), their placements (cloud: a host the bills name as
        an instance)."""
        if self.hosts:
            frame = frame.filter(pl.col("host").is_in(self.hosts))
        if self.workloads:
            frame = frame.filter(pl.col("workload").is_in(self.workloads))
        if self.placements:
            placement = pl.when(pl.col("host").is_in(cloud_hosts)).then(pl.lit("cloud"))
            frame = frame.filter(placement.otherwise(pl.lit("local")).is_in(self.placements))
        return frame

    def describe(self) -> str:
        parts = [f"{self.window.label} ({self.window.span()}, UTC)"]
        for label, values in (
            ("host", self.hosts),
            ("workload", self.workloads),
            ("placement", self.placements),
        ):
            if values:
                parts.append(f"{label}: {', '.join(values)}")
        if self.compare:
            parts.append(f"compared with {self.previous.span()}")
        return " · ".join(parts)

    def query(self) -> Query:
        """The address's parameters for these filters (only what differs from showing all)."""
        if self.range == CUSTOM:
            out: Query = {
                "from": [self.window.start.isoformat()],
                "to": [self.window.end.isoformat()],
            }
        elif self.range in PERIODS:
            out = {"period": [self.range]}
        else:
            out = {"days": [self.range]}
        for key, values in (
            ("host", self.hosts),
            ("workload", self.workloads),
            ("placement", self.placements),
        ):
            if values:
                out[key] = list(values)
        if self.compare:
            out["compare"] = ["1"]
        return out


def normalized(params: Mapping) -> Query:
    """Query parameters (Streamlit's, or a plain mapping) as name -> list of values, only the
    filters' names."""
    out: Query = {}
    for key in MANAGED:
        if key not in params:
            continue
        values = params.get_all(key) if hasattr(params, "get_all") else params.get(key)
        if isinstance(values, str):
            values = [values]
        out[key] = [str(v) for v in values or []]
    return out


def _custom_dates(query: Query, today: date) -> tuple[date, date] | None:
    try:
        start = date.fromisoformat(query["from"][0])
        end = min(date.fromisoformat(query["to"][0]), today)
    except (KeyError, IndexError, ValueError):
        return None
    if start > end or (end - start).days >= MAX_CUSTOM_DAYS:
        return None
    return start, end


def _range(query: Query, today: date) -> tuple[str, tuple[date, date] | None]:
    """The range the parameters name: custom dates, else a period, else days, else the
    default; a value that makes no sense falls back to the default."""
    custom = _custom_dates(query, today)
    if custom:
        return CUSTOM, custom
    period = (query.get("period") or [""])[0]
    if period in PERIODS:
        return period, None
    days = (query.get("days") or [""])[0].strip()
    if days.isdigit() and int(days) in DAY_CHOICES:
        return str(int(days)), None
    return DEFAULT_RANGE, None


def from_query(params: Mapping, choices: Mapping[str, list[str]], today: date) -> Filters:
    """Filters from query parameters, keeping only values that exist (a stale link shows all)."""
    query = normalized(params)
    range_, custom = _range(query, today)

    def pick(key: str, allowed: list[str] | tuple[str, ...]) -> list[str]:
        return [v for v in query.get(key, []) if v in allowed]

    return Filters(
        window=window_for(range_, today, custom),
        range=range_,
        hosts=pick("host", choices.get("host", [])),
        workloads=pick("workload", choices.get("workload", [])),
        placements=pick("placement", PLACEMENTS),
        compare=(query.get("compare") or [""])[0].lower() in ("1", "true", "yes"),
    )


def today_utc() -> date:
    return datetime.now(UTC).date()


def _from_widgets(old: Filters, today: date) -> Filters:
    """The filters as the sidebar's widgets now hold them (in a widget's callback)."""
    state = st.session_state
    range_ = state.get(KEYS["range"], old.range)
    custom = None
    if range_ == CUSTOM:
        picked = state.get(KEYS["dates"])  # a range being picked holds one date: keep the old
        if isinstance(picked, (tuple, list)) and len(picked) == 2 and all(picked):
            custom = (picked[0], min(picked[1], today))
        else:
            custom = (old.window.start, old.window.end)
    return replace(
        old,
        range=range_,
        window=window_for(range_, today, custom),
        hosts=list(state.get(KEYS["host"], old.hosts)),
        workloads=list(state.get(KEYS["workload"], old.workloads)),
        placements=list(state.get(KEYS["placement"], old.placements)),
        compare=bool(state.get(KEYS["compare"], old.compare)),
    )


def _remember(choices: Mapping[str, list[str]], today: date) -> None:
    """A sidebar widget changed: the session keeps the new filters (the address still holds
    the old ones until this run writes it, which must not win over the change)."""
    saved = st.session_state.setdefault(STATE, {"query": {}, "written": {}})
    old = from_query(saved["query"], choices, today)
    saved["query"] = _from_widgets(old, today).query()


def current(choices: Mapping[str, list[str]], today: date) -> Filters:
    """The address's filters when it names any the session did not write (a shared link, an
    edited address), else the session's, else the defaults."""
    saved = st.session_state.get(STATE)
    url = normalized(st.query_params)
    if saved is None or (url and url != saved["written"]):
        return from_query(url, choices, today)
    return from_query(saved["query"], choices, today)


def _seed_widgets(chosen: Filters) -> None:
    """Every run sets the widgets to the chosen filters (before they are drawn), so a page
    opened from another shows the session's filters and a shared link its own."""
    state = st.session_state
    state[KEYS["range"]] = chosen.range
    state[KEYS["dates"]] = (chosen.window.start, chosen.window.end)
    state[KEYS["host"]] = chosen.hosts
    state[KEYS["workload"]] = chosen.workloads
    state[KEYS["placement"]] = chosen.placements
    state[KEYS["compare"]] = chosen.compare


def range_label(range_: str) -> str:
    if range_ == CUSTOM:
        return "Custom dates"
    if range_ in PERIODS:
        return PERIODS[range_].capitalize()
    return "Today" if range_ == "1" else f"Last {range_} days"


def _draw(choices: Mapping[str, list[str]], chosen: Filters, today: date) -> None:
    remember = (choices, today)  # each widget's change goes to the session first (_remember)
    with st.sidebar:
        st.subheader("Filters")
        st.selectbox(
            "Time range",
            RANGES,
            format_func=range_label,
            key=KEYS["range"],
            on_change=_remember,
            args=remember,
        )
        if chosen.range == CUSTOM:
            st.date_input(
                "From – to (UTC days)",
                max_value=today,
                key=KEYS["dates"],
                format="YYYY-MM-DD",
                on_change=_remember,
                args=remember,
            )
        st.caption(f"{chosen.window.span()} (UTC)")
        st.toggle(
            "Compare with the previous period",
            key=KEYS["compare"],
            help="the same days of the month before for a month, else the same number of"
            " days just before",
            on_change=_remember,
            args=remember,
        )
        for name, label in (("host", "Host"), ("workload", "Workload")):
            st.multiselect(
                label, choices.get(name, []), key=KEYS[name], on_change=_remember, args=remember
            )
        st.multiselect(
            "Placement", list(PLACEMENTS), key=KEYS["placement"], on_change=_remember, args=remember
        )


def _write_address(chosen: Filters) -> None:
    """The address shows the filters (and keeps what other widgets put there, e.g. `focus`)."""
    query: dict[str, str | list[str]] = {}
    for key, values in chosen.query().items():
        query[key] = (
            values if len(values) > 1 or key in ("host", "workload", "placement") else values[0]
        )
    for key in st.query_params:
        if key not in MANAGED:
            values = st.query_params.get_all(key)
            query[key] = values if len(values) > 1 else values[0]
    st.query_params.from_dict(query)  # updates the address bar; does not rerun
    st.session_state[STATE] = {"query": chosen.query(), "written": normalized(st.query_params)}


def sidebar(choices: Mapping[str, list[str]], today: date | None = None) -> Filters:
    """Draw the filter widgets (seeded from the address or the session) and keep the address
    and the session in step with them."""
    today = today or today_utc()
    chosen = current(choices, today)
    _seed_widgets(chosen)
    _draw(choices, chosen, today)
    _write_address(chosen)
    return chosen


def compared(
    chosen: Filters,
    now: float | None,
    before: float | None,
    fmt: str,
    *,
    better: str | None = "lower",
) -> dict:
    """`st.metric`'s delta arguments for a figure beside the same figure of the previous period
    (none unless the filters compare): `+$1,234 (+12 %)` against its dates; green where the
    change is `better` ("lower": money, "higher"), grey where it is neither (None)."""
    if not chosen.compare or now is None or before is None:
        return {}
    change = now - before
    words = f"vs {chosen.previous.short_span()}"
    if round(change, 6) == 0:
        return {"delta": 0, "delta_description": words}
    text = ("-" if change < 0 else "+") + fmt.format(abs(change))
    if before:
        text += f" ({change / before:+.0%})".replace("%", " %")
    color = {"lower": "inverse", "higher": "normal"}.get(better or "", "off")
    return {"delta": text, "delta_color": color, "delta_description": words}
