"""The lake (warehouse/lake.py) on a local folder: spool batches become Iceberg commits exactly
once, read back by partition, maintained by Iceberg's own means.

Every spool batch here is small and hand-made, so each figure is counted by hand in the test.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from config.settings import Config, ConfigError, LakeConfig, WarehouseConfig, load_config
from tables import spool
from tables.lake import LAKE_TABLES, SPOOL_FILES_PROPERTY, iceberg_schema
from tables.records import GPU_SAMPLES, conform
from warehouse.lake import (
    Lake,
    LakeError,
    catalog_properties,
    decode_keys,
    encode_keys,
    open_lake,
)

pytest.importorskip("pyiceberg", reason="the lake needs pyiceberg (requirements-lake.txt)")

# 23:59:50 on 1 March: a batch of 20 one-second samples runs 10 s into 2 March.
T0 = datetime(2026, 3, 1, 23, 59, 50, tzinfo=UTC)
AT = datetime(2026, 3, 2, 0, 0, 30, tzinfo=UTC)  # when the agent wrote them


def samples(host: str, n: int, start: datetime = T0, gpu: str = "GPU-1") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [start + timedelta(seconds=i) for i in range(n)],
            "host": [host] * n,
            "gpu_uuid": [gpu] * n,
            "gpu_model": ["H100"] * n,
            "util_pct": [float(i) for i in range(n)],
            "power_w": [300.4] * n,
        }
    )


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return Config(
        warehouse=WarehouseConfig(path=str(tmp_path / "warehouse.duckdb")),
        lake=LakeConfig(enabled=True),
    )


@pytest.fixture
def lake(cfg: Config) -> Lake:
    return open_lake(cfg)


def batch(cfg: Config, frame: pl.DataFrame, kind: str = "gpu_samples") -> Path:
    return spool.write_batch(cfg.spool_dir, kind, frame, frame["host"][0], now=AT)


def test_the_iceberg_schema_is_generated_from_the_record_definition():
    schema = iceberg_schema(LAKE_TABLES["gpu_samples"])
    assert [f.name for f in schema.fields] == list(GPU_SAMPLES.names)
    assert [f.field_id for f in schema.fields] == list(range(1, len(GPU_SAMPLES.names) + 1))
    assert str(schema.find_field("ts").field_type) == "timestamptz"
    assert str(schema.find_field("gpu_index").field_type) == "int"
    assert not any(f.required for f in schema.fields)


def test_spool_keys_survive_their_summary_encoding():
    keys = ["kind=gpu_samples/date=2026-03-02/host=h1/part-1.parquet", "kind=x/y"]
    assert decode_keys(encode_keys(reversed(keys))) == sorted(keys)


def test_files_commit_once_and_read_back_by_day_and_host(cfg, lake):
    """h1: 20 samples from 23:59:50 (10 on 1 March, 10 on 2 March); h2: 5 on 1 March. Three
    partitions, 25 rows; committing the same files again adds nothing."""
    files = [batch(cfg, samples("h1", 20)), batch(cfg, samples("h2", 5))]
    first = lake.commit_spool_files("gpu_samples", files)
    assert (first.rows, first.data_files, len(first.committed), first.already) == (25, 3, 2, [])
    again = lake.commit_spool_files("gpu_samples", files)
    assert (again.rows, again.committed, len(again.already)) == (0, [], 2)
    assert lake.row_count("gpu_samples") == 25
    assert lake.partitions("gpu_samples") == [
        (date(2026, 3, 1), "h1"),
        (date(2026, 3, 1), "h2"),
        (date(2026, 3, 2), "h1"),
    ]
    assert lake.partitions("gpu_samples", since=date(2026, 3, 2)) == [(date(2026, 3, 2), "h1")]
    day2 = lake.scan("gpu_samples", date(2026, 3, 2), "h1", ["ts", "util_pct", "power_w"])
    # Samples 10..19 fall on 2 March; power is kept at 1 W (300.4 -> 300.0).
    assert day2["util_pct"].to_list() == [float(i) for i in range(10, 20)]
    assert day2["power_w"].unique().to_list() == [300.0]
    assert day2.schema["ts"] == pl.Datetime("us", "UTC")
    hour = lake.raw_for("h1", datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    assert hour.height == 10 and hour.columns == list(GPU_SAMPLES.names)


def test_a_redelivered_file_under_the_same_key_adds_nothing(cfg, lake):
    """The shipper copies a batch again after a lost acknowledgement: same key, same rows."""
    path = batch(cfg, samples("h1", 4))
    lake.commit_spool_files("gpu_samples", [path])
    copy = path.read_bytes()
    path.unlink()
    path.write_bytes(copy)
    assert lake.commit_spool_files("gpu_samples", [path]).committed == []
    assert lake.row_count("gpu_samples") == 4


def test_each_commit_records_its_spool_keys_in_its_snapshot(cfg, lake):
    a, b = batch(cfg, samples("h1", 3)), batch(cfg, samples("h2", 2))
    lake.commit_spool_files("gpu_samples", [a])
    lake.commit_spool_files("gpu_samples", [a, b])
    table = lake.table("gpu_samples")
    recorded = [
        decode_keys(s.summary.additional_properties[SPOOL_FILES_PROPERTY])
        for s in table.snapshots()
    ]
    assert recorded == [[lake.key(a)], [lake.key(b)]]


def test_a_crash_before_the_catalog_commit_leaves_orphans_and_no_rows(cfg, lake, monkeypatch):
    """Killed between writing the data files and the catalog commit: no snapshot, so the next
    run commits the files (5 rows, once); maintenance then removes the orphan file."""
    path = batch(cfg, samples("h2", 5))

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # as good as kill -9 for the catalog: nothing was committed

    with monkeypatch.context() as m:
        m.setattr(Lake, "_try_commit", die)
        with pytest.raises(KeyboardInterrupt):
            lake.commit_spool_files("gpu_samples", [path])
    assert lake.row_count("gpu_samples") == 0
    assert len(_data_files(cfg)) == 1  # the orphan
    assert lake.commit_spool_files("gpu_samples", [path]).rows == 5
    assert lake.row_count("gpu_samples") == 5
    now = datetime.now(UTC)  # orphans older than the grace: all of them, with a grace of 0
    done = lake.maintain(now=now, snapshot_days=7, compact_min_files=8, orphan_grace=timedelta(0))
    assert done.orphans_removed == 1
    assert len(_data_files(cfg)) == 1
    assert lake.scan("gpu_samples", date(2026, 3, 1), "h2").height == 5


def test_a_committer_that_loses_the_race_checks_the_keys_again(cfg, tmp_path, monkeypatch):
    """Two committers with overlapping files: A takes {a, b} and commits while B (holding
    {b, c}) is between writing and committing; B's commit is refused, B refreshes, leaves b
    out and commits c alone. 3 + 4 + 5 rows, each once."""
    a, b, c = (batch(cfg, samples(h, n)) for h, n in (("h1", 3), ("h2", 4), ("h3", 5)))
    one, two = open_lake(cfg), open_lake(cfg)
    one.table("gpu_samples")
    real = Lake._write_data_files
    raced = []

    def write_then_lose(self, table, lt, rows, **options):
        paths = real(self, table, lt, rows, **options)
        if self is two and not raced:
            raced.append(one.commit_spool_files("gpu_samples", [a, b]))
        return paths

    monkeypatch.setattr(Lake, "_write_data_files", write_then_lose)
    result = two.commit_spool_files("gpu_samples", [b, c])
    assert raced[0].rows == 7
    assert result.committed == [two.key(c)] and result.already == [two.key(b)]
    assert result.attempts == 2 and result.rows == 5
    assert one.row_count("gpu_samples") == 12
    # B's first data files (b and c together) were deleted when it rewrote c alone.
    assert len(_data_files(cfg)) == 3


def test_maintenance_expires_snapshots_keeping_their_keys_and_compacts(cfg, lake):
    """Eight batches of h1 on 1 March (2 rows each) are eight data files in one partition;
    maintenance rewrites them as one (16 rows), expires the eight commits and folds their keys
    into the ledger, so re-delivering all eight still adds nothing."""
    paths = [
        batch(cfg, samples("h1", 2, T0 - timedelta(hours=1, seconds=10 * i))) for i in range(8)
    ]
    for p in paths:
        lake.commit_spool_files("gpu_samples", [p])
    later = datetime.now(UTC) + timedelta(days=8)
    done = lake.maintain(now=later, snapshot_days=7, compact_min_files=8)
    assert (done.compacted_partitions, done.files_in, done.files_out) == (1, 8, 1)
    assert done.expired_snapshots == 8 and done.folded_keys == 8
    assert done.orphans_removed == 8  # the eight small files the rewrite replaced
    table = lake.table("gpu_samples")
    assert len(table.snapshots()) == 1  # the rewrite's
    assert lake.row_count("gpu_samples") == 16
    assert lake.commit_spool_files("gpu_samples", paths).committed == []
    assert lake.scan("gpu_samples", date(2026, 3, 1), "h1").height == 16
    assert len(_data_files(cfg)) == 1


def bill(costs: list[float], scope: str, days: list[int], accounts: list[str]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ChargePeriodStart": [datetime(2026, 3, d, tzinfo=UTC) for d in days],
            "ProviderName": ["AWS"] * len(costs),
            "BillingAccountId": accounts,
            "EffectiveCost": costs,
            "scope": [scope] * len(costs),
        }
    )


def test_bills_are_partitioned_by_day_provider_and_account(cfg, lake):
    """1 March: 1.5 (account 1) + 2.0 (account 2); 2 March: 4.0 (account 1): three partitions."""
    b = bill([1.5, 2.0, 4.0], "march", [1, 1, 2], ["111111111111", "222222222222", "111111111111"])
    path = spool.write_batch(cfg.spool_dir, "billing_items", b, "aws", now=AT)
    assert lake.commit_spool_files("billing_items", [path]).rows == 3
    files = lake.table("billing_items").inspect.files()
    assert files.num_rows == 3
    assert lake.partitions("billing_items") == [
        (date(2026, 3, 1), "AWS"),
        (date(2026, 3, 2), "AWS"),
    ]
    assert lake.scan("billing_items", date(2026, 3, 1), "AWS")["EffectiveCost"].sum() == 3.5


def test_a_restated_bill_replaces_its_scope_in_the_lake(cfg, lake):
    """March is billed (1.5 + 2.0), then restated (5.0 alone), both batches in one call, oldest
    first; February (7.0) is another scope and stays: 5.0 + 7.0 in the lake, as in the
    warehouse."""
    first = bill([1.5, 2.0], "march", [1, 2], ["111111111111"] * 2)
    other = bill([7.0], "february", [1], ["111111111111"])
    restated = bill([5.0], "march", [1], ["111111111111"])
    paths = [
        spool.write_batch(cfg.spool_dir, "billing_items", f, "aws", now=AT + timedelta(seconds=i))
        for i, f in enumerate((first, other, restated))
    ]
    done = lake.commit_spool_files("billing_items", paths)
    assert len(done.committed) == 3
    rows = pl.concat(
        [lake.scan("billing_items", d, p) for d, p in lake.partitions("billing_items")]
    )
    assert sorted(rows["EffectiveCost"].to_list()) == [5.0, 7.0]
    assert lake.commit_spool_files("billing_items", paths).committed == []


def test_a_file_outside_the_spool_is_refused(lake, tmp_path):
    with pytest.raises(ValueError):
        lake.key(tmp_path / "elsewhere.parquet")


def test_the_lake_is_off_unless_enabled(tmp_path):
    cfg = Config(warehouse=WarehouseConfig(path=str(tmp_path / "w.duckdb")))
    with pytest.raises(LakeError, match=r"\[lake\] enabled"):
        open_lake(cfg)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('catalog = "rest"', r"\[lake\] catalog_uri must be set"),
        ('catalog = "hive"', r"\[lake\] catalog must be one of sql, glue, rest"),
        ('warehouse = "gs://bucket"', r"\[lake\] warehouse must be a folder or an s3://"),
        ('catalog = "glue"\nwarehouse = "/data/lake"', r"\[lake\] warehouse must be an s3://"),
        ('namespace = "a-b"', r"\[lake\] namespace must be letters"),
    ],
)
def test_a_bad_lake_setting_names_its_key(tmp_path, body, message):
    path = tmp_path / "gpuledger.toml"
    path.write_text(f"[lake]\n{body}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_the_lake_defaults_sit_beside_the_warehouse(tmp_path):
    cfg = Config(warehouse=WarehouseConfig(path=str(tmp_path / "w.duckdb")))
    assert cfg.lake_warehouse == (tmp_path / "lake").as_uri()
    assert cfg.lake_catalog_uri == f"sqlite:///{tmp_path / 'lake_catalog.db'}"


def _data_files(cfg: Config) -> list[Path]:
    return sorted((cfg.db_path.parent / "lake" / "gpuledger" / "gpu_samples").rglob("*.parquet"))


@pytest.mark.parametrize(
    ("lake", "expected"),
    [
        (
            LakeConfig(
                enabled=True,
                catalog="glue",
                warehouse="s3://acme/lake",
                region="eu-west-1",
            ),
            {"warehouse": "s3://acme/lake", "s3.region": "eu-west-1", "glue.region": "eu-west-1"},
        ),
        (
            LakeConfig(
                enabled=True,
                catalog="rest",
                catalog_uri="https://catalog.example.com",
                warehouse="s3://acme/lake/",
                s3_endpoint="http://minio:9000",
            ),
            {
                "warehouse": "s3://acme/lake",
                "uri": "https://catalog.example.com",
                "s3.endpoint": "http://minio:9000",
            },
        ),
    ],
)
def test_glue_and_rest_catalogs_get_their_settings(tmp_path, lake, expected):
    cfg = Config(warehouse=WarehouseConfig(path=str(tmp_path / "w.duckdb")), lake=lake)
    assert catalog_properties(cfg) == expected


def test_values_keep_full_precision_when_compaction_does_not_round(cfg, tmp_path):
    """[retention] compact_quantize = false: 300.4 W stays 300.4 in the lake too."""
    from dataclasses import replace

    exact = replace(cfg, retention=replace(cfg.retention, compact_quantize=False))
    lake = open_lake(exact)
    lake.commit_spool_files("gpu_samples", [batch(exact, samples("h1", 3))])
    assert lake.scan("gpu_samples", date(2026, 3, 1), "h1")["power_w"].to_list() == [300.4] * 3


def test_a_column_the_record_gained_is_added_to_an_older_table(cfg):
    """A table made before migration 14 (21 columns: no power_limit_w, ecc_errors, xid_error),
    with 2 rows in a data file of those 21 columns, gains the 3 columns when the lake opens it;
    the old rows read them as nulls, 3 new rows carry their power limit."""
    from dataclasses import replace

    import pyarrow.parquet as pq

    now = LAKE_TABLES["gpu_samples"]
    early = replace(now, record=replace(now.record, columns=now.record.columns[:21]))
    first = open_lake(cfg)
    first.catalog.create_namespace("gpuledger")
    table = first._create(early)
    old_rows = conform(samples("h1", 2), "gpu_samples").select(early.record.names)
    path = f"{table.location()}/data/old.parquet"
    Path(path.removeprefix("file://")).parent.mkdir(parents=True)
    pq.write_table(old_rows.to_arrow(), path.removeprefix("file://"))
    table.add_files([path])
    lake = open_lake(cfg)
    assert [f.name for f in lake.table("gpu_samples").schema().fields] == list(GPU_SAMPLES.names)
    limited = samples("h1", 3, T0 + timedelta(seconds=2)).with_columns(power_limit_w=700.0)
    lake.commit_spool_files("gpu_samples", [batch(cfg, limited)])
    got = lake.scan("gpu_samples", date(2026, 3, 1), "h1", ["ts", "power_limit_w"])
    assert got["power_limit_w"].to_list() == [None, None, 700.0, 700.0, 700.0]
