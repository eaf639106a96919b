"""Saved captures through the product (issue 11): nvidia-smi query CSVs -> spool -> warehouse ->
ledger with each process on the GPU row of its sampling cycle, and what `gpuledger collect
--from … --format csv|json` prints imported back by `gpuledger import samples` with nothing lost.

Expected values are read from the printed output and the raw files, never through the parsers.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from advisor.jobs import refresh_ledger
from cli import app
from cli.main import main
from collectors.gpu import smi
from collectors.gpu.workload_rules import ProcessAttributor
from config.settings import Config
from tables import spool

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "realdata"
SMI = REAL / "nvidia-smi-captures-utkuozdemir"
CSV_DIR = SMI / "query-gpu-csv"
H100 = "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01"
MIG_CAPTURE = SMI / "captures" / "linux-x86_64__nvidia-h100-mig__590.48.01.txt"
DCGM_PAGE = REAL / "dcgm-exporter-cncf-ai-conformance" / "kops.prom"  # DCGM profiling, energy
BURN_RULES = ({"match": "cmdline", "pattern": "gpu_burn", "workload": "burn-in"},)


def stored(cfg: Config, sql: str) -> list[dict]:
    con = duckdb.connect(str(cfg.db_path), read_only=True)
    try:
        cursor = con.execute(sql)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        con.close()


def h100_files(*states: str) -> list[Path]:
    return [
        CSV_DIR / f"{H100}__{state}__{query}.csv"
        for state in states
        for query in ("query-gpu", "query-compute-apps")
    ]


def test_the_h100_under_gpu_burn_is_booked_to_its_workload_not_idle(cfg: Config) -> None:
    """The real idle and load captures of one H100: query-gpu at 08:12:38.696 (0 %, no
    process) and 08:12:53.353 (100 %; its query-compute-apps stamped 08:12:53.500: gpu_burn
    15690 MiB, two memhogs 2566 and 1542 MiB). A sample stands for the time to its GPU's next
    one, 14.657 s; the last one, with no successor, for the GPU's usual interval, the same
    14.657 s. On 2026-07-14 the idle sample is `__idle__`: 14.657 s = 0.0040714 GPU-hours, none
    busy. The load sample, 100 % busy, is split by memory share (nvidia-smi gives no SM share):
    `burn-in` 14.657 s × 15690 / 19798 = 11.6157 s, the memhogs (`unattributed:unknown`, no
    rule names them) 14.657 s × 4108 / 19798 = 3.0413 s; none of it `__idle__`."""
    batch = ProcessAttributor(BURN_RULES).apply(smi.parse_capture_files(h100_files("idle", "load")))
    for kind, frame in batch.frames().items():
        spool.write_batch(cfg.spool_dir, kind, frame, H100)
    with app.open_warehouse(cfg) as wh:
        assert wh.ingest_spool().rejected == []
        refresh_ledger(wh, cfg, app.catalog_for(cfg), now=datetime(2026, 7, 15, 6, tzinfo=UTC))
    ledger = stored(
        cfg,
        "SELECT workload, gpu_hours, busy_gpu_hours FROM results_daily_ledger"
        " WHERE day = DATE '2026-07-14' ORDER BY workload",
    )
    seconds = {r["workload"]: r["gpu_hours"] * 3600 for r in ledger}
    busy = {r["workload"]: r["busy_gpu_hours"] * 3600 for r in ledger}
    assert seconds == pytest.approx(
        {"__idle__": 14.657, "burn-in": 11.6157, "unattributed:unknown": 3.0413}, abs=1e-3
    )
    assert busy == pytest.approx(
        {"__idle__": 0.0, "burn-in": 11.6157, "unattributed:unknown": 3.0413}, abs=1e-3
    )


def _printed(cfg: Config, capsys, fmt: str, source: str, files: list[Path]) -> str:
    args = ["--config", str(cfg.source), "--db", str(cfg.db_path), "--format", fmt, "collect"]
    args += ["--source", source, "--once"]
    for path in files:
        args += ["--from", str(path)]
    assert main(args) == 0
    return capsys.readouterr().out


def _same(written: object, kept: object, column: str) -> bool:
    """A printed value (CSV text or JSON) against the value the warehouse holds."""
    if written in ("", None):
        return kept is None
    if column == "ts":
        return datetime.fromisoformat(str(written)) == kept
    if isinstance(kept, int | float):
        return float(written) == float(kept)
    return written == kept


ROUND_TRIPS = {
    "h100-mig-capture": ("smi", [MIG_CAPTURE]),
    "h100-query-pair": ("smi", h100_files("load")),
    "dcgm-page": ("prometheus", [DCGM_PAGE]),
}


@pytest.mark.parametrize(("source", "files"), ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_collect_output_imports_back_with_every_column(
    cfg: Config, tmp_path: Path, capsys, source: str, files: list[Path]
) -> None:
    text = _printed(cfg, capsys, "csv", source, files)
    written = list(csv.DictReader(io.StringIO(text)))
    exported = tmp_path / "export.csv"
    exported.write_text(text)
    assert main(["--config", str(cfg.source), "--db", str(cfg.db_path), "import", "samples",
                 str(exported)]) == 0  # fmt: skip
    capsys.readouterr()
    columns = list(written[0])
    kept = stored(cfg, f"SELECT {', '.join(columns)} FROM gpu_samples ORDER BY ts, gpu_uuid")
    written.sort(key=lambda r: (datetime.fromisoformat(r["ts"]), r["gpu_uuid"]))
    assert len(kept) == len(written) > 0
    for w, k in zip(written, kept, strict=True):
        lost = {c: (w[c], k[c]) for c in columns if not _same(w[c], k[c], c)}
        assert lost == {}, f"{w['gpu_uuid']} at {w['ts']}"
    if source == "smi" and files == [MIG_CAPTURE]:
        migs = [r for r in kept if r["parent_gpu_uuid"]]
        assert len(migs) == 8 and all(r["util_pct"] is None and r["mig_profile"] for r in migs)
    # The JSON print holds the same values.
    printed = json.loads(_printed(cfg, capsys, "json", source, files))
    printed.sort(key=lambda r: (datetime.fromisoformat(r["ts"]), r["gpu_uuid"]))
    for p, k in zip(printed, kept, strict=True):
        assert {c: p[c] for c in columns if not _same(p[c], k[c], c)} == {}
