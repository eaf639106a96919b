"""What the raw data says about each workload beyond the hourly attribution, over a window
(results_workload_evidence, migration 10): the activity signal of its minutes (gpu_minute) and
the shape of its processes (process_samples, kept [retention] raw_days): whether one command was
busy on several of its GPUs in the same minute (one multi-GPU job, NCCL-style ranks share their
command line), its largest process and how long its processes lived. The advisor sizes workloads
by it (advisor/recommend/load.py); the snapshot keeps a copy so the weekly report's recomputed
recommendations see the same evidence.
"""

from __future__ import annotations

from datetime import datetime

import polars as pl

from tables.stored import RESULTS_WORKLOAD_EVIDENCE
from warehouse.store import Warehouse

# $since, $until: the window; $active: the busy percentage that makes a GPU-minute busy.
EVIDENCE_SQL = """
    WITH signals AS (
        SELECT workload,
               coalesce(sum(seconds) FILTER (WHERE sm_active_avg IS NOT NULL), 0)
                   / nullif(sum(seconds), 0) AS sm_active_share,
               coalesce(
                   sum(seconds) FILTER (WHERE sm_active_avg IS NULL AND util_avg IS NOT NULL), 0
               ) / nullif(sum(seconds), 0) AS util_share
        FROM gpu_minute
        WHERE minute >= $since AND minute < $until AND workload IS NOT NULL
        GROUP BY workload
    ),
    busy AS (
        SELECT epoch_us(minute) // 60000000 AS m, host, gpu_uuid,
               100.0 * busy_seconds / nullif(activity_seconds, 0) AS busy_pct
        FROM gpu_minute WHERE minute >= $since AND minute < $until
    ),
    p_min AS (  -- each process command on each GPU, once per minute
        SELECT epoch_us(ts) // 60000000 AS m, host, gpu_uuid, workload,
               coalesce(nullif(command, ''), CAST(pid AS VARCHAR)) AS proc
        FROM process_samples
        WHERE ts >= $since AND ts < $until AND workload IS NOT NULL
        GROUP BY ALL
    ),
    per_minute AS (
        SELECT p.workload, p.m, p.host, p.proc,
               count(DISTINCT p.gpu_uuid) FILTER (WHERE b.busy_pct >= $active) AS busy_gpus
        FROM p_min p LEFT JOIN busy b USING (m, host, gpu_uuid)
        GROUP BY ALL
    ),
    minutes AS (
        SELECT workload, m, host, max(busy_gpus) AS busy_gpus
        FROM per_minute GROUP BY ALL
    ),
    shape AS (
        SELECT workload,
               count(*) FILTER (WHERE busy_gpus >= 1) AS busy_minutes,
               count(*) FILTER (WHERE busy_gpus >= 2) AS multi_gpu_minutes,
               max(busy_gpus) AS job_gpus
        FROM minutes GROUP BY workload
    ),
    lives AS (
        SELECT workload, host, pid, epoch(max(ts)) - epoch(min(ts)) AS lived_s,
               max(used_mib) AS peak_mib
        FROM process_samples
        WHERE ts >= $since AND ts < $until AND workload IS NOT NULL AND pid IS NOT NULL
        GROUP BY workload, host, pid
    ),
    procs AS (
        SELECT workload, count(*) AS processes, quantile_cont(lived_s, 0.9) AS p90_process_s,
               max(peak_mib) AS max_process_mib
        FROM lives GROUP BY workload
    )
    SELECT workload, s.sm_active_share, s.util_share,
           coalesce(sh.busy_minutes, 0) AS busy_minutes,
           coalesce(sh.multi_gpu_minutes, 0) AS multi_gpu_minutes,
           sh.job_gpus, pr.max_process_mib, coalesce(pr.processes, 0) AS processes,
           pr.p90_process_s
    FROM signals s FULL JOIN shape sh USING (workload) FULL JOIN procs pr USING (workload)"""


def workload_evidence(
    wh: Warehouse, since: datetime, until: datetime, *, active_pct: float, now: datetime
) -> pl.DataFrame:
    """results_workload_evidence rows for [since, until), computed at `now`."""
    rows = wh.db.sql(
        EVIDENCE_SQL, params={"since": since, "until": until, "active": active_pct}
    ).pl()
    return rows.with_columns(computed_at=pl.lit(now, dtype=pl.Datetime("us", "UTC"))).select(
        [pl.col(c.name).cast(c.dtype) for c in RESULTS_WORKLOAD_EVIDENCE.columns]
    )
