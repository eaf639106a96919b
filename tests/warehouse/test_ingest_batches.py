"""The bulk ingest path (Polars dedup and rollups beside a DuckDB insert) against an independent
reference: the minute rollups of a multi-host fleet, ingested in shuffled batches with repeats,
equal a one-pass SQL computation over the stored samples, and no key is stored twice."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tables import spool
from warehouse.store import GAP_CAP, Warehouse

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# The rollup rules of DESIGN.md written once more as plain SQL over all stored samples.
REFERENCE = f"""
WITH s AS (
    SELECT *, epoch(lead(ts) OVER (PARTITION BY host, gpu_uuid ORDER BY ts)) - epoch(ts) AS gap
    FROM gpu_samples
),
usual AS (SELECT host, gpu_uuid, median(gap) AS iv FROM s WHERE gap > 0 GROUP BY ALL),
d AS (
    SELECT s.*, least(coalesce(gap, iv, 1.0), {GAP_CAP} * coalesce(iv, gap, 1.0)) AS seconds,
           coalesce(sm_active_pct, util_pct) / 100.0 AS activity
    FROM s LEFT JOIN usual USING (host, gpu_uuid)
)
SELECT date_trunc('minute', ts) AS minute, host, gpu_uuid, workload, count(*) AS samples,
       sum(seconds) AS seconds, sum(seconds * coalesce(activity, 0)) AS busy_seconds,
       avg(util_pct) AS util_avg, max(mem_used_mib) AS mem_used_max_mib,
       sum(seconds * coalesce(power_w, 0)) AS energy_j
FROM d GROUP BY ALL ORDER BY ALL
"""
COMPARED = "minute, host, gpu_uuid, workload, samples, seconds, busy_seconds, util_avg,"
COMPARED += " mem_used_max_mib, energy_j"


def gpu_series(host: str, gpu: str, step_s: int, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """A GPU sampled every `step_s` with a short silence (under the lookback) and a workload
    change; SM active only on some GPUs."""
    times = [T0 + timedelta(seconds=step_s * i) for i in range(n) if not n // 3 <= i < n // 3 + 3]
    m = len(times)
    return pl.DataFrame(
        {
            "ts": times,
            "host": [host] * m,
            "gpu_uuid": [gpu] * m,
            "gpu_model": ["H100"] * m,
            "util_pct": rng.integers(0, 101, m).astype(float),
            "sm_active_pct": rng.uniform(0, 80, m) if gpu.endswith("0") else [None] * m,
            "mem_used_mib": rng.integers(0, 80_000, m).astype(float),
            "mem_total_mib": [81559.0] * m,
            "power_w": rng.uniform(60, 700, m),
            "workload": ["a" if i < m // 2 else "b" for i in range(m)],
            "source": ["test"] * m,
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC"), "sm_active_pct": pl.Float64},
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_repeated_batches_roll_up_like_one_pass(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    fleet = pl.concat(
        [
            gpu_series(host, f"GPU-{host}-{g}", step, 240, rng)
            for host, step in (("node-1", 1), ("node-2", 10), ("node-3", 30))
            for g in range(3)
        ]
    ).sort("ts")  # ts-major, as agents write
    # Batches of random sizes, shuffled so some arrive late, some sent twice.
    cuts = sorted(rng.choice(np.arange(1, fleet.height), 25, replace=False).tolist())
    parts = [fleet.slice(a, b - a) for a, b in zip([0, *cuts], [*cuts, fleet.height], strict=True)]
    order = list(range(len(parts)))
    random.Random(seed).shuffle(order)
    order = order[:5] + order[:3] + order[5:]  # three batches twice
    spool_dir = tmp_path / "spool"
    with Warehouse(tmp_path / "w.duckdb", spool_dir) as wh:
        for round_ in range(0, len(order), 4):
            for i in order[round_ : round_ + 4]:
                spool.write_batch(spool_dir, "gpu_samples", parts[i], parts[i]["host"][0])
            wh.ingest_spool()
        stored = wh.db.execute("SELECT count(*) FROM gpu_samples").fetchall()[0][0]
        distinct = wh.db.execute(
            "SELECT count(*) FROM (SELECT DISTINCT host, gpu_uuid, ts FROM gpu_samples)"
        ).fetchall()[0][0]
        got = wh.db.sql(f"SELECT {COMPARED} FROM gpu_minute ORDER BY ALL").pl()
        want = wh.db.sql(REFERENCE).pl()
    assert stored == distinct == fleet.height
    assert got.height == want.height
    assert got["samples"].sum() == fleet.height
    for col in got.columns:
        if got[col].dtype == pl.Float64:
            assert np.allclose(got[col].to_numpy(), want[col].to_numpy(), rtol=1e-9), col
        else:
            assert got[col].cast(want[col].dtype).equals(want[col]), col
