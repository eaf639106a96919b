"""Dashboard in the browser: how long each page takes to be drawn in Chromium, on the demo fleet.

The warehouse holds the demo fleet as `make run` seeds it (14 days at one sample every 10 s, 25
GPUs on 6 hosts), its first alert check has run, and the snapshot is published; the agents'
spool files are back-dated and each host has written a fresh tick, as the live views meet them.
`streamlit run` serves it as `gpuledger dashboard` does; Debian's Chromium (Playwright, headless,
1440 × 900) opens each page of the registry (dashboard/pages/__init__.py) by its address.

A page is drawn when its title is there, its script has finished (Streamlit's script state), no
placeholder is left (`stSkeleton`: a chart or table whose code is still loading) and every chart
on the first screen (1440 × 900) has its marks (SVG or canvas) and every table there its canvas:
what a reader sees before scrolling (Streamlit draws a table below the fold, or a chart or table
inside a closed expander, only when it comes into view). The time is the browser's own, from the
start of the navigation (`performance.now()`): the HTML, the websocket, the page's script on the
server (its reads of the snapshot, the frames, the chart specifications) and the drawing. Each
load is a full load in a fresh tab (a new session), with the browser's cache of the app's code
and the server's data cache (10 s) warm, as for any visitor but the very first; that first, cold
load of each page is noted beside it. Median of 5 loads.

The goal (1 s) is missed here, and this machine cannot show it met: the reference line, a
Streamlit app holding nothing but its title under the same server settings, takes 1.0-1.3 s by
itself (the app's code, the websocket session, the script run and Chromium's drawing on 2 shared
cores). The pages take about 0.5 to 1.5 s more than that (1.5-2.6 s); their scripts take 0.1-0.2
s on the server (the dashboard section's AppTest figures), so the rest is the browser drawing
their tables and charts and the sidebar's filters. A table counts as on show only outside a
closed expander (`details` without `open`): Streamlit keeps a closed expander's tables in the
page, laid out but never drawn, and counting them once made the Live page's first load look 30 s
long.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.run import ROOT, Result

PAGE_GOAL_MS = 1000.0
LOADS = 5
CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1440, "height": 900}
SERVER_START_S = 60
DRAWN_TIMEOUT_MS = 60_000
# What of the page `title` is not drawn yet (see the module's docstring); said in the error.
PAGE_STATE_JS = """(title) => {
  const app = document.querySelector('[data-testid="stApp"]');
  const shown = (el) => {  // on the first screen, not inside a closed expander
    const r = el.getBoundingClientRect();
    const closed = el.closest('details:not([open])');
    return !closed && el.checkVisibility() && r.top < window.innerHeight;
  };
  const charts = [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')].filter(shown);
  const tables = [...document.querySelectorAll('[data-testid="stDataFrame"]')].filter(shown);
  return {
    script: app && app.getAttribute('data-test-script-state'),
    title: [...document.querySelectorAll('h1')].some(h => h.textContent.trim() === title),
    skeletons: document.querySelectorAll('[data-testid="stSkeleton"]').length,
    charts_without_marks: charts.filter(c => !c.querySelector('svg.marks, canvas.marks, canvas'))
      .map(c => c.getBoundingClientRect().top),
    tables_without_canvas: tables.filter(t => !t.querySelector('canvas')).length,
  };
}"""
# True once the page `title` is drawn.
DRAWN_JS = f"""(title) => {{
  const s = ({PAGE_STATE_JS})(title);
  return s.script === 'notRunning' && s.title && s.skeletons === 0
    && s.charts_without_marks.length === 0 && s.tables_without_canvas === 0;
}}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_fleet(root: Path):
    """The demo fleet as `make run` seeds it, ending now (the server reads the real clock), its
    first alert check, published; returns the configuration and the seeded counts."""
    import logging

    from advisor.alerts import AlertService
    from cli import app
    from config.settings import load_config

    logging.getLogger("gpuledger.alerts").setLevel(logging.ERROR)
    cfg = load_config(ROOT / "config" / "gpuledger.toml", db=root / "data" / "warehouse.duckdb")
    cfg = replace(cfg, alerts=replace(cfg.alerts, log=False))
    catalog = app.catalog_for(cfg)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    with app.open_warehouse(cfg) as wh:
        app.seed_demo(wh, cfg, catalog, progress=False, now=now)
        service = AlertService(cfg, catalog)
        service.run_once(wh, now=now)
        service.close()
        app.cycle(wh, cfg, catalog, force=True)
        counts = wh.counts()
    old = time.time() - 3600  # the seeded history is not what the agents wrote a second ago
    for path in cfg.spool_dir.rglob("*.parquet"):
        os.utime(path, (old, old))
    return cfg, counts


def write_live_tick(cfg) -> None:
    """One fresh tick of every demo host in the spool, as the agents write it every 5 s."""
    from collectors import demo
    from tables import spool

    batch = demo.LiveDemo(7).tick()
    for kind, frame in (
        ("gpu_samples", batch.gpu_samples),
        ("process_samples", batch.process_samples),
    ):
        for (host,), part in frame.group_by("host"):
            spool.write_batch(cfg.spool_dir, kind, part, str(host))


def start_server(cfg, log: Path, script: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`streamlit run` as `gpuledger dashboard` starts it (or of `script` with the same
    settings), on a free port, once it answers."""
    from cli.daemon import dashboard_command, dashboard_env

    cmd = dashboard_command(cfg)
    if script is not None:
        cmd[cmd.index("run") + 1] = str(script)
    cmd[cmd.index("--server.port") + 1] = str(_free_port())
    url = f"http://{cmd[cmd.index('--server.address') + 1]}:{cmd[cmd.index('--server.port') + 1]}"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd, env=dashboard_env(cfg), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + SERVER_START_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError(f"streamlit did not answer within {SERVER_START_S} s")


def drawn_ms(context, url: str, title: str) -> float:
    """One full load of `url` in a fresh tab: the browser's milliseconds until it is drawn."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = context.new_page()
    try:
        page.goto(url, wait_until="commit")
        try:
            page.wait_for_function(DRAWN_JS, arg=title, timeout=DRAWN_TIMEOUT_MS, polling=20)
        except PlaywrightTimeout:
            shot = Path(tempfile.gettempdir()) / f"gpuledger-bench-{title.replace(' ', '-')}.png"
            page.screenshot(path=str(shot), full_page=True)
            state = page.evaluate(PAGE_STATE_JS, title)
            raise RuntimeError(
                f"{url}: the page {title!r} was not drawn within {DRAWN_TIMEOUT_MS / 1000:g} s"
                f" (screenshot {shot}): {state}"
            ) from None
        return float(page.evaluate("() => performance.now()"))
    finally:
        page.close()


def time_pages(
    url: str, cfg=None, loads: int = LOADS, pages: list[tuple[str, str]] | None = None
) -> dict[str, tuple[float, list[float]]]:
    """Each registered page (or each (address, title) of `pages`): its first (cold) load and
    `loads` more, in milliseconds."""
    from playwright.sync_api import sync_playwright

    from dashboard.pages import PAGES

    if pages is None:
        pages = [(spec.url_path, spec.title) for spec in PAGES]
    out = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            context = browser.new_context(viewport=VIEWPORT)
            for path, title in pages:
                if cfg is not None:
                    write_live_tick(cfg)  # the live views show the last 30 s
                first = drawn_ms(context, f"{url}/{path}", title)
                out[title] = (
                    first,
                    [drawn_ms(context, f"{url}/{path}", title) for _ in range(loads)],
                )
            context.close()
        finally:
            browser.close()
    return out


def _why_not() -> str:
    if not CHROMIUM.exists():
        return f"skipped: Debian's Chromium is not installed at {CHROMIUM}"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "skipped: the playwright Python package is not installed"
    return ""


def bench() -> list[Result]:
    missing = _why_not()
    if missing:
        return [Result("pages in the browser", float("nan"), "ms", note=missing)]
    with tempfile.TemporaryDirectory(prefix="gpuledger-browser-") as tmp:
        t0 = time.perf_counter()
        cfg, counts = demo_fleet(Path(tmp))
        print(f"  demo fleet seeded in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
        proc, url = start_server(cfg, Path(tmp) / "streamlit.log")
        try:
            timed = time_pages(url, cfg)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
        floor_ms = streamlit_floor(cfg, Path(tmp))
    fleet = (
        f"demo fleet, 14 days at 10 s ({counts['gpu_samples']:,} samples); Chromium"
        f" {VIEWPORT['width']} × {VIEWPORT['height']}"
    )
    results = []
    for title, (first, times) in timed.items():
        ms = statistics.median(times)
        results.append(
            Result(
                f"page {title} drawn in the browser",
                ms,
                "ms",
                goal=f"<= {PAGE_GOAL_MS:g} ms",
                met=ms <= PAGE_GOAL_MS,
                note=f"median of {len(times)} full loads (fastest {min(times):,.0f} ms, slowest"
                f" {max(times):,.0f} ms); the first, cold load {first:,.0f} ms; {fleet}",
            )
        )
    results.append(
        Result(
            "reference: a Streamlit page holding only its title, same server and browser",
            floor_ms,
            "ms",
            note="what any page costs here before gpuledger draws anything: the app's code, the"
            " websocket session, Streamlit's script run and Chromium on this machine",
        )
    )
    return results


FLOOR_APP = 'import streamlit as st\n\nst.title("Floor")\n'


def streamlit_floor(cfg, root: Path) -> float:
    """The median full load of a one-title Streamlit app under the dashboard's own settings."""
    script = root / "floor_app.py"
    script.write_text(FLOOR_APP)
    proc, url = start_server(cfg, root / "floor.log", script=script)
    try:
        _, times = time_pages(url, pages=[("", "Floor")])["Floor"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return statistics.median(times)


if __name__ == "__main__":
    if (
        len(sys.argv) > 1
    ):  # time a running dashboard: python -m benchmarks.bench_dashboard_browser URL
        for title, (first, times) in time_pages(sys.argv[1].rstrip("/")).items():
            print(
                f"{title}: median {statistics.median(times):,.0f} ms,"
                f" first {first:,.0f} ms, {[round(t) for t in times]}"
            )
    else:
        for r in bench():
            print(f"{r.name}: {r.value:,.1f} {r.unit} {r.goal} {r.note}")
