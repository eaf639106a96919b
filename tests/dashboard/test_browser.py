"""A real `streamlit run` server on the demo snapshot, driven by Debian's Chromium.

`make screenshots` runs this module with `--screenshots docs` to refresh the README's pictures.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from cli.daemon import dashboard_command, dashboard_env
from collectors import demo
from config.settings import Config
from dashboard.filters import window_for
from dashboard.pages import PAGES
from tables import spool
from tests.dashboard.conftest import ROOT, OverviewFigures, overview_figures

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SERVER_START_S = 60
RENDER_MS = 30_000
LIVE_MS = 15_000
LIVE_HOST = "live-test-host"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason=f"Debian's Chromium is not installed at {CHROMIUM}"
    ),
]
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright Python package is not installed"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    cfg: Config
    log: Path


def wait_until_up(proc: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    pytest.fail(f"streamlit did not answer within {SERVER_START_S} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def server(
    live_demo_snapshot: Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    demo_snapshot = live_demo_snapshot  # the server is another process: the real clock
    port = free_port()
    cmd = dashboard_command(demo_snapshot)
    cmd[cmd.index("--server.port") + 1] = str(port)
    host = cmd[cmd.index("--server.address") + 1]
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=dashboard_env(demo_snapshot), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://{host}:{port}"
        wait_until_up(proc, url, log)
        yield Server(url, demo_snapshot, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page_errors() -> list[str]:
    """Uncaught JavaScript errors of the test's page."""
    return []


@pytest.fixture
def page(browser, server: Server, page_errors: list[str]):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    page.goto(server.url, wait_until="domcontentloaded")
    yield page
    context.close()


def host_cells(page) -> list[str]:
    """The host column of the GPUs-by-host grid (glide-data-grid keeps an accessible table of the
    rows it draws inside its canvas)."""
    return page.locator(
        '[data-testid="stDataFrame"] td[role="gridcell"][aria-colindex="1"]'
    ).all_inner_texts()


def save_screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside <main>, so grow the viewport to fit it (from
    the usual 900 px, or a long page before it would leave its height to the next picture)."""
    page.set_viewport_size({"width": 1400, "height": 900})
    page.wait_for_timeout(500)
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=stMain]');"
        " return Math.ceil(m ? m.scrollHeight : document.documentElement.scrollHeight); }"
    )
    page.set_viewport_size({"width": 1400, "height": max(900, int(height))})
    page.wait_for_timeout(1000)  # charts re-fit to the new size
    page.screenshot(path=str(path), full_page=True)


def test_overview_in_chromium(
    page, page_errors: list[str], server: Server, screenshots_dir: Path | None
) -> None:
    expected: OverviewFigures = overview_figures(server.cfg.snapshot_path)

    page.locator("h1", has_text="Overview").wait_for(timeout=RENDER_MS)

    metric = page.locator('[data-testid="stMetric"]', has_text="GPU-hours, last").first
    metric.wait_for(timeout=RENDER_MS)
    assert metric.locator('[data-testid="stMetricLabel"]').inner_text().strip() == (
        "GPU-hours, last 7 days"
    )
    value = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    assert value == expected.metrics["GPU-hours, last 7 days"]

    chart = page.locator('[data-testid="stVegaLiteChart"]').first
    chart.locator("canvas, svg.marks").first.wait_for(timeout=RENDER_MS)
    box = chart.bounding_box()
    assert box and box["width"] > 200 and box["height"] > 150, box

    page.locator('[data-testid="stDataFrame"]').wait_for(timeout=RENDER_MS)
    assert page.get_by_text(expected.as_of_caption).count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page_errors == []

    if screenshots_dir is not None:
        save_screenshot(page, screenshots_dir / PAGES[0].screenshot)


def test_live_tile_refreshes_without_reload(page, page_errors: list[str], server: Server) -> None:
    grid = page.locator('[data-testid="stDataFrame"] td[role="gridcell"]').first
    grid.wait_for(state="attached", timeout=RENDER_MS)  # canvas fallback: never "visible"
    assert LIVE_HOST not in host_cells(page)
    page.evaluate("() => { window.__gpuledgerNoReload = true; }")

    frame = demo.LiveDemo(42).tick().gpu_samples.with_columns(host=pl.lit(LIVE_HOST))
    written = spool.write_batch(server.cfg.spool_dir, "gpu_samples", frame, LIVE_HOST)
    try:
        _see_the_live_host(page, page_errors, server)
    finally:  # back-dated: the live views (and the Live page's picture) leave the test host out
        old = time.time() - 3600
        os.utime(written, (old, old))


def _see_the_live_host(page, page_errors: list[str], server: Server) -> None:
    cell = page.locator(
        '[data-testid="stDataFrame"] td[role="gridcell"][aria-colindex="1"]', has_text=LIVE_HOST
    ).first
    try:
        cell.wait_for(state="attached", timeout=LIVE_MS)
    except playwright_api.TimeoutError:
        captions = page.locator('[data-testid="stCaptionContainer"]').all_inner_texts()
        pytest.fail(
            f"{LIVE_HOST} not in the GPUs-by-host table {LIVE_MS / 1000:.0f} s after the spool"
            f" write; hosts shown: {sorted(set(host_cells(page)))}; captions: {captions};"
            f" JS errors: {page_errors}; server log:\n{server.log.read_text()[-2000:]}"
        )
    assert page.get_by_text("live from the spool", exact=False).count() == 1
    assert page.evaluate("() => window.__gpuledgerNoReload === true"), "the page was reloaded"
    assert page_errors == []


def write_live_fleet(server: Server) -> None:
    """A fresh tick of the whole demo fleet in the spool, as its agents would have written it
    a second ago (the seeded history is back-dated), so the Live page's picture shows the fleet
    rather than whatever host another test wrote."""
    batch = demo.LiveDemo(7).tick()
    for kind, frame in (
        ("gpu_samples", batch.gpu_samples),
        ("process_samples", batch.process_samples),
    ):
        for (host,), part in frame.group_by("host"):
            spool.write_batch(server.cfg.spool_dir, kind, part, str(host))


def test_navigation_reaches_every_page_without_an_error(
    page, page_errors: list[str], server: Server, screenshots_dir: Path | None
) -> None:
    """Click through every page in the sidebar; each draws its title and no exception."""
    page.locator("h1", has_text="Overview").wait_for(timeout=RENDER_MS)
    links = page.locator('[data-testid="stSidebarNav"] a')
    links.first.wait_for(timeout=RENDER_MS)
    names = [t.strip().splitlines()[-1].strip() for t in links.all_inner_texts()]
    assert names == [p.title for p in PAGES]  # the registry, in its order
    for spec in PAGES:
        if screenshots_dir is not None and spec.url_path == "live":
            write_live_fleet(server)
        page.locator('[data-testid="stSidebarNav"] a', has_text=spec.title).first.click()
        page.locator("h1", has_text=spec.title).first.wait_for(timeout=RENDER_MS)
        page.wait_for_timeout(800)  # let fragments and charts settle
        assert page.locator('[data-testid="stException"]').count() == 0, spec.title
        if not spec.default:
            assert urllib.parse.urlsplit(page.url).path == f"/{spec.url_path}", page.url
        if screenshots_dir is not None and not spec.default:  # the default: its own test
            if spec.url_path == "workloads":  # the picture shows a drill-down too
                page.goto(f"{server.url}/workloads?focus=llm-pretrain")
                chart(page, "llm-pretrain: cost per day (USD)")
            save_screenshot(page, screenshots_dir / spec.screenshot)
    assert page_errors == []


def test_a_filter_taken_from_the_url(browser, server: Server) -> None:
    """A shared address reproduces the view: only cloud spend, over 30 days."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(f"{server.url}?days=30&placement=cloud", wait_until="domcontentloaded")
    local = page.locator('[data-testid="stMetric"]', has_text="Local cost, last 30 days").first
    local.wait_for(timeout=RENDER_MS)
    assert local.locator('[data-testid="stMetricValue"]').inner_text().strip() == "$0"
    cloud = page.locator('[data-testid="stMetric"]', has_text="Cloud spend, last 30 days").first
    assert cloud.locator('[data-testid="stMetricValue"]').inner_text().strip() != "$0"
    assert "placement=cloud" in page.url and "days=30" in page.url
    context.close()


# Charts and filters that hold (issue 15) ---------------------------------------------------------
def today_utc() -> date:
    return datetime.now(UTC).date()


def days_text(first: date, last: date) -> list[str]:
    """Axis labels of the days from `first` to `last` ("Nov 27"), as dashboard/charts.py
    writes them within one year."""
    return [f"{first + timedelta(days=i):%b %d}" for i in range((last - first).days + 1)]


def goto(page, server: Server, path: str, title: str) -> None:
    page.goto(f"{server.url}{path}", wait_until="domcontentloaded")
    page.locator("h1", has_text=title).first.wait_for(timeout=RENDER_MS)


def chart(page, title: str):
    """The Vega-Lite chart whose title is `title`, once drawn (Streamlit draws SVG here)."""
    found = page.locator('[data-testid="stVegaLiteChart"]').filter(
        has=page.locator("svg text", has_text=title)
    )
    found.first.locator("svg.marks").wait_for(timeout=RENDER_MS)
    return found.first


def x_labels(chart_box) -> list[str]:
    """The x axis's labels in drawing order (the first axis Vega draws is x)."""
    axis = chart_box.locator('[aria-roledescription="axis"]').first
    return axis.locator(".role-axis-label text").all_text_contents()


def wait_for(predicate, what: str, timeout_s: float = RENDER_MS / 1000) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} within {timeout_s:.0f} s")


def pick(page, label: str, option: str) -> None:
    """Choose `option` in the sidebar's selectbox or multiselect labelled `label`."""
    widget = page.locator(
        '[data-testid="stSidebar"] [data-testid="stSelectbox"],'
        ' [data-testid="stSidebar"] [data-testid="stMultiSelect"]'
    ).filter(has_text=label)
    widget.first.click()
    page.get_by_role("option", name=option, exact=True).first.click()
    page.locator("h1").first.click()  # leaving the widget commits the choice (a rerun)


def test_daily_axes_keep_the_order_of_days_after_the_range_changes(page, server: Server) -> None:
    """The issue: after 7 -> 30 days the axis read Nov 26 … Dec 03, Nov 19 … Nov 25. Here the
    axis lists the window's days in calendar order, 7 for "Last 7 days", then 30."""
    spend = chart(page, "Spend per day (USD)")
    today = today_utc()
    assert x_labels(spend) == days_text(today - timedelta(days=6), today)  # 7 bars, not 8

    pick(page, "Time range", "Last 30 days")
    wait_for(lambda: len(x_labels(chart(page, "Spend per day (USD)"))) == 30, "30 days drawn")
    for title in ("Spend per day (USD)", "GPU-hours per day"):
        assert x_labels(chart(page, title)) == days_text(today - timedelta(days=29), today)
    assert "days=30" in page.url


def test_the_wasted_per_workload_bars_keep_their_height(page, server: Server) -> None:
    """The issue: the Alerts chart collapsed to a 1 px line. Each workload's bar is drawn at
    least 20 px high (charts.BAR_STEP is 30 px a band, the bar most of it)."""
    goto(page, server, "/alerts", "Alerts")
    bars = chart(page, "Wasted USD per workload").locator("g.role-mark path")
    wait_for(lambda: bars.count() > 0, "the wasted-per-workload bars drawn")
    heights = [box["height"] for box in (b.bounding_box() for b in bars.all()) if box]
    assert heights and min(heights) >= 20, heights


def test_the_filters_hold_from_page_to_page(page, server: Server) -> None:
    """A host and a time range chosen on the Overview are still chosen on the Workloads and
    Alerts pages, reached through the sidebar's links, and in their addresses."""
    chart(page, "Spend per day (USD)")
    host = sorted(h for h, _ in overview_figures(server.cfg.snapshot_path).gpus)[0]
    span = window_for("14", today_utc()).span()  # "Nov 20 – Dec 03, 2026" under the range
    pick(page, "Time range", "Last 14 days")
    wait_for(lambda: "days=14" in page.url, "days=14 in the address")
    pick(page, "Host", host)
    wait_for(lambda: f"host={host}" in page.url, f"host={host} in the address")
    for spec in PAGES:
        if spec.url_path not in ("workloads", "alerts", "overview"):
            continue
        page.locator('[data-testid="stSidebarNav"] a', has_text=spec.title).first.click()
        page.locator("h1", has_text=spec.title).first.wait_for(timeout=RENDER_MS)
        sidebar = page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text(f"{span} (UTC)").first.wait_for(timeout=RENDER_MS)  # 14 days
        chosen = sidebar.locator('[data-testid="stMultiSelect"]').filter(has_text="Host")
        assert host in chosen.first.inner_text(), spec.title
        wait_for(lambda: f"host={host}" in page.url and "days=14" in page.url, spec.title)


def test_focus_in_the_address_scrolls_to_the_drill_down(page, server: Server) -> None:
    workload = "llm-pretrain"  # a workload of the demo fleet
    goto(page, server, f"/workloads?focus={workload}", "Workloads")
    heading = page.locator("h3", has_text="Drill down into one workload")
    heading.wait_for(timeout=RENDER_MS)
    chart(page, f"{workload}: cost per day (USD)")

    def in_view() -> bool:
        box = heading.bounding_box()
        return bool(box) and 0 <= box["y"] < 900 / 2

    wait_for(in_view, "the drill-down's heading in the top half of the window")
    scrolled = page.evaluate(
        "() => document.querySelector('[data-testid=stMain]').scrollTop"
        " || document.documentElement.scrollTop"
    )
    assert scrolled > 300, scrolled


def test_the_hourly_axis_is_utc_whatever_the_browser_zone(browser, server: Server) -> None:
    """In Los Angeles (UTC-8) the issue's axis read "12 PM" seven times in local time. The busy
    fraction's axis is UTC: one label per UTC midnight, from the window's first day to the
    midnight after its last, with dates."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, timezone_id="America/Los_Angeles"
    )
    try:
        page = context.new_page()
        goto(page, server, "/workloads?days=7&focus=llm-pretrain", "Workloads")
        busy = chart(page, "llm-pretrain: busy fraction per hour")
        today = today_utc()
        assert x_labels(busy) == days_text(today - timedelta(days=6), today + timedelta(days=1))
    finally:
        context.close()


def table_cells(page) -> list[str]:
    return page.locator('[data-testid="stDataFrame"] td[role="gridcell"]').all_inner_texts()


def test_no_table_shows_none(page, server: Server) -> None:
    """Every table of every page: unknown is "—", never Python's None. Streamlit's grid draws a
    null cell as a grey "None" on its canvas and leaves the cell of its accessible table (what
    a browser test can read) empty, so an empty cell counts as a None drawn. The grid also leaves
    empty the cells of a column it shows only in part at the right edge, so the window is wide
    enough here for every column of the widest table (Recommendations, 14 columns)."""
    page.set_viewport_size({"width": 2800, "height": 900})
    shown: dict[str, int] = {}
    nulls: dict[str, list[str]] = {}
    for spec in PAGES:
        goto(page, server, f"/{spec.url_path}", spec.title)
        page.wait_for_timeout(1500)  # let fragments and tables settle
        cells = page.locator('[data-testid="stDataFrame"] td[role="gridcell"]').evaluate_all(
            "cells => cells.map(c => [c.id, c.innerText.trim()])"
        )
        shown[spec.title] = len(cells)
        bad = [cell_id for cell_id, text in cells if text in ("", "None")]
        if bad:
            heads = page.locator('[data-testid="stDataFrame"] th').all_inner_texts()
            nulls[spec.title] = [*bad[:10], f"headings: {heads[:40]}"]
    assert not nulls, "; ".join(f"{title}: {cells}" for title, cells in nulls.items())
    assert sum(shown.values()) > 50, shown  # the tables were drawn


def test_waste_is_the_same_on_overview_alerts_and_the_report(page, server: Server) -> None:
    """This week so far: the Overview's and the Alerts page's wasted money for "This week" and
    the weekly report's waste for the ISO week are the same stored rows."""
    from advisor.report import build_report, week_of
    from cli import app
    from warehouse.snapshot import Snapshot

    now = datetime.now(UTC)
    snap = Snapshot(server.cfg.snapshot_path)
    try:
        rep = build_report(snap, server.cfg, app.catalog_for(server.cfg), week_of(now), now=now)
    finally:
        snap.close()
    assert rep.waste_usd > 0  # the demo notebook's idle H100
    shown = {}
    for path, title in (("/?period=this_week", "Overview"), ("/alerts?period=this_week", "Alerts")):
        goto(page, server, path, title)
        tile = page.locator('[data-testid="stMetric"]', has_text="Wasted, this week").first
        tile.wait_for(timeout=RENDER_MS)
        shown[title] = tile.locator('[data-testid="stMetricValue"]').inner_text().strip()
    assert shown == {"Overview": f"${rep.waste_usd:,.0f}", "Alerts": f"${rep.waste_usd:,.2f}"}
