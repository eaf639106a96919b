"""`gpuledger ship`: --once to a directory and to S3, --pull from S3, and usage errors (exit 2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import boto3
import polars as pl
import pytest

from cli.main import main
from config.settings import Config, load_config
from tables import spool
from tests.collectors.billing.aws_fakes import MotoAws, aws, moto_server  # noqa: F401


def batch(cfg: Config, host: str = "gpu-a") -> Path:
    """A spool batch of one sample, now (the clock is pinned: its date partition too)."""
    frame = pl.DataFrame({"ts": [datetime.now(UTC)], "host": [host], "gpu_uuid": ["GPU-1"]})
    return spool.write_batch(cfg.spool_dir, "gpu_samples", frame, host)


@pytest.mark.date_sensitive
def test_ship_once_to_a_directory(
    cfg: Config, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = [batch(cfg), batch(cfg, "gpu-b")]
    shared = tmp_path / "shared"
    code = main(
        ["ship", "--once", "--target", str(shared), "--db", str(cfg.db_path), "--format", "json"]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["shipped"] == 2 and out["failed"] == 0
    for path in made:
        assert not path.exists()
        assert (shared / path.relative_to(cfg.spool_dir)).is_file()


def test_ship_without_a_target_is_a_usage_error(
    cfg: Config, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ship", "--once", "--db", str(cfg.db_path)]) == 2
    assert "[ship] target" in capsys.readouterr().err
    assert main(["ship", "--once", "--target", "ftp://x/y", "--db", str(cfg.db_path)]) == 2
    assert main(["ship", "--pull", "--once", "--db", str(cfg.db_path)]) == 2


@pytest.mark.date_sensitive  # the puller lists the date partitions of the last days
def test_ship_to_s3_then_pull(
    aws: MotoAws,  # noqa: F811
    cfg: Config,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="ship-cli")
    made = batch(cfg)
    rel = made.relative_to(cfg.spool_dir)
    argv = ["--db", str(cfg.db_path), "--format", "json"]
    assert main(["ship", "--once", "--target", "s3://ship-cli/fleet", *argv]) == 0
    assert json.loads(capsys.readouterr().out)["shipped"] == 1
    central = tmp_path / "central" / "warehouse.duckdb"
    pull = ["ship", "--pull", "--once", "--target", "s3://ship-cli/fleet", "--db", str(central)]
    assert main([*pull, "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["pulled"] == 1
    assert (load_config(db=central).spool_dir / rel).is_file()
