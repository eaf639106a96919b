"""The warehouse writer: migrations, idempotent spool ingest, minute rollups, billing, failures."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from config.settings import Config
from tables import spool
from warehouse.schema import SCHEMA_VERSION, migrate
from warehouse.store import Warehouse

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def samples(
    times: list[datetime],
    *,
    host: str = "node-1",
    uuid: str = "GPU-aaaa",
    util: float | list[float] = 50.0,
    sm: float | None = None,
    power: float = 100.0,
    workload: str | None = "train",
) -> pl.DataFrame:
    n = len(times)
    utils = util if isinstance(util, list) else [util] * n
    return pl.DataFrame(
        {
            "ts": times,
            "host": [host] * n,
            "gpu_uuid": [uuid] * n,
            "gpu_index": [0] * n,
            "gpu_model": ["H100"] * n,
            "util_pct": utils,
            "sm_active_pct": [sm] * n,
            "activity_kind": ["gpm" if sm is not None else "nvml_util"] * n,
            "mem_used_mib": [1000.0] * n,
            "mem_total_mib": [81559.0] * n,
            "power_w": [power] * n,
            "workload": [workload] * n,
            "source": ["test"] * n,
        },
        schema_overrides={
            "ts": pl.Datetime("us", "UTC"),
            "sm_active_pct": pl.Float64,
            "util_pct": pl.Float64,
        },
    )


def every(start: datetime, step_s: int, count: int) -> list[datetime]:
    return [start + timedelta(seconds=step_s * i) for i in range(count)]


def write(cfg: Config, frame: pl.DataFrame, kind: str = "gpu_samples", host: str = "node-1"):
    return spool.write_batch(cfg.spool_dir, kind, frame, host)


@pytest.fixture
def wh(cfg: Config) -> Iterator[Warehouse]:
    with Warehouse(cfg.db_path, cfg.spool_dir) as w:
        yield w


def scalar(wh: Warehouse, sql: str, params: list | None = None):
    return wh.db.execute(sql, params or []).fetchall()[0][0]


def minute_seconds(wh: Warehouse) -> dict[datetime, float]:
    rows = wh.db.execute("SELECT minute, sum(seconds) FROM gpu_minute GROUP BY 1").fetchall()
    return {m.astimezone(UTC): s for m, s in rows}


def version_row(wh: Warehouse) -> list[tuple]:
    return wh.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()


# Schema -----------------------------------------------------------------------------------------
def test_migration_sets_version_and_reopen_is_a_no_op(cfg: Config) -> None:
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        assert version_row(wh) == [(str(SCHEMA_VERSION),)]
        meta = wh.db.execute("SELECT * FROM meta ORDER BY key").fetchall()
        wh.db.execute("INSERT INTO results_daily_ledger (day) VALUES (DATE '2026-01-01')")
        wh.db.execute("CHECKPOINT")
        # Migrating an up-to-date file again finds the current version and changes nothing.
        assert migrate(wh.db) == SCHEMA_VERSION
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        assert migrate(wh.db) == SCHEMA_VERSION
        assert wh.db.execute("SELECT * FROM meta ORDER BY key").fetchall() == meta
        assert scalar(wh, "SELECT count(*) FROM results_daily_ledger") == 1


def test_fresh_file_migrates_from_zero_and_newer_file_is_refused(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    assert migrate(con) == 0
    con.execute(
        "UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)]
    ).fetchall()
    with pytest.raises(RuntimeError, match="newer"):
        migrate(con)
    con.close()


# Ingest -----------------------------------------------------------------------------------------
def test_ingest_takes_each_spool_file_once(cfg: Config, wh: Warehouse) -> None:
    a = write(cfg, samples(every(T0, 10, 6)))
    b = write(cfg, samples(every(T0 + timedelta(minutes=1), 10, 6), host="node-2"), host="node-2")
    first = wh.ingest_spool()
    assert first.files == 2
    assert first.rows == {"gpu_samples": 12}
    again = wh.ingest_spool()
    assert again.files == 0 and again.rows == {}
    assert scalar(wh, "SELECT count(*) FROM gpu_samples") == 12
    ledger = wh.db.execute("SELECT path, kind, rows FROM ingested_files ORDER BY path").fetchall()
    expected = sorted(str(p.relative_to(cfg.spool_dir)) for p in (a, b))
    assert [r[0] for r in ledger] == expected
    assert {r[1] for r in ledger} == {"gpu_samples"}
    assert [r[2] for r in ledger] == [6, 6]
    # A new file is taken on the next ingest, the old ones still not.
    write(cfg, samples(every(T0 + timedelta(minutes=5), 10, 3)))
    assert wh.ingest_spool().files == 1
    assert scalar(wh, "SELECT count(*) FROM gpu_samples") == 15


def test_same_rows_in_two_files_are_stored_once(cfg: Config, wh: Warehouse) -> None:
    rows = samples(every(T0, 10, 30))
    write(cfg, rows)
    write(cfg, rows)  # the same import done twice, in the same ingest
    assert wh.ingest_spool().rows == {"gpu_samples": 30}
    write(cfg, rows)  # ... and once more, in a later ingest
    overlap = samples(every(T0 + timedelta(seconds=200), 10, 20))  # 10 old rows + 10 new
    write(cfg, overlap)
    result = wh.ingest_spool()
    assert result.files == 2
    assert result.rows == {"gpu_samples": 10}
    assert scalar(wh, "SELECT count(*) FROM gpu_samples") == 40
    distinct = "SELECT count(*) FROM (SELECT DISTINCT host, gpu_uuid, ts FROM gpu_samples)"
    assert scalar(wh, distinct) == 40
    assert scalar(wh, "SELECT sum(samples) FROM gpu_minute") == 40
    assert scalar(wh, "SELECT sum(seconds) FROM gpu_minute") == pytest.approx(400.0)


# Rollups ----------------------------------------------------------------------------------------
def test_rollup_caps_a_hole_at_twice_the_interval(cfg: Config, wh: Warehouse) -> None:
    # One hour at 10 s, with 08:15:00-08:44:59 missing: 90 samples before, 90 after.
    times = [T0 + timedelta(seconds=10 * i) for i in range(360) if not 90 <= i < 270]
    assert len(times) == 180
    write(cfg, samples(times, util=40.0))
    wh.ingest_spool()
    # By hand: every sample stands for 10 s until its successor, except the one at 08:14:50,
    # whose successor comes 30 min 10 s later: capped at 2 x 10 s. The last sample (08:59:50)
    # has no successor and stands for the usual interval, 10 s.
    # 179 x 10 s + 20 s = 1,810 s (not 180 x 10 + 1,800 s of hole).
    assert scalar(wh, "SELECT sum(seconds) FROM gpu_minute") == pytest.approx(1810.0)
    assert scalar(wh, "SELECT sum(samples) FROM gpu_minute") == 180
    assert scalar(wh, "SELECT sum(busy_seconds) FROM gpu_minute") == pytest.approx(1810.0 * 0.4)
    per_minute = minute_seconds(wh)
    assert len(per_minute) == 30  # no rows for the 30 empty minutes
    assert per_minute[T0 + timedelta(minutes=14)] == pytest.approx(70.0)  # 5 x 10 + 20
    assert all(
        s == pytest.approx(60.0) for m, s in per_minute.items() if m != T0 + timedelta(minutes=14)
    )


def test_rollup_hole_spanning_two_ingests_stays_capped(cfg: Config, wh: Warehouse) -> None:
    """The daemon ingests while the GPU is silent: the pre-hole sample still counts at most 2x."""
    write(cfg, samples(every(T0, 10, 90)))
    wh.ingest_spool()
    write(cfg, samples(every(T0 + timedelta(minutes=45), 10, 90)))
    wh.ingest_spool()
    pre_hole = minute_seconds(wh)[T0 + timedelta(minutes=14)]
    assert 60.0 <= pre_hole <= 70.0
    total = scalar(wh, "SELECT sum(seconds) FROM gpu_minute")
    assert 1800.0 <= total <= 1810.0


def test_busy_seconds_use_sm_active_else_util(cfg: Config, wh: Warehouse) -> None:
    write(cfg, samples(every(T0, 10, 6), uuid="GPU-gpm", util=80.0, sm=30.0))
    write(cfg, samples(every(T0, 10, 6), uuid="GPU-util", util=60.0))
    write(cfg, samples(every(T0, 10, 6), uuid="GPU-free", util=70.0, workload=None))
    wh.ingest_spool()
    rows = wh.db.execute(
        "SELECT gpu_uuid, samples, seconds, busy_seconds, util_avg, sm_active_avg, workload"
        " FROM gpu_minute ORDER BY gpu_uuid"
    ).fetchall()
    assert rows == [
        ("GPU-free", 6, pytest.approx(60.0), pytest.approx(42.0), 70.0, None, None),
        ("GPU-gpm", 6, pytest.approx(60.0), pytest.approx(18.0), 80.0, 30.0, "train"),
        ("GPU-util", 6, pytest.approx(60.0), pytest.approx(36.0), 60.0, None, "train"),
    ]


def test_rollup_splits_minute_by_workload_and_sums_energy(cfg: Config, wh: Warehouse) -> None:
    times = every(T0, 10, 6)
    frame = pl.concat(
        [samples(times[:3], workload="a", power=200.0), samples(times[3:], workload="b")]
    )
    write(cfg, frame)
    wh.ingest_spool()
    rows = wh.db.execute(
        "SELECT workload, samples, seconds, energy_j FROM gpu_minute ORDER BY workload"
    ).fetchall()
    assert rows == [
        ("a", 3, pytest.approx(30.0), pytest.approx(6000.0)),
        ("b", 3, pytest.approx(30.0), pytest.approx(3000.0)),
    ]


def test_later_batch_corrects_the_minute_where_the_previous_one_ended(
    cfg: Config, wh: Warehouse
) -> None:
    # Batch 1: 08:00:00 ... 08:00:40. The last sample has no successor yet: the usual 10 s.
    write(cfg, samples(every(T0, 10, 5)))
    wh.ingest_spool()
    assert minute_seconds(wh) == {T0: pytest.approx(50.0)}
    # Batch 2 starts 15 s later (08:00:55, one tick late) and runs to 08:01:55.
    write(cfg, samples(every(T0 + timedelta(seconds=55), 10, 7)))
    wh.ingest_spool()
    per_minute = minute_seconds(wh)
    # Minute 08:00: 4 x 10 + 15 (08:00:40 now sees its successor) + 10 (08:00:55) = 65.
    assert per_minute[T0] == pytest.approx(65.0)
    # Minute 08:01: six samples, the last one (08:01:55) standing for the usual 10 s.
    assert per_minute[T0 + timedelta(minutes=1)] == pytest.approx(60.0)
    assert scalar(wh, "SELECT sum(samples) FROM gpu_minute") == 12
    assert scalar(wh, "SELECT count(*) FROM gpu_minute") == 2  # replaced, not duplicated


def test_rollups_equal_one_batch_whatever_the_batching(cfg: Config, tmp_path: Path) -> None:
    times = every(T0, 10, 120)
    util = [float(i % 100) for i in range(120)]
    full = samples(times, util=util)
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        for lo in range(0, 120, 17):
            write(cfg, full.slice(lo, 17))
            wh.ingest_spool()
        batched = wh.db.sql("SELECT * FROM gpu_minute ORDER BY minute").pl()
    other = tmp_path / "other"
    spool.write_batch(other / "spool", "gpu_samples", full, "node-1")
    with Warehouse(other / "w.duckdb", other / "spool") as wh:
        wh.ingest_spool()
        whole = wh.db.sql("SELECT * FROM gpu_minute ORDER BY minute").pl()
    assert batched.height == whole.height == 20
    assert batched.equals(whole)


# Billing ----------------------------------------------------------------------------------------
def bill(rows: list[tuple[str, str, float]]) -> pl.DataFrame:
    """(scope, day, cost) rows; the list cost is 1.5 x, billed = effective."""
    start = [datetime.fromisoformat(d).replace(tzinfo=UTC) for _, d, _ in rows]
    return pl.DataFrame(
        {
            "ChargePeriodStart": start,
            "ChargePeriodEnd": [s + timedelta(hours=1) for s in start],
            "ProviderName": ["AWS"] * len(rows),
            "ResourceId": ["i-1"] * len(rows),
            "InstanceType": ["p5.4xlarge"] * len(rows),
            "BillingCurrency": ["USD"] * len(rows),
            "EffectiveCost": [c for *_, c in rows],
            "BilledCost": [c for *_, c in rows],
            "ListCost": [1.5 * c for *_, c in rows],
            "workload": ["llm"] * len(rows),
            "source": ["focus"] * len(rows),
            "scope": [s for s, *_ in rows],
        },
        schema_overrides={
            "ChargePeriodStart": pl.Datetime("us", "UTC"),
            "ChargePeriodEnd": pl.Datetime("us", "UTC"),
        },
    )


def test_restated_billing_scope_replaces_earlier_rows(cfg: Config, wh: Warehouse) -> None:
    jan, feb = "aws|111|2026-01", "aws|111|2026-02"
    first = bill(
        [(jan, "2026-01-03", 10.0), (jan, "2026-01-04", 20.0), (jan, "2026-01-05", 30.0)]
        + [(feb, "2026-02-01", 5.0), (feb, "2026-02-02", 5.5)]
    )
    restated = bill([(jan, "2026-01-03", 11.0), (jan, "2026-01-04", 22.25)])
    write(cfg, first, "billing_items", "focus")
    assert wh.ingest_spool().rows == {"billing_items": 5}
    write(cfg, restated, "billing_items", "focus")
    write(cfg, restated, "billing_items", "focus")  # the restated file imported twice
    wh.ingest_spool()

    # Independent expectation: per scope, the rows of the last batch that carried it.
    latest: dict[str, pl.DataFrame] = {}
    for batch in (first, restated, restated):
        for (scope,), part in batch.group_by("scope"):
            latest[scope] = part
    expected = pl.concat(latest.values())
    assert expected.height == 4
    assert scalar(wh, "SELECT count(*) FROM billing_items") == 4
    got = wh.db.execute(
        "SELECT scope, sum(EffectiveCost), sum(ListCost) FROM billing_items GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert got == [
        (jan, pytest.approx(33.25), pytest.approx(49.875)),
        (feb, pytest.approx(10.5), pytest.approx(15.75)),
    ]
    total = scalar(wh, "SELECT sum(EffectiveCost) FROM billing_items")
    assert total == pytest.approx(expected["EffectiveCost"].sum()) == pytest.approx(43.75)
    daily = wh.billing_daily(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    assert daily["effective_cost"].sum() == pytest.approx(43.75)
    assert daily["billed_cost"].sum() == pytest.approx(43.75)
    assert daily["line_items"].sum() == 4
    assert daily.filter(pl.col("day") == datetime(2026, 1, 5).date())["effective_cost"].sum() == 0


# Failures ---------------------------------------------------------------------------------------
def test_corrupt_spool_file_is_moved_aside_and_the_rest_ingests(cfg: Config, wh: Warehouse) -> None:
    good = write(cfg, samples(every(T0, 10, 6)))
    garbage = good.with_name("part-20260302T080000000000-deadbeef.parquet")
    garbage.write_bytes(b"this is not parquet at all")
    truncated = good.with_name("part-20260302T080000000001-cafecafe.parquet")
    truncated.write_bytes(good.read_bytes()[:-20])
    # Intact footer, scrambled data pages: the schema reads, the rows do not.
    scrambled = write(cfg, samples(every(T0, 10, 500), util=[float(i) for i in range(500)]))
    data = bytearray(scrambled.read_bytes())
    footer = int.from_bytes(data[-8:-4], "little")
    for i in range(4, len(data) - 8 - footer):
        data[i] ^= 0x5A
    scrambled.write_bytes(bytes(data))
    assert pl.read_parquet_schema(scrambled)["util_pct"] == pl.Float64
    later = write(cfg, samples(every(T0 + timedelta(minutes=1), 10, 6)))

    result = wh.ingest_spool()
    assert result.files == 2
    assert result.rows == {"gpu_samples": 12}
    bad = [garbage, truncated, scrambled]
    assert sorted(Path(p).name for p, _ in result.rejected) == sorted(p.name for p in bad)
    rejected = cfg.spool_dir / "_rejected"
    for path in bad:
        assert not path.exists()
        assert (rejected / path.relative_to(cfg.spool_dir)).is_file()
    assert good.exists() and later.exists()
    assert "rejected 3" in result.summary()
    assert wh.ingest_spool().files == 0  # nothing left behind to fail again


def test_foreign_parquet_file_is_moved_aside_and_the_rest_ingests(
    cfg: Config, wh: Warehouse
) -> None:
    good = write(cfg, samples(every(T0, 10, 6)))
    foreign = good.with_name("part-20260302T080000000000-f0f0f0f0.parquet")
    pl.DataFrame({"timestamp": [1, 2], "gpu": ["a", "b"]}).write_parquet(foreign)
    result = wh.ingest_spool()
    assert [Path(p).name for p, _ in result.rejected] == [foreign.name]
    assert result.rows == {"gpu_samples": 6}
    assert (cfg.spool_dir / "_rejected" / foreign.relative_to(cfg.spool_dir)).is_file()


def test_failed_ingest_rolls_back_rows_and_ledger(
    cfg: Config, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure of the warehouse itself (here a full disk mid-transaction) rolls the chunk
    back and leaves every batch queued; none is set aside (a batch's own fault would be:
    tests/warehouse/test_quarantine.py)."""
    write(cfg, samples(every(T0, 10, 6)))
    write(cfg, samples(every(T0 + timedelta(minutes=1), 10, 6)))

    def boom(self: Warehouse) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Warehouse, "_refresh_minutes", boom)
    with pytest.raises(OSError, match="No space left"):
        wh.ingest_spool()
    assert not (cfg.spool_dir / "_rejected").exists()
    for table in ("gpu_samples", "gpu_minute", "ingested_files"):
        assert scalar(wh, f"SELECT count(*) FROM {table}") == 0, table
    assert len(wh.pending_files("gpu_samples")) == 2

    monkeypatch.undo()
    result = wh.ingest_spool()
    assert result.files == 2 and result.rows == {"gpu_samples": 12}
    assert scalar(wh, "SELECT count(*) FROM ingested_files") == 2
    assert scalar(wh, "SELECT sum(samples) FROM gpu_minute") == 12


def test_spool_copied_elsewhere_keys_ledger_by_relative_path(cfg: Config, tmp_path: Path) -> None:
    """The ledger key is relative to the spool, so a moved spool is not ingested twice."""
    write(cfg, samples(every(T0, 10, 6)))
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        wh.ingest_spool()
    moved = tmp_path / "moved-spool"
    shutil.copytree(cfg.spool_dir, moved)
    with Warehouse(cfg.db_path, moved) as wh:
        assert wh.ingest_spool().files == 0
        assert scalar(wh, "SELECT count(*) FROM gpu_samples") == 6
    assert os.path.exists(cfg.db_path)


def test_a_migration_numbered_below_the_newest_applied_one_is_still_applied(tmp_path, monkeypatch):
    """Features land in any order: a file at version 4 must still get migration 2 later."""
    import duckdb

    from warehouse import schema

    db = tmp_path / "w.duckdb"
    late = (2, "late feature", ["CREATE TABLE late_feature (x INTEGER)"])
    without = [m for m in schema.MIGRATIONS if m[0] != 2]
    monkeypatch.setattr(schema, "MIGRATIONS", without)
    con = duckdb.connect(str(db))
    schema.migrate(con)
    assert 2 not in schema.applied_versions(con)
    monkeypatch.setattr(schema, "MIGRATIONS", sorted([*without, late]))
    schema.migrate(con)
    assert 2 in schema.applied_versions(con)
    assert con.execute("SELECT count(*) FROM late_feature").fetchall() == [(0,)]
    con.close()


def test_energy_comes_from_the_counter_where_present_else_from_power(cfg):
    """Two GPUs sampled every 10 s for a minute at 300 W: one reports its energy counter
    rising 2,000 J per interval (measured, not 300 W x 10 s = 3,000 J), the other no counter."""
    from datetime import UTC, datetime, timedelta

    import polars as pl

    from tables import spool
    from warehouse.store import Warehouse

    t0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    rows = []
    for uuid, counter in (("GPU-counter", True), ("GPU-power", False)):
        for i in range(7):  # 08:00:00 ... 08:01:00
            rows.append(
                {
                    "ts": t0 + timedelta(seconds=10 * i),
                    "host": "h",
                    "gpu_uuid": uuid,
                    "gpu_model": "H100",
                    "util_pct": 50.0,
                    "mem_used_mib": 1.0,
                    "mem_total_mib": 80.0,
                    "power_w": 300.0,
                    "energy_mj": 1e9 + i * 2_000_000.0 if counter else None,
                    "source": "nvml",
                }
            )
    spool.write_batch(cfg.spool_dir, "gpu_samples", pl.DataFrame(rows), "h")
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        wh.ingest_spool()
        got = dict(
            wh.db.execute(
                "SELECT gpu_uuid, sum(energy_j) FROM gpu_minute"
                " WHERE minute = TIMESTAMPTZ '2026-11-02 08:00:00+00' GROUP BY 1"
            ).fetchall()
        )
    assert got["GPU-counter"] == 6 * 2000.0  # six measured intervals in minute 08:00
    assert got["GPU-power"] == 6 * 10 * 300.0


def test_pod_rows_without_a_pid_are_kept_apart_and_never_doubled(cfg):
    """dcgm-exporter attributes by pod with no pid: two pods sharing a GPU are two rows, and
    reading the same history twice stores them once."""
    from datetime import UTC, datetime

    import polars as pl

    from tables import spool
    from warehouse.store import Warehouse

    ts = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    rows = pl.DataFrame(
        {
            "ts": [ts, ts],
            "host": ["n1", "n1"],
            "gpu_uuid": ["GPU-1", "GPU-1"],
            "pid": pl.Series([None, None], dtype=pl.Int64),
            "pod": ["train-a", "eval-b"],
            "namespace": ["ml", "ml"],
            "source": ["prometheus", "prometheus"],
        }
    )
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        for _ in range(2):
            spool.write_batch(cfg.spool_dir, "process_samples", rows, "n1")
            wh.ingest_spool()
        stored = wh.db.execute("SELECT pod FROM process_samples ORDER BY pod").fetchall()
    assert stored == [("eval-b",), ("train-a",)]
