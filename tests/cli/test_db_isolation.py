"""`--db PATH` alone isolates a warehouse: another file than the configured one keeps its spool,
snapshot and AWS pull state beside it, named after it, so two warehouses in one folder never
ingest each other's files (README, "The CLI at a glance")."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from cli.main import main
from config.settings import load_config
from warehouse.lock import WriterLock
from warehouse.snapshot import Snapshot

ROOT = Path(__file__).resolve().parents[2]


def config_with_its_own_spool(folder: Path) -> Path:
    """A configuration that sets spool_dir and snapshot_path explicitly (as a user's may):
    `--db` must not send other warehouses there."""
    path = folder / "gpuledger.toml"
    path.write_text(
        '[warehouse]\npath = "main.duckdb"\nspool_dir = "spool"\nsnapshot_path = "dash.duckdb"\n'
        f'[catalog]\npath = "{ROOT / "config" / "catalog.csv"}"\n[demo]\nmode = "off"\n'
    )
    return path


def samples_csv(path: Path, host: str, at: datetime, count: int) -> Path:
    """`count` samples of one GPU of `host`, 10 s apart, ending at `at`."""
    head = "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,workload"
    rows = [
        f"{(at - timedelta(seconds=10 * i)).isoformat()},{host},GPU-{host},H100,50,1000,81559,300,"
        "train"
        for i in range(count)
    ]
    path.write_text("\n".join([head, *rows]) + "\n")
    return path


def hosts(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("SELECT host, count(*) FROM gpu_samples GROUP BY host").fetchall())
    finally:
        con.close()


def ingested(db: Path) -> list[Path]:
    """The spool files the warehouse took (the keys are relative to its spool)."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        keys = [r[0] for r in con.execute("SELECT path FROM ingested_files").fetchall()]
    finally:
        con.close()
    return [db.with_name(f"{db.stem}.spool") / key for key in keys]


def test_the_derived_paths_of_a_db_given_on_the_command_line(tmp_path: Path) -> None:
    conf = config_with_its_own_spool(tmp_path)
    configured = load_config(conf)
    assert (configured.spool_dir, configured.snapshot_path) == (
        tmp_path / "spool",
        tmp_path / "dash.duckdb",
    )
    assert configured.billing_state_path == tmp_path / "billing_state.duckdb"
    # The configured warehouse named with --db keeps the configured layout.
    assert load_config(conf, db=tmp_path / "main.duckdb") == configured
    a = load_config(conf, db=tmp_path / "runs" / "a.duckdb")
    assert a.db_path == tmp_path / "runs" / "a.duckdb"
    assert a.spool_dir == tmp_path / "runs" / "a.spool"
    assert a.snapshot_path == tmp_path / "runs" / "a.snapshot.duckdb"
    assert a.billing_state_path == tmp_path / "runs" / "a.billing_state.duckdb"
    # The shipped configuration's default layout is unchanged.
    shipped = load_config(ROOT / "config" / "gpuledger.toml")
    data = (ROOT / "data").resolve()
    assert (shipped.db_path, shipped.spool_dir, shipped.snapshot_path) == (
        data / "warehouse.duckdb",
        data / "spool",
        data / "dashboard.duckdb",
    )
    assert shipped.billing_state_path == data / "billing_state.duckdb"


def test_two_warehouses_in_one_folder_never_ingest_each_others_files(
    tmp_path: Path, clock: datetime, capsys: pytest.CaptureFixture[str]
) -> None:
    """a.duckdb gets 3 samples of host-a, b.duckdb 2 of host-b, through imports with `--db`.
    While a's writer is held, a's import waits in a.spool/; an import into b (which ingests at
    once) must not take it. Then a's own run ingests it: a holds 3 rows, b 2, each snapshot its
    own, and the configured spool/ and dash.duckdb are never created."""
    conf = config_with_its_own_spool(tmp_path)
    a, b = tmp_path / "a.duckdb", tmp_path / "b.duckdb"
    at = clock.replace(microsecond=0) - timedelta(minutes=5)

    def cli(db: Path, *args: str) -> int:
        return main(["--config", str(conf), "--db", str(db), *args])

    assert cli(a, "init") == 0
    with WriterLock(a):
        assert (
            cli(a, "import", "samples", str(samples_csv(tmp_path / "a.csv", "host-a", at, 3))) == 0
        )
        assert "queued in the spool" in capsys.readouterr().out
        assert len(list((tmp_path / "a.spool").rglob("*.parquet"))) == 1
        assert (
            cli(b, "import", "samples", str(samples_csv(tmp_path / "b.csv", "host-b", at, 2))) == 0
        )
    assert hosts(b) == {"host-b": 2}
    took = ingested(b)
    assert len(took) == 1 and all(p.is_file() for p in took)  # its own batch only
    assert cli(a, "run", "--once") == 0
    assert hosts(a) == {"host-a": 3}
    took = ingested(a)
    assert len(took) == 1 and all(p.is_file() for p in took)
    for db, want in ((a, 3), (b, 2)):
        snap = Snapshot(db.with_name(f"{db.stem}.snapshot.duckdb"))
        assert snap.sample_count() == want
        snap.close()
    assert not (tmp_path / "spool").exists() and not (tmp_path / "dash.duckdb").exists()
    capsys.readouterr()
    assert cli(b, "doctor", "--format", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["spool"], report["snapshot"]) == (
        str(tmp_path / "b.spool"),
        str(tmp_path / "b.snapshot.duckdb"),
    )
