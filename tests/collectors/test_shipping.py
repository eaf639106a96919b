"""Shipping spool batches to a shared directory or an S3 prefix (moto on 127.0.0.1), and the
central puller: every batch arrives once, whole, under the same relative path."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import polars as pl
import pytest

from collectors.shipping import S3Puller, Shipper, ShipTargetError, parse_target
from tables import spool
from tests.collectors.billing.aws_fakes import MotoAws, aws, moto_server  # noqa: F401
from warehouse.store import Warehouse

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def frame(host: str, start: datetime, n: int = 5) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts": [start + timedelta(seconds=i) for i in range(n)],
            "host": [host] * n,
            "gpu_uuid": [f"GPU-{host}"] * n,
            "util_pct": [50.0] * n,
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC")},
    )


def agent_spool(root: Path, host: str, batches: int, when: datetime = NOW) -> list[Path]:
    return [
        spool.write_batch(
            root, "gpu_samples", frame(host, when + timedelta(seconds=5 * i)), host, now=when
        )
        for i in range(batches)
    ]


def rel(paths: list[Path], root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in paths)


def test_targets_parse_and_bad_ones_are_refused() -> None:
    assert parse_target("s3://bucket/a/b/").bucket == "bucket"
    assert parse_target("s3://bucket/a/b/").key("kind=x/f") == "a/b/kind=x/f"
    assert parse_target("s3://bucket").key("kind=x/f") == "kind=x/f"
    assert parse_target("/mnt/shared").path == Path("/mnt/shared")
    for bad in ("", "s3://", "https://example.com/x"):
        with pytest.raises(ShipTargetError):
            parse_target(bad)


def test_a_directory_target_gets_every_batch_once_and_the_daemon_ingests_it(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    local = tmp_path / "agent"
    made = agent_spool(local, "gpu-a", 3)
    shipper = Shipper(local, str(shared))
    result = shipper.ship_once()
    assert (result.files, result.failed) == (3, 0)
    assert spool.list_batches(local, "gpu_samples") == []  # local copies gone after the copy
    arrived = spool.list_batches(shared, "gpu_samples")
    assert rel(arrived, shared) == rel(made, local)
    assert not list(shared.rglob(".tmp-*"))
    assert shipper.ship_once().files == 0
    with Warehouse(tmp_path / "central.duckdb", shared) as wh:
        assert wh.ingest_spool().rows == {"gpu_samples": 15}


def test_a_target_that_fails_keeps_the_batches_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    local = tmp_path / "agent"
    agent_spool(local, "gpu-a", 2)
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the shared directory should be")
    shipper = Shipper(local, str(blocked))
    with caplog.at_level(logging.WARNING, logger="collectors.shipping"):
        assert shipper.ship_once().failed == 1
        assert shipper.ship_once().failed == 1
    warnings = [r for r in caplog.records if "shipping to" in r.getMessage()]
    assert len(warnings) == 1 and "stay in" in warnings[0].getMessage()
    assert len(spool.list_batches(local, "gpu_samples")) == 2
    blocked.unlink()
    assert shipper.ship_once().files == 2


def test_shipping_to_its_own_spool_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ShipTargetError, match="own spool"):
        Shipper(tmp_path, str(tmp_path))


def test_s3_round_trip_each_batch_once_even_after_local_compaction(
    aws: MotoAws,  # noqa: F811
    tmp_path: Path,
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="fleet")
    local = tmp_path / "agent"
    made = agent_spool(local, "gpu-a", 2) + agent_spool(local, "gpu-a", 1, NOW - timedelta(days=1))
    assert Shipper(local, "s3://fleet/gpuledger").ship_once().files == 3
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="fleet")["Contents"])
    assert keys == [f"gpuledger/{r}" for r in rel(made, local)]
    assert spool.list_batches(local, "gpu_samples") == []

    central = tmp_path / "central-spool"
    puller = S3Puller("s3://fleet/gpuledger", central, days=3)
    assert puller.pull_once(now=NOW).files == 3
    assert rel(spool.list_batches(central, "gpu_samples"), central) == rel(made, local)
    assert puller.pull_once(now=NOW).files == 0
    # The central spool merges and deletes its copies: the puller must not fetch them again.
    for p in spool.list_batches(central, "gpu_samples"):
        p.unlink()
    assert S3Puller("s3://fleet/gpuledger", central, days=3).pull_once(now=NOW).files == 0
    # A new batch arrives.
    agent_spool(local, "gpu-b", 1)
    Shipper(local, "s3://fleet/gpuledger").ship_once()
    assert puller.pull_once(now=NOW).files == 1


def test_the_puller_skips_objects_that_are_not_spool_batches(
    aws: MotoAws,  # noqa: F811
    tmp_path: Path,
) -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="fleet")
    day = f"kind=gpu_samples/date={NOW:%Y-%m-%d}"
    for key in (
        f"p/{day}/host=x/../../../../escape.parquet",
        f"p/{day}/host=x/.tmp-part-1.parquet",
        f"p/{day}/notes.txt",
        f"p/{day}/part-no-host.parquet",
    ):
        s3.put_object(Bucket="fleet", Key=key, Body=b"x")
    central = tmp_path / "central"
    assert S3Puller("s3://fleet/p", central).pull_once(now=NOW).files == 0
    assert not (tmp_path / "escape.parquet").exists()
    assert spool.list_batches(central, "gpu_samples") == []


def test_pull_from_must_be_s3(tmp_path: Path) -> None:
    with pytest.raises(ShipTargetError, match="spool_dir"):
        S3Puller(str(tmp_path), tmp_path)
