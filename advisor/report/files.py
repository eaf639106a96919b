"""Writing a week's report: `<week>.html`, `<week>.md` and their chart images into the reports
directory ([report] dir), each file replaced whole (a reader never sees half of one)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl

from advisor.costs import usd
from advisor.report.build import build_report
from advisor.report.charts import chart_images
from advisor.report.render_html import render_html
from advisor.report.render_md import render_markdown
from advisor.report.schedule import ReportError
from config.settings import Config
from tables.files import atomic_write, make_dirs
from warehouse.snapshot import Snapshot


@dataclass
class ReportFiles:
    week: str
    html: Path
    markdown: Path
    images: dict[str, Path]
    summary: str


def reports_dir(cfg: Config) -> Path:
    return cfg.resolve(cfg.report.dir)


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_report(
    cfg: Config,
    catalog: pl.DataFrame,
    week: str,
    *,
    snap: Snapshot | None = None,
    now: datetime | None = None,
    directory: Path | None = None,
) -> ReportFiles:
    """Build and write `<week>.html`, `<week>.md` and their chart images."""
    directory = Path(directory) if directory else reports_dir(cfg)
    own = snap is None
    snap = snap or Snapshot(cfg.snapshot_path)
    try:
        if not snap.exists():
            raise ReportError(f"no snapshot at {cfg.snapshot_path}: run `gpuledger run` first")
        rep = build_report(snap, cfg, catalog, week, now=now)
    finally:
        if own:
            snap.close()
    make_dirs(directory)
    pngs = chart_images(rep)
    images = {}
    for name, data in pngs.items():
        path = directory / f"{week}-{name}.png"
        _atomic_write(path, data)
        images[name] = path
    rel = {name: p.name for name, p in images.items()}
    md_path, html_path = directory / f"{week}.md", directory / f"{week}.html"
    _atomic_write(md_path, render_markdown(rep, rel).encode())
    _atomic_write(html_path, render_html(rep, rel).encode())
    summary = (
        f"{week}: spend {usd(rep.this.total_usd, cents=False)}, savings found "
        f"{usd(rep.savings, cents=False)}/month"
    )
    return ReportFiles(week, html_path, md_path, images, summary)
