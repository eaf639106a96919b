"""Files gpuledger creates are the owner's alone unless configured otherwise ([warehouse]
file_mode, tables/files.py): the warehouse, its WAL and lock, the snapshot, the spool, the
billing state and the reports; their folders likewise."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from cli.main import main
from config.settings import ConfigError, load_config
from tables import files, spool
from warehouse.billing_state import BillingState
from warehouse.store import Warehouse

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def umask(mask: int) -> Iterator[None]:
    """A typical login umask (0022: new files 0644) around the block."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(autouse=True)
def default_mode() -> Iterator[None]:
    """Every test starts and ends at the built-in mode (main() sets the configured one)."""
    files.set_file_mode(files.DEFAULT_FILE_MODE)
    yield
    files.set_file_mode(files.DEFAULT_FILE_MODE)


def config(tmp: Path, extra: str = "") -> Path:
    path = tmp / "gpuledger.toml"
    path.write_text(
        f'[warehouse]\npath = "{tmp}/data/warehouse.duckdb"\n{extra}\n'
        f'[catalog]\npath = "{ROOT}/config/catalog.csv"\n[demo]\nmode = "off"\n'
        f'[report]\ndir = "{tmp}/reports"\nweekly = false\n[metrics]\nenabled = false\n'
    )
    return path


def samples(path: Path) -> Path:
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    head = "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,workload"
    rows = [
        f"{(t0 + timedelta(minutes=i)).isoformat()},node-m,GPU-m,H100,50,1000,81559,300,train"
        for i in range(30)
    ]
    path.write_text("\n".join([head, *rows]) + "\n")
    return path


def modes(top: Path) -> dict[str, int]:
    """Mode of every file and folder under `top` (relative names; folders end with /)."""
    out = {}
    for path in sorted(top.rglob("*")):
        name = str(path.relative_to(top)) + ("/" if path.is_dir() else "")
        out[name] = stat.S_IMODE(path.lstat().st_mode)
    return out


def run_product(tmp: Path, extra: str = "") -> Path:
    cfg = config(tmp, extra)
    with umask(0o022):
        assert main(["import", "samples", str(samples(tmp / "s.csv")), "--config", str(cfg)]) == 0
        assert main(["run", "--once", "--config", str(cfg)]) == 0
        assert os.umask(0o022) == 0o022  # main() gave the umask back
    return cfg


@pytest.mark.slow
def test_everything_written_is_the_owners_alone(tmp_path):
    run_product(tmp_path)
    found = modes(tmp_path / "data")
    for name in (
        "warehouse.duckdb",
        "warehouse.duckdb.lock",
        "dashboard.duckdb",
        "spool/",
        "spool/kind=gpu_samples/",
    ):
        assert name in found, sorted(found)
    assert any(n.endswith(".parquet") for n in found)
    wrong = {n: f"{m:04o}" for n, m in found.items() if m != (0o700 if n.endswith("/") else 0o600)}
    assert wrong == {}
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700


@pytest.mark.slow
def test_a_configured_group_mode_applies_to_files_and_folders(tmp_path):
    run_product(tmp_path, 'file_mode = "0640"')
    found = modes(tmp_path / "data")
    wrong = {n: f"{m:04o}" for n, m in found.items() if m != (0o750 if n.endswith("/") else 0o640)}
    assert found and wrong == {}


@pytest.mark.slow
def test_the_reports_too(tmp_path):
    cfg = run_product(tmp_path)
    with umask(0o022):
        assert main(["report", "--week", "2026-W45", "--config", str(cfg)]) == 0
    found = modes(tmp_path / "reports")
    assert {"2026-W45.md", "2026-W45.html"} <= set(found)
    assert {n: f"{m:04o}" for n, m in found.items() if m != 0o600} == {}
    assert stat.S_IMODE((tmp_path / "reports").stat().st_mode) == 0o700


def test_library_writers_need_no_umask(tmp_path):
    """Spool batches, the lock, the billing state: 0600/0700 from tables/files.py itself,
    whatever the process umask."""
    frame = pl.DataFrame({"ts": [datetime(2026, 11, 2, tzinfo=UTC)], "host": ["h"]})
    with umask(0o000):
        batch = spool.write_batch(tmp_path / "spool", "health", frame, "h")
        with BillingState(tmp_path / "state" / "billing_state.duckdb"):
            pass
    assert stat.S_IMODE(batch.stat().st_mode) == 0o600
    assert stat.S_IMODE(batch.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "spool").stat().st_mode) == 0o700
    for name in ("billing_state.duckdb", "billing_state.duckdb.lock"):
        assert stat.S_IMODE((tmp_path / "state" / name).stat().st_mode) == 0o600, name


def test_files_an_older_version_left_readable_are_tightened_at_open(tmp_path):
    db = tmp_path / "warehouse.duckdb"
    with umask(0o022):
        duckdb.connect(str(db)).close()
        Path(f"{db}.lock").touch()
    assert stat.S_IMODE(db.stat().st_mode) == 0o644
    with Warehouse(db, tmp_path / "spool"):
        pass
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{db}.lock").stat().st_mode) == 0o600


def test_existing_folders_keep_their_mode(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    files.make_dirs(shared / "a" / "b")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o755
    assert stat.S_IMODE((shared / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE((shared / "a" / "b").stat().st_mode) == 0o700


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"644x"', "octal file mode"),
        ("644", "must be a string"),
        ('"0700"', "nobody execute"),
        ('"0602"', "others not write"),
        ('"0666"', "others not write"),
        ('"0400"', "owner read and write"),
    ],
)
def test_file_mode_is_checked_at_load_naming_the_key(tmp_path, value, problem):
    with pytest.raises(ConfigError, match=r"\[warehouse\] file_mode") as err:
        load_config(config(tmp_path, f"file_mode = {value}"))
    assert problem in str(err.value)


@pytest.mark.parametrize(("mode", "folders"), [(0o600, 0o700), (0o640, 0o750), (0o660, 0o770)])
def test_folder_mode_follows_file_mode(mode, folders):
    files.set_file_mode(mode)
    assert files.dir_mode() == folders
