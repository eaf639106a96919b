"""`gpuledger recompute --since D --until D` (cli/commands/recompute.py): the days' rollups,
attribution and ledger again from the lake's raw partitions on [engine], the wasted time and
the snapshot after; refused, naming the key, without [lake] enabled. The fleet and its money:
tests/advisor/engine_fleet.py."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from datetime import timedelta

import polars as pl
import pytest

from advisor.jobs import refresh_ledger
from cli import app
from cli.commands.recompute import cmd_recompute
from cli.main import main
from tables import spool
from tests.advisor.engine_fleet import DAY1, DAY2, NOW, fleet_config, load_samples
from warehouse import results
from warehouse.store import Warehouse

pytest.importorskip("pyiceberg", reason="the lake needs pyiceberg (requirements-lake.txt)")


def args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"since": str(DAY1), "until": None, "format": "json", **kw})


def test_recompute_puts_back_a_days_ledger_from_the_lake(tmp_path, capsys):
    cfg = fleet_config(tmp_path)
    cfg = replace(cfg, lake=replace(cfg.lake, enabled=True, warehouse=str(tmp_path / "lake")))
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        load_samples(wh, cfg)
        refresh_ledger(wh, cfg, app.catalog_for(cfg), now=NOW)
        before = results.ledger_between(wh, DAY1, DAY2 + timedelta(days=1))
        # DAY1's attribution and ledger lost (as after a bad restore): no rows left for it.
        results.store_ledger_days(wh, [DAY1], pl.DataFrame(), pl.DataFrame(), pl.DataFrame())
        assert results.ledger_between(wh, DAY1, DAY2).height == 0
    from warehouse.lake import open_lake

    lake = open_lake(cfg)
    for kind in ("gpu_samples", "process_samples"):
        lake.commit_spool_files(kind, spool.list_batches(cfg.spool_dir, kind))
    assert cmd_recompute(args(), cfg) == 0
    out = json.loads(capsys.readouterr().out)
    # DAY1 alone: lab1 (23:00-24:00) and the cloud instance (10:00-12:00) have samples.
    assert out["days"] == f"{DAY1} to {DAY1}" and out["engine"] == "local"
    assert out["partitions"] == 2 and out["minute rows"] == 60 + 120
    with Warehouse(cfg.db_path, cfg.spool_dir) as wh:
        after = results.ledger_between(wh, DAY1, DAY2 + timedelta(days=1))
        assert results.dirty_days(wh).height == 0
    # Every row back as it was, the unseen instance's $5 bill line (no samples) included.
    assert after.sort(before.columns[:4], nulls_last=True).equals(
        before.sort(before.columns[:4], nulls_last=True)
    )
    assert cfg.snapshot_path.exists()


def test_recompute_without_the_lake_names_the_key(tmp_path, capsys):
    f = tmp_path / "gpuledger.toml"
    f.write_text('[demo]\nmode = "off"\n')
    code = main(
        [
            "--config",
            str(f),
            "--db",
            str(tmp_path / "w.duckdb"),
            "recompute",
            "--since",
            "2026-11-23",
        ]
    )
    assert code == 2
    assert "set [lake] enabled = true" in capsys.readouterr().err


def test_recompute_refuses_an_empty_span(tmp_path, capsys):
    cfg = fleet_config(tmp_path)
    cfg = replace(cfg, lake=replace(cfg.lake, enabled=True, warehouse=str(tmp_path / "lake")))
    assert cmd_recompute(args(until=str(DAY1)), cfg) == 2
    assert "--since 2026-11-23 must be before --until 2026-11-23" in capsys.readouterr().err
