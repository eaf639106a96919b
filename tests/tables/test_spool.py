from datetime import UTC, datetime

import polars as pl
import pytest

from tables import spool
from tables.records import empty


def _rows(n: int) -> pl.DataFrame:
    return pl.DataFrame({"host": ["h"] * n, "gpu_uuid": ["GPU-1"] * n, "util_pct": [1.0] * n})


def test_batches_land_in_the_hive_layout(tmp_path):
    now = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
    path = spool.write_batch(tmp_path, "gpu_samples", _rows(3), "ws1", now=now)
    rel = path.relative_to(tmp_path).parts
    assert rel[:3] == ("kind=gpu_samples", "date=2026-11-27", "host=ws1")
    assert rel[3].startswith("part-20261127T083000") and rel[3].endswith(".parquet")
    back = pl.read_parquet(path)
    assert back.height == 3 and back.columns == list(empty("gpu_samples").columns)


def test_no_temporary_file_is_left_or_listed(tmp_path):
    spool.write_batch(tmp_path, "gpu_samples", _rows(2), "ws1")
    (tmp_path / "kind=gpu_samples").joinpath("date=2026-01-01", "host=x").mkdir(parents=True)
    stray = tmp_path / "kind=gpu_samples" / "date=2026-01-01" / "host=x" / ".tmp-part-1.parquet"
    stray.write_bytes(b"half")
    files = spool.list_batches(tmp_path, "gpu_samples")
    assert len(files) == 1 and not files[0].name.startswith(".tmp-")


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    with pytest.raises(OSError):
        spool.write_batch(tmp_path, "gpu_samples", _rows(1), "ws1")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_host_names_cannot_escape_the_spool(tmp_path):
    path = spool.write_batch(tmp_path, "gpu_samples", _rows(1), "../../etc/passwd")
    assert tmp_path in path.parents
    assert path.parent.name == "host=etc_passwd"


def test_metadata_travels_with_the_batch(tmp_path):
    path = spool.write_batch(
        tmp_path, "gpu_samples", _rows(1), "h", metadata={"source_file": "x.csv"}
    )
    assert spool.read_batch_metadata(path)["source_file"] == "x.csv"


def test_since_date_skips_older_partitions(tmp_path):
    spool.write_batch(tmp_path, "gpu_samples", _rows(1), "h", now=datetime(2026, 1, 1, tzinfo=UTC))
    spool.write_batch(tmp_path, "gpu_samples", _rows(1), "h", now=datetime(2026, 1, 3, tzinfo=UTC))
    assert len(spool.list_batches(tmp_path, "gpu_samples", since_date="2026-01-02")) == 1
