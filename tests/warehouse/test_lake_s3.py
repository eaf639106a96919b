"""The lake's exactly-once commits on S3 (moto's server, a real HTTP endpoint) with the SQL
catalog on SQLite: three committer processes with overlapping file sets, committers killed
with SIGKILL at random points and started again, and re-delivered files. The rows are counted
exactly at the end: every spool row once, none twice.

The spool: 3 hosts x 10 batches; batch j of host h holds 10 + j one-second samples of one GPU
starting at 01:00 + 100 s x j on 1 March, so host h has sum(10..19) = 145 rows and the spool
3 x 145 = 435 rows, all (host, gpu, ts) distinct.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import polars as pl
import pytest

from config.settings import Config, LakeConfig, WarehouseConfig
from tables import spool
from tests.collectors.billing.aws_fakes import moto_server  # noqa: F401
from warehouse.lake import Lake, open_lake

pytest.importorskip("pyiceberg", reason="the lake needs pyiceberg (requirements-lake.txt)")

# Slow: processes against a local S3 server; on a loaded 2-core machine a test takes up to a minute.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "gpuledger-lake"
HOSTS = ("h1", "h2", "h3")
TOTAL_ROWS = 3 * sum(range(10, 20))  # 435
START = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)


@pytest.fixture
def s3(moto_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Config:  # noqa: F811
    """A fresh bucket on the moto server and a configuration whose lake lives in it."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_server,
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"{BUCKET}-{tmp_path.name.lower().replace('_', '-')[-30:]}"
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=bucket)
    return Config(
        warehouse=WarehouseConfig(path=str(tmp_path / "w.duckdb")),
        lake=LakeConfig(
            enabled=True,
            warehouse=f"s3://{bucket}/gpuledger",
            s3_endpoint=moto_server,
            region="us-east-1",
        ),
    )


def write_spool(cfg: Config) -> list[Path]:
    files = []
    for h in HOSTS:
        for j in range(10):
            n = 10 + j
            start = START + timedelta(seconds=100 * j)
            frame = pl.DataFrame(
                {
                    "ts": [start + timedelta(seconds=i) for i in range(n)],
                    "host": [h] * n,
                    "gpu_uuid": [f"GPU-{h}"] * n,
                    "util_pct": [float(i) for i in range(n)],
                }
            )
            files.append(spool.write_batch(cfg.spool_dir, "gpu_samples", frame, h, now=START))
    return files


def committer(cfg: Config, files: list[Path], seed: int, group: int = 3) -> subprocess.Popen:
    args = [
        str(cfg.spool_dir),
        cfg.lake.warehouse,
        cfg.lake_catalog_uri,
        cfg.lake.s3_endpoint,
        str(seed),
        str(group),
        *map(str, files),
    ]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.warehouse.lake_committer", *args],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_exactly_once(lake: Lake, files: list[Path]) -> None:
    """435 rows, all distinct, and every file's key recorded once."""
    rows = pl.concat(
        [lake.scan("gpu_samples", day, host) for day, host in lake.partitions("gpu_samples")]
    )
    assert rows.height == TOTAL_ROWS
    assert rows.select("host", "gpu_uuid", "ts").unique().height == TOTAL_ROWS
    assert lake.row_count("gpu_samples") == TOTAL_ROWS
    assert lake.committed_keys("gpu_samples") == {lake.key(p) for p in files}


def test_three_committers_with_overlapping_files_commit_each_row_once(s3: Config):
    """Each of three processes gets 20 of the 30 files (every file goes to two of them), in an
    order of its own, three files a commit: 60 file-commits asked for, 30 files taken."""
    files = write_spool(s3)
    lake = open_lake(s3)
    lake.table("gpu_samples")  # created once, before the race
    shares = [files[:20], files[10:], files[:10] + files[20:]]
    procs = [committer(s3, share, seed) for seed, share in enumerate(shares)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    committed = already = 0
    for out, _ in outs:
        for line in out.splitlines():
            words = line.split()
            committed += int(words[1])
            already += int(words[3])
    assert (committed, already) == (30, 30)
    assert_exactly_once(lake, files)


def test_committers_killed_at_random_points_lose_and_double_nothing(s3: Config):
    """Three committers over all 30 files, one file a commit; every 0.1-0.6 s one of them is
    killed with SIGKILL and started again, six times; then one runs to the end. Orphan data
    files that a kill left are removed by maintenance, which leaves the rows as they were."""
    files = write_spool(s3)
    lake = open_lake(s3)
    lake.table("gpu_samples")
    rng = random.Random(17)
    procs = [committer(s3, files, seed, group=1) for seed in range(3)]
    for kill in range(6):
        time.sleep(rng.uniform(0.1, 0.6))
        i = rng.randrange(3)
        procs[i].send_signal(signal.SIGKILL)
        procs[i].communicate(timeout=30)
        procs[i] = committer(s3, files, 100 + kill, group=1)
    for p in procs:
        p.kill()
        p.communicate(timeout=30)
    last = committer(s3, files, 999, group=5)
    _, err = last.communicate(timeout=300)
    assert last.returncode == 0, err[-2000:]
    assert_exactly_once(lake, files)
    later = datetime.now(UTC) + timedelta(days=1)
    lake.maintain(now=later, snapshot_days=7, compact_min_files=1000, orphan_grace=timedelta(0))
    assert_exactly_once(lake, files)
    referenced = set(lake.table("gpu_samples").inspect.files().column("file_path").to_pylist())
    stored = _objects(s3, "gpu_samples/data/")
    assert stored == referenced  # no orphan left


def test_redelivered_files_and_expired_snapshots_add_nothing(s3: Config):
    """All 30 files committed, one a commit (10 data files a host); the shipper delivers 10
    again (same keys, rewritten objects); maintenance expires every snapshot but the last (keys
    folded into the ledger) and rewrites each host's 10 data files as one; the 30 files
    delivered once more add nothing."""
    files = write_spool(s3)
    lake = open_lake(s3)
    for path in files:
        lake.commit_spool_files("gpu_samples", [path])
    for path in files[:10]:
        data = path.read_bytes()
        path.unlink()
        path.write_bytes(data)
    assert lake.commit_spool_files("gpu_samples", files[:10]).committed == []
    later = datetime.now(UTC) + timedelta(days=8)
    done = lake.maintain(now=later, snapshot_days=7, compact_min_files=10)
    assert (done.compacted_partitions, done.files_in, done.files_out) == (3, 30, 3)
    assert done.folded_keys == 30
    assert lake.commit_spool_files("gpu_samples", files).committed == []
    assert_exactly_once(lake, files)


def _objects(cfg: Config, under: str) -> set[str]:
    bucket, _, prefix = cfg.lake.warehouse.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3", region_name="us-east-1")
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if f"/{under}" in obj["Key"]:
                keys.add(f"s3://{bucket}/{obj['Key']}")
    return keys


def test_the_glue_catalog_registers_iceberg_tables_athena_reads(s3: Config):
    """[lake] catalog = "glue" on moto: the 30 files commit once, again nothing, and the Glue
    table is an Iceberg table whose metadata location is in the bucket (what Athena reads)."""
    glue = replace(s3, lake=replace(s3.lake, catalog="glue"))
    files = write_spool(glue)
    lake = open_lake(glue)
    assert len(lake.commit_spool_files("gpu_samples", files).committed) == 30
    assert lake.commit_spool_files("gpu_samples", files).committed == []
    assert_exactly_once(lake, files)
    table = boto3.client("glue", region_name="us-east-1").get_table(
        DatabaseName="gpuledger", Name="gpu_samples"
    )["Table"]
    assert table["Parameters"]["table_type"] == "ICEBERG"
    assert table["Parameters"]["metadata_location"].startswith(glue.lake.warehouse)
