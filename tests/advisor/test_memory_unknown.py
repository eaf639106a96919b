"""A DCGM page without DCGM_FI_DEV_FB_USED: memory unknown, never 0 GiB, from the exporter page
through the warehouse to the recommendation (issue 11). The page is the real upcloud L40S scrape
(tests/fixtures/realdata/dcgm-exporter-cncf-ai-conformance/upcloud.prom); the test drops its
FB_USED line itself, and gives it the pod labels dcgm-exporter adds with Kubernetes mapping on.

The scene, hand-worked: the L40S node `gpu1-wl8sg` is a cloud instance (g6e.xlarge at $1.861/h)
billed to `notebooks`, which holds its GPU for two whole days, 0 % busy. Its bill: 2 × 24 h ×
$1.861 = $89.33 over 48 h = $1,358.53 a month. Where the page reads 0 MiB used (a real
reading), a T4 (g4dn.xlarge, $0.526/h, 16 GiB) fits and saves $1,358.53 − $383.98 = $974.55: a
downsize. Without the reading nothing says the notebook fits in 16 GiB: no T4.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from advisor.jobs import refresh_ledger
from cli import app
from cli.commands.billing import import_billing_files
from collectors.gpu import prometheus
from collectors.gpu.workload_rules import ProcessAttributor
from config.settings import Config
from tables import spool
from tables.records import Batch

PAGE = (
    Path(__file__).resolve().parents[1]
    / "fixtures/realdata/dcgm-exporter-cncf-ai-conformance/upcloud.prom"
)
HOST = "gpu1-wl8sg"  # the page's Hostname label
DAY0 = datetime(2026, 7, 1, tzinfo=UTC)
NOW = datetime(2026, 7, 3, 6, tzinfo=UTC)
FOCUS = (
    "BilledCost,EffectiveCost,ListCost,BillingCurrency,BillingAccountId,BillingPeriodStart,"
    "ChargePeriodStart,ChargePeriodEnd,ProviderName,ServiceName,ResourceId,ChargeCategory,Tags\n"
)


def page(with_fb_used: bool) -> str:
    extra = ',pod="nb-0",namespace="notebooks",container="jupyter"'
    return "\n".join(
        line.replace("}", extra + "}", 1) if line.startswith("DCGM_FI_") else line
        for line in PAGE.read_text().splitlines()
        if with_fb_used or not line.startswith("DCGM_FI_DEV_FB_USED")
    )


def two_days_of(text: str) -> Batch:
    """The page scraped every 10 minutes for two days (the same readings each time)."""
    one = prometheus.parse_exposition(text, ts=DAY0)
    times = pl.DataFrame(
        {"ts": [DAY0 + timedelta(minutes=10 * i) for i in range(2 * 24 * 6)]},
        schema={"ts": pl.Datetime("us", "UTC")},
    )

    def spread(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.drop("ts").join(times, how="cross").select(frame.columns)

    return ProcessAttributor().apply(Batch(spread(one.gpu_samples), spread(one.process_samples)))


def advise(cfg: Config, tmp_path: Path, with_fb_used: bool) -> tuple[dict, pl.DataFrame]:
    # The bill names no instance type, so nothing tells the advisor this team is on AWS: it says
    # so ([advisor] clouds); Azure's Standard_NC4as_T4_v3 costs the same $0.526/h as g4dn.xlarge.
    cfg = replace(cfg, advisor=replace(cfg.advisor, clouds=("aws",)))
    bill = tmp_path / "bill.csv"
    bill.write_text(
        FOCUS
        + "".join(
            f"44.664,44.664,44.664,USD,111122223333,2026-07-01T00:00:00Z,{day}T00:00:00Z,"
            f'{nxt}T00:00:00Z,AWS,Amazon EC2,{HOST},Usage,"{{""workload"": ""notebooks""}}"\n'
            for day, nxt in (("2026-07-01", "2026-07-02"), ("2026-07-02", "2026-07-03"))
        )
    )
    import_billing_files([bill], cfg, "focus")
    for kind, frame in two_days_of(page(with_fb_used)).frames().items():
        spool.write_batch(cfg.spool_dir, kind, frame, HOST)
    with app.open_warehouse(cfg) as wh:
        assert wh.ingest_spool().rejected == []
        refresh_ledger(wh, cfg, app.catalog_for(cfg), now=NOW)
    con = duckdb.connect(str(cfg.db_path), read_only=True)
    try:
        rec = con.sql("SELECT * FROM results_recommendations WHERE workload = 'notebooks'").pl()
        alts = con.sql("SELECT * FROM results_alternatives WHERE workload = 'notebooks'").pl()
        mem = con.execute("SELECT DISTINCT mem_used_mib, mem_total_mib FROM gpu_samples").fetchall()
    finally:
        con.close()
    assert rec.height == 1
    return {**rec.row(0, named=True), "memory": mem}, alts


def test_a_page_that_reads_0_mib_used_may_downsize_to_a_t4(cfg: Config, tmp_path: Path) -> None:
    rec, _ = advise(cfg, tmp_path, with_fb_used=True)
    # FB_USED 0 + FB_FREE 45459 + FB_RESERVED 608 = 46067 MiB total.
    assert rec["memory"] == [(0.0, 46067.0)]
    assert rec["current_monthly_cost_usd"] == pytest.approx(2 * 44.664 / 48 * 730)
    assert rec["action"] == "downsize"
    assert rec["alternative"] == "1 × g4dn.xlarge (1 × T4), on-demand"
    assert rec["monthly_savings_usd"] == pytest.approx(1358.53 - 0.526 * 730, abs=0.01)


def test_a_page_without_fb_used_never_concludes_a_t4_fits(cfg: Config, tmp_path: Path) -> None:
    rec, alts = advise(cfg, tmp_path, with_fb_used=False)
    assert rec["memory"] == [(None, None)]  # unknown, not 0 (FB_FREE alone gives no total)
    assert rec["peak_memory_gib"] is None
    assert rec["alternative"] is None or "T4" not in rec["alternative"]
    t4 = alts.filter(pl.col("gpu_model") == "T4")
    assert t4.height > 0 and not t4["feasible"].any()
    assert all(
        "memory unknown: 16 GiB < the 48 GiB of its L40S it may need" in n for n in t4["note"]
    )
    # Two days of a steady workload: 2 / 30 days = 0.07; halved for the unknown memory.
    assert rec["confidence"] == pytest.approx(round(round(2 / 30, 2) * 0.5, 2))
    assert any(r.startswith("Memory unknown:") for r in rec["reasons"])
