"""A real `streamlit run` server on the demo snapshot, driven by Debian's Chromium.

`make screenshots` runs this module with `--screenshots docs` to refresh the README's pictures.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from cli.daemon import dashboard_command, dashboard_env
from collectors import demo
from config.settings import Config
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
    """The whole Overview: Streamlit scrolls inside <main>, so grow the viewport to fit it."""
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
    spool.write_batch(server.cfg.spool_dir, "gpu_samples", frame, LIVE_HOST)

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
        page.locator('[data-testid="stSidebarNav"] a', has_text=spec.title).first.click()
        page.locator("h1", has_text=spec.title).first.wait_for(timeout=RENDER_MS)
        page.wait_for_timeout(800)  # let fragments and charts settle
        assert page.locator('[data-testid="stException"]').count() == 0, spec.title
        if not spec.default:
            assert urllib.parse.urlsplit(page.url).path == f"/{spec.url_path}", page.url
        if screenshots_dir is not None and not spec.default:  # the default: its own test
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
