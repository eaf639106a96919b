"""One bad batch never stops the fleet (warehouse/quarantine.py): a spool file the ingest cannot
take is set aside in spool/_rejected with its reason (logged, in rejected_batches, on Data
health) and every other file is stored; a failure of the warehouse itself is raised instead; a
time far in the future stored before this check existed hides nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from cli.metrics import SnapshotCollector
from config.settings import Config
from tables import spool
from warehouse import quarantine, store
from warehouse.snapshot import Snapshot, data_health_reads, publish
from warehouse.store import Warehouse

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FAR = datetime(2199, 1, 1, tzinfo=UTC)


class PanicException(BaseException):
    """What pyo3 raises for a Rust panic in Polars: a BaseException, not an Exception."""


def samples(times: list[datetime], host: str = "node-1", uuid: str = "GPU-a") -> pl.DataFrame:
    n = len(times)
    return pl.DataFrame(
        {
            "ts": times,
            "host": [host] * n,
            "gpu_uuid": [uuid] * n,
            "gpu_model": ["H100"] * n,
            "util_pct": [50.0] * n,
            "mem_used_mib": [1.0] * n,
            "mem_total_mib": [80.0] * n,
            "power_w": [300.0] * n,
            "source": ["nvml"] * n,
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )


def every(start: datetime, count: int) -> list[datetime]:
    return [start + timedelta(seconds=10 * i) for i in range(count)]


def write(cfg: Config, frame: pl.DataFrame, kind: str = "gpu_samples") -> Path:
    return spool.write_batch(
        cfg.spool_dir,
        kind,
        frame,
        str(frame["host" if kind != "billing_items" else "ResourceId"][0]),
    )


@pytest.fixture
def wh(cfg: Config) -> Iterator[Warehouse]:
    with Warehouse(cfg.db_path, cfg.spool_dir) as w:
        yield w


def stored_hosts(wh: Warehouse) -> dict[str, int]:
    return dict(wh.db.execute("SELECT host, count(*) FROM gpu_samples GROUP BY 1").fetchall())


def aside(cfg: Config, path: Path) -> Path:
    return cfg.spool_dir / quarantine.REJECTED_DIR / path.relative_to(cfg.spool_dir)


def test_a_sample_dated_2199_is_set_aside_and_the_rest_of_the_spool_goes_on(
    cfg: Config, wh: Warehouse
) -> None:
    a = write(cfg, samples(every(T0, 6), "node-a"))
    # Row 4 of the file is the bad one (Parquet rows count from 1).
    b = write(cfg, samples([*every(T0, 3), FAR], "node-b"))
    c = write(cfg, samples(every(T0, 6), "node-c"))
    result = wh.ingest_spool()
    assert stored_hosts(wh) == {"node-a": 6, "node-c": 6}
    assert result.files == 2 and "rejected 1" in result.summary()
    assert not b.exists() and aside(cfg, b).is_file() and a.exists() and c.exists()
    reason = aside(cfg, b).with_name(b.name + ".reason.txt").read_text()
    assert reason.startswith("row 4, column ts: 2199-01-01") and "after the clock" in reason
    recorded = wh.db.execute("SELECT path, kind, reason FROM rejected_batches").fetchall()
    assert recorded == [(str(b.relative_to(cfg.spool_dir)), "gpu_samples", reason.strip())]
    assert wh.ingest_spool().files == 0  # nothing left to fail again


def test_a_panic_while_storing_sets_aside_only_the_file_at_fault(
    cfg: Config, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four files in one chunk; storing them fails on the third (a Rust panic). The chunk is
    stored in halves until the file at fault is alone: it is set aside, the three others are
    stored with their minute rollups."""
    files = [write(cfg, samples(every(T0, 6), f"node-{i}")) for i in range(4)]
    real = store.minute_rollups

    def rollups(rows: pl.DataFrame, *args: object) -> object:
        if "node-2" in rows["host"].to_list():
            raise PanicException("DateTime + TimeDelta overflowed")
        return real(rows, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "minute_rollups", rollups)
    result = wh.ingest_spool()
    assert stored_hosts(wh) == {"node-0": 6, "node-1": 6, "node-3": 6}
    assert [Path(p).name for p, _ in result.rejected] == [files[2].name]
    assert result.rejected[0][1] == "PanicException: DateTime + TimeDelta overflowed"
    assert aside(cfg, files[2]).is_file()
    minutes = wh.db.execute("SELECT DISTINCT host FROM gpu_minute ORDER BY 1").fetchall()
    assert minutes == [("node-0",), ("node-1",), ("node-3",)]
    ledger = wh.db.execute("SELECT count(*) FROM ingested_files").fetchall()[0][0]
    assert ledger == 3


@pytest.mark.parametrize(
    "failure",
    [
        duckdb.IOException("IO Error: No space left on device"),
        OSError(28, "No space left on device"),
        KeyboardInterrupt(),
    ],
    ids=["duckdb-disk-full", "os-disk-full", "interrupt"],
)
def test_a_failure_of_the_warehouse_is_raised_and_no_batch_is_set_aside(
    cfg: Config, wh: Warehouse, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    write(cfg, samples(every(T0, 6), "node-a"))
    write(cfg, samples(every(T0, 6), "node-b"))

    def insert(self: Warehouse, kind: str) -> None:
        raise failure

    monkeypatch.setattr(Warehouse, "_insert_new_rows", insert)
    with pytest.raises(type(failure)):
        wh.ingest_spool()
    assert not (cfg.spool_dir / quarantine.REJECTED_DIR).exists()
    assert len(wh.pending_files("gpu_samples")) == 2  # queued, taken once the disk has room
    monkeypatch.undo()
    assert wh.ingest_spool().rows == {"gpu_samples": 12}


def bill(start: datetime, resource: str) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ChargePeriodStart": [start],
            "ChargePeriodEnd": [start + timedelta(hours=1)],
            "BillingPeriodStart": [datetime(2026, 3, 1, tzinfo=UTC)],
            "BillingAccountId": ["111"],
            "ProviderName": ["AWS"],
            "ResourceId": [resource],
            "BilledCost": [1.0],
            "EffectiveCost": [1.0],
            "BillingCurrency": ["USD"],
            "source": ["focus"],
            "scope": [f"focus|{resource}"],
        }
    )


def test_a_bill_dated_far_ahead_is_set_aside_and_the_other_bills_are_stored(
    cfg: Config, wh: Warehouse
) -> None:
    good = write(cfg, bill(T0, "i-good"), "billing_items")
    bad = write(cfg, bill(FAR, "i-bad"), "billing_items")
    result = wh.ingest_spool()
    assert result.rows == {"billing_items": 1} and good.exists() and aside(cfg, bad).is_file()
    assert "column ChargePeriodStart: 2199-01-01" in result.rejected[0][1]


def test_data_health_shows_what_was_set_aside(cfg: Config, wh: Warehouse) -> None:
    bad = write(cfg, samples([FAR], "node-z"))
    wh.ingest_spool()
    publish(wh, cfg.snapshot_path, days=35)
    snap = Snapshot(cfg.snapshot_path)
    try:
        shown = data_health_reads(snap)["rejected"]
    finally:
        snap.close()
    assert shown.columns == ["rejected_at", "kind", "path", "reason"]
    assert shown["path"].to_list() == [str(bad.relative_to(cfg.spool_dir))]
    assert shown["reason"][0].startswith("row 1, column ts: 2199-01-01")


def test_a_sample_stored_at_2199_before_the_check_hides_nothing(
    cfg: Config, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse from before the ingest refused such rows: the newest GPU views, /metrics
    and "data as of" read up to the clock plus the skew, so the fleet stays in view."""
    now = T0 + timedelta(minutes=30)
    write(cfg, samples(every(now - timedelta(minutes=2), 6), "node-a", "GPU-a"))
    write(cfg, samples(every(now - timedelta(minutes=2), 6), "node-b", "GPU-b"))
    write(cfg, samples([FAR], "node-z", "GPU-z"))
    monkeypatch.setattr(quarantine, "time_faults", lambda *a, **k: {})  # as it was stored then
    wh.ingest_spool()
    assert stored_hosts(wh)["node-z"] == 1
    publish(wh, cfg.snapshot_path, days=35, now=now)
    snap = Snapshot(cfg.snapshot_path)
    try:
        assert snap.gpus_now()["gpu_uuid"].to_list() == ["GPU-a", "GPU-b"]
        as_of = datetime.fromisoformat(snap.meta()["data_as_of"])
        assert as_of == now - timedelta(minutes=2) + timedelta(seconds=50)  # the last sample
        last = dict(snap.hosts().select("host", "last_sample").iter_rows())
        assert all(t <= now for t in last.values()) and "node-z" not in last
    finally:
        snap.close()
    metrics = {
        (s.labels["gpu_uuid"], s.value)
        for family in SnapshotCollector(cfg.snapshot_path).collect()
        if family.name == "gpuledger_gpu_utilization_percent"
        for s in family.samples
    }
    assert metrics == {("GPU-a", 50.0), ("GPU-b", 50.0)}


def test_one_ingest_transaction_takes_at_most_chunk_rows(
    cfg: Config, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(3):
        write(cfg, samples(every(T0, 6), f"node-{i}"))
    monkeypatch.setattr(store, "FOOTER_BYTES", 0)  # count the rows of these small files too
    sizes: list[int] = []
    real = Warehouse._ingest_rows

    def spy(self: Warehouse, kind: str, files: list, frame: pl.DataFrame, counts: list) -> int:
        sizes.append(frame.height)
        return real(self, kind, files, frame, counts)

    monkeypatch.setattr(Warehouse, "_ingest_rows", spy)
    wh.chunk_rows = 10
    assert wh.ingest_spool().rows == {"gpu_samples": 18}
    assert sizes == [12, 6]  # a chunk closes once it holds 10 rows or more


def test_a_file_moved_back_after_the_fix_is_ingested_and_no_longer_listed(
    cfg: Config, wh: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(cfg, samples(every(T0, 6), "node-a"))

    def broken(*args: object) -> object:
        raise PanicException("a bug since fixed")

    monkeypatch.setattr(store, "minute_rollups", broken)
    wh.ingest_spool()
    assert wh.db.execute("SELECT count(*) FROM rejected_batches").fetchall() == [(1,)]
    monkeypatch.undo()  # the fix
    aside(cfg, path).rename(path)  # what Data health tells a person to do
    assert wh.ingest_spool().rows == {"gpu_samples": 6}
    assert wh.db.execute("SELECT count(*) FROM rejected_batches").fetchall() == [(0,)]
