"""Every file of the bad-input corpus through `gpuledger import` (cli.main.main), against a
warehouse that already holds data: a clear error (exit 2, file, row and column named, nothing
changed) or the values stored verbatim, as tests/corpus/README.md lists."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from cli.main import main

HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
SEED_SAMPLES = (
    "ts,host,gpu_uuid,gpu_model,util_pct,mem_used_mib,mem_total_mib,power_w,workload\n"
    "2026-03-01T08:00:00+00:00,seed-node,GPU-seed,H100,40,1000,81559,300,seed\n"
    "2026-03-01T08:00:10+00:00,seed-node,GPU-seed,H100,40,1000,81559,300,seed\n"
)
SEED_FOCUS = (
    "BilledCost,EffectiveCost,BillingCurrency,BillingAccountId,BillingPeriodStart,"
    "ChargePeriodStart,ChargePeriodEnd,ProviderName,ResourceId\n"
    "5,5,USD,999988887777,2026-02-01T00:00:00Z,2026-02-03T00:00:00Z,2026-02-03T01:00:00Z,"
    "AWS,i-seed\n"
)

# What each error message must say besides the file's path.
ERRORS = {
    "truncated.parquet": "not a readable",
    "empty.csv": "not a readable",
    "header_only.csv": "no rows",
    "missing_power_column.csv": "missing required column(s): power_w",
    "util_is_text.csv": "row 3, column util_pct",
    "util_over_100.csv": "row 4, column util_pct",
    "negative_power.csv": "row 3, column power_w",
    "util_nan.csv": "row 3, column util_pct",
    "bad_timestamp.csv": "row 3, column ts",
    "timestamp_without_offset.csv": "row 2, column ts",
    "epoch_overflow.csv": "row 3, column ts",
    "mem_used_over_total.csv": "row 3, column mem_used_mib",
    "latin1.csv": "utf-8",
    "utf16.csv": "",
    "binary_garbage.csv": "not UTF-8 text",
    "semicolons.csv": "missing required column(s)",
    "gzip_truncated.csv.gz": "truncated or corrupt gzip",
    "parquet_util_text.parquet": "row 1, column util_pct",
    "parquet_naive_time.parquet": "column ts",
    "focus_truncated.csv": "",
    "focus_missing_required.csv": "BilledCost, EffectiveCost",
    "focus_cost_with_comma.csv": "row 3, column BilledCost",
    "focus_tags_not_json.csv": "row 3, column Tags",
    "focus_tags_json_array.csv": "row 2, column Tags",
    "focus_two_currencies.csv": "row 3, column BillingCurrency",
    "focus_latin1.csv": "utf-8",
    "focus_gzip_truncated.csv.gz": "truncated or corrupt gzip",
    "focus_bad_date.csv": "row 3, column ChargePeriodStart",
    # Issue 14: times, empty required values, limits of a line, a value, a gzip, Parquet types.
    "ts_year_9999.csv": "row 3, column ts: 9999-12-31",
    "ts_year_0001.csv": "row 3, column ts: 0001-01-01",
    "ts_epoch_milliseconds.csv": "row 3, column ts: +58136",
    "ts_2199.csv": "row 4, column ts: 2199-01-01",
    "ts_1999.csv": "row 2, column ts: 1999-12-31",
    "ts_empty.csv": "row 3, column ts: value required",
    "power_empty.csv": "row 3, column power_w: value required",
    "mem_total_empty.csv": "row 4, column mem_total_mib: value required",
    "util_empty.csv": "row 3, column util_pct: value required",
    "blank_line_between_rows.csv": "row 3: is blank",
    "only_blank_lines.csv": "no rows",
    "field_200000_chars.csv": "row 3, column workload: a value of 200,000 bytes",
    "line_of_5_mib.csv.gz": "row 3: longer than 1,048,576 bytes",
    "gzip_bomb.csv.gz": "inflates past",
    "tab_separated.csv": "missing required column(s)",
    "parquet_list_column.parquet": "row 2, column workload: holds",
    "parquet_struct_column.parquet": "row 1, column util_pct: holds struct",
    "parquet_ts_9999.parquet": "row 2, column ts: 9999-12-31",
    "parquet_ts_null.parquet": "row 2, column ts: value required",
    "parquet_power_null.parquet": "row 3, column power_w: value required",
    "parquet_field_200000_chars.parquet": "row 3, column workload: a value of 200,000 bytes",
    "focus_charge_start_9999.csv": "row 3, column ChargePeriodStart: 9999-12-31",
    "focus_charge_start_2199.csv": "row 2, column ChargePeriodStart: 2199-01-01",
    "focus_charge_start_empty.csv": "row 3, column ChargePeriodStart: value required",
    "focus_billing_period_0001.csv": "row 3, column BillingPeriodStart: 0001-01-01",
    # Known bugs: the message they should give once fixed.
    "truncated_mid_row.csv": "row 4",
    "power_infinite.csv": "row 3, column power_w",
    "duplicate_column.csv": "util_pct",
    "focus_cost_infinite.csv": "row 3, column BilledCost",
    "parquet_epoch_out_of_range.parquet": "column ts",
    "focus_parquet_epoch_out_of_range.parquet": "column ChargePeriodStart",
}


def readme_cases() -> list[tuple[str, str, str]]:
    """(folder, file, outcome) for every table row of README.md."""
    cases, folder = [], ""
    for line in README.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^## (\w+)/", line)
        if heading:
            folder = heading.group(1)
        row = re.match(r"^\| `(.+?)` \| ([^|]+?) \|", line)
        if row and folder:
            cases.append((folder, row.group(1), row.group(2).strip()))
    return cases


CASES = readme_cases()


def test_the_readme_lists_every_corpus_file_once() -> None:
    listed = sorted(f"{folder}/{name}" for folder, name, _ in CASES)
    on_disk = sorted(
        f"{p.parent.name}/{p.name}" for d in ("samples", "focus") for p in (HERE / d).iterdir()
    )
    assert listed == on_disk
    assert len(listed) >= 30
    assert {o.split(" (")[0] for _, _, o in CASES} <= {"error", "stored", "known bug"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A warehouse holding one samples import and one FOCUS import (built once)."""
    base = tmp_path_factory.mktemp("corpus-seed")
    (base / "seed.csv").write_text(SEED_SAMPLES)
    (base / "seed-focus.csv").write_text(SEED_FOCUS)
    db = base / "data" / "warehouse.duckdb"
    assert main(["import", "samples", str(base / "seed.csv"), "--db", str(db)]) == 0
    assert main(["import", "focus", str(base / "seed-focus.csv"), "--db", str(db)]) == 0
    return base / "data"


SPOOL = "warehouse.spool"  # `--db data/warehouse.duckdb` is a warehouse of its own (README)


def state(data: Path) -> dict:
    """Everything an import could change: each table's rows (hashed), the spool's files."""
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        digest = {}
        for t in sorted(tables):
            rows = con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall()
            digest[t] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    finally:
        con.close()
    spool = sorted(str(p.relative_to(data)) for p in (data / SPOOL).rglob("*") if p.is_file())
    return {"tables": digest, "spool": spool}


def stored_rows(data: Path, sql: str) -> set[tuple]:
    con = duckdb.connect(str(data / "warehouse.duckdb"), read_only=True)
    try:
        return set(con.execute(sql).fetchall())
    finally:
        con.close()


def file_rows(path: Path) -> list[dict[str, str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def params() -> list:
    out = []
    for folder, name, outcome in CASES:
        marks = []
        if outcome.startswith("known bug"):
            marks.append(pytest.mark.xfail(strict=True, reason=f"{name}: {outcome}"))
        out.append(pytest.param(folder, name, outcome, id=f"{folder}/{name}", marks=marks))
    return out


@pytest.mark.parametrize(("folder", "name", "outcome"), params())
def test_corpus_file(
    folder: str,
    name: str,
    outcome: str,
    seeded: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = tmp_path / "data"
    shutil.copytree(seeded, data)
    monkeypatch.chdir(tmp_path)  # a shell-injection file name would create ./pwned here
    path = HERE / folder / name
    before = state(data)
    code = main(["import", folder, str(path), "--db", str(data / "warehouse.duckdb")])
    err = capsys.readouterr().err
    assert not list(tmp_path.rglob("pwned")) and not (HERE / "pwned").exists()
    if outcome != "stored":  # an error, or a known bug that should be one
        assert code == 2, err
        assert str(path) in err, err
        assert ERRORS[name].lower() in err.lower(), err
        assert "Traceback" not in err
        assert state(data) == before
        return
    assert code == 0, err
    after = state(data)
    assert set(after["tables"]) == set(before["tables"])  # no table dropped or added
    new_spool = sorted(set(after["spool"]) - set(before["spool"]))
    assert len(new_spool) == 1 and new_spool[0].startswith(f"{SPOOL}/kind=")
    assert (data / new_spool[0]).resolve().is_relative_to((data / SPOOL).resolve())
    if folder == "samples":
        got = stored_rows(
            data,
            "SELECT host, gpu_uuid, workload FROM gpu_samples WHERE host IS DISTINCT FROM"
            " 'seed-node'",
        )
        want = {(r["host"], r["gpu_uuid"], r["workload"] or None) for r in file_rows(path)}
        assert got == want
        seed = stored_rows(data, "SELECT count(*) FROM gpu_samples WHERE host = 'seed-node'")
        assert seed == {(2,)}
    else:
        got = stored_rows(
            data,
            "SELECT BillingAccountId, ResourceId, workload FROM billing_items"
            " WHERE BillingAccountId <> '999988887777'",
        )
        want = {
            (r["BillingAccountId"], r["ResourceId"], json.loads(r["Tags"]).get("workload"))
            for r in file_rows(path)
        }
        assert got == want
