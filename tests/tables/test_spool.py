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


def test_the_layout_is_built_walked_and_read_back_by_one_set_of_functions(tmp_path):
    """partition_dir builds `kind=/date=/host=`, partitions walks it (oldest date first, hosts by
    name), parse_batch_path reads a relative path back; the S3 listing prefix is the same text."""
    days = [datetime(2026, 1, d, 12, tzinfo=UTC) for d in (3, 1, 2)]
    for day in days:
        for host in ("b", "a"):
            spool.write_batch(tmp_path, "health", pl.DataFrame({"host": [host]}), host, now=day)
    d = spool.partition_dir(tmp_path, "health", "2026-01-02", "a/b")
    assert d == tmp_path / "kind=health" / "date=2026-01-02" / "host=a_b"
    assert spool.date_prefix("health", "2026-01-02") == "kind=health/date=2026-01-02/"
    walked = [p.relative_to(tmp_path).as_posix() for p in spool.partitions(tmp_path, "health")]
    assert walked == [
        f"kind=health/date=2026-01-0{d}/host={h}" for d in (1, 2, 3) for h in ("a", "b")
    ]
    since = spool.partitions(tmp_path, "health", since_date="2026-01-02", dates={"2026-01-03", "x"})
    assert [spool.partition_date(p) for p in since] == ["2026-01-03", "2026-01-03"]
    assert [date for date, _ in spool.date_dirs(tmp_path, "health")] == [
        "2026-01-01",
        "2026-01-02",
        "2026-01-03",
    ]
    assert spool.partitions(tmp_path, "gpu_samples") == []

    batch = min(spool.list_batches(tmp_path, "health"), key=str)  # date=2026-01-01/host=a
    part, name = spool.parse_batch_path(batch.relative_to(tmp_path).as_posix())
    assert part == spool.Partition("health", "2026-01-01", "a") and name == batch.name
    assert part.rel == "kind=health/date=2026-01-01/host=a"


@pytest.mark.parametrize(
    "rel",
    [
        "kind=health/date=2026-01-01/host=a/.tmp-part-1.parquet",  # not finished
        "kind=health/date=2026-01-01/part-1.parquet",  # no host
        "kind=health/date=2026-01-01/host=a/x/part-1.parquet",  # too deep
        "kind=health/date=2026-01-01/..host=a/part-1.parquet",  # not host=
        "kind=health/date=2026-01-01/../part-1.parquet",
        "kind=health/date=2026-01-01//part-1.parquet",
        "kind=health/date=2026-01-01/host=a/part-1.csv",
        "kind=health/day=2026-01-01/host=a/part-1.parquet",
    ],
)
def test_anything_but_a_finished_batch_path_is_refused(rel):
    assert spool.parse_batch_path(rel) is None
