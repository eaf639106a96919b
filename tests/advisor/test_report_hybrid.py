"""The weekly report shows the new advice with its arithmetic: a hybrid with its demand chart
(GPUs each hour and the local base line), consolidation (GPUs before and after), a schedule
beside a size change, and capacity freed for others apart from the workloads' own cash."""

from __future__ import annotations

from datetime import timedelta

import pytest

from advisor.report.charts import chart_images, hybrid_charts
from advisor.report.figures import Report, hybrid_image, week_figures
from advisor.report.render import kpis, rec_rows
from advisor.report.render_html import render_html
from advisor.report.render_md import render_markdown
from tests.advisor.fleets import T0, advise, base_plus_peaks_service


@pytest.fixture(scope="module")
def report() -> Report:
    """The base-plus-peaks service of the scenario library (hybrid: 2 RTX A6000 bought for the
    base load, g6e.xlarge for the peaks; $1,448.85 a month against $3,622.75)."""
    a = advise(**base_plus_peaks_service(days=14), days=14)
    start, end = T0 + timedelta(days=7), T0 + timedelta(days=14)
    figures = week_figures(a.ledger, start.date(), end.date())
    return Report(
        week="2026-W46",
        start=start,
        end=end,
        generated_at=end,
        data_from=T0,
        data_to=end,
        this=figures,
        prev=week_figures(a.ledger, T0.date(), start.date()),
        recs=a.recommendations,
        prev_recs=a.recommendations,
        waste=a.ledger.head(0).select("workload"),
        prev_waste_usd=0.0,
        waste_note="none",
        spare_high_end=a.ledger.head(0),
        catalog_as_of=None,
        curves=a.curves,
    )


def test_the_hybrid_chart_draws_the_demand_and_the_local_base(report):
    """One chart per hybrid workload: 14 × 24 hourly points (2 GPUs, 6 from 12:00 to 16:00) as a
    stepped area, and the base line at 2 local GPUs."""
    charts = hybrid_charts(report.curves)
    assert list(charts) == [hybrid_image("api")] == ["hybrid-api"]
    spec = charts["hybrid-api"].to_dict()
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["area", "rule"]
    values = next(iter(spec["datasets"].values()))
    assert len(values) == 14 * 24
    assert {v["gpus"] for v in values} == {2.0, 6.0} and {v["base_gpus"] for v in values} == {2.0}
    assert hybrid_image("team/vision eval") == "hybrid-team-vision-eval"  # safe in a file name
    png = chart_images(report)["hybrid-api"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_shows_the_hybrid_with_its_layers_and_chart(report):
    images = {"hybrid-api": "2026-W46-hybrid-api.png"}
    md, html = render_markdown(report, images), render_html(report, images)
    row = rec_rows(report)[0]
    assert row[1] == "hybrid" and row[2].startswith("hybrid: buy 2 × RTX A6000")
    assert "| api | hybrid | hybrid: buy 2 × RTX A6000 for the base load" in md
    assert "![demand and local base of api](2026-W46-hybrid-api.png)" in md
    assert "<img src='2026-W46-hybrid-api.png' alt='demand and local base'>" in html
    assert "a base of 2 GPUs carries 1,460" in md and "487 GPU-hours over the line" in md
    savings = dict((label, value) for label, value, _ in kpis(report))["Savings found"]
    assert savings == "$2,174/month"  # 3,622.75 − 1,448.85


def test_a_schedule_beside_a_size_change_and_freed_capacity_are_shown_apart(report):
    """The table's row for a downsize with a schedule names both, the GPUs before and after, and
    a neighbour's freed capacity goes in its own column."""
    import polars as pl

    recs = pl.DataFrame(
        [
            {
                **report.recs.row(0, named=True),
                "workload": "dev",
                "action": "downsize",
                "alternative": "1 × g6.xlarge (1 × L4), on-demand",
                "gpus": 4,
                "gpus_after": 1,
                "schedule": "Mon–Fri 09:00–19:00 UTC",
                "monthly_savings_usd": 7482.85,
                "freed_capacity_usd": 2504.81,
                "break_even_months": None,
            }
        ],
        schema=report.recs.schema,
    )
    rep = Report(**{**report.__dict__, "recs": recs})
    (row,) = rec_rows(rep)
    assert row[2] == (
        "1 × g6.xlarge (1 × L4), on-demand (4 → 1 GPUs); stop when idle: run Mon–Fri "
        "09:00–19:00 UTC"
    )
    assert (row[4], row[5]) == ("$7,483", "$2,505")
    sub = dict((label, sub) for label, _, sub in kpis(rep))["Savings found"]
    assert "they free $2,505/month of GPUs for others" in sub
