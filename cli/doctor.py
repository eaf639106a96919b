"""`gpuledger doctor`: what gpuledger finds on this machine, without changing anything."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from cli import app
from collectors.aws_accounts import credential_source
from config.catalog import catalog_as_of
from config.settings import Config
from warehouse.snapshot import Snapshot, SnapshotMissing


def diagnose(cfg: Config) -> dict[str, Any]:
    has_gpu, nvml_why = app.nvml_status()
    out: dict[str, Any] = {
        "config": cfg.source or "(built-in defaults)",
        "nvml": "ok: " + nvml_why if has_gpu else nvml_why,
        "aws_billing": "enabled" if cfg.aws.enabled else "disabled ([aws] enabled = false)",
        "aws_credentials": credential_source(),
        "warehouse": str(cfg.db_path),
        "warehouse_size_mib": round(cfg.db_path.stat().st_size / 2**20, 1)
        if cfg.db_path.exists()
        else "not created yet (run `gpuledger init`)",
        "spool": str(cfg.spool_dir),
        "snapshot": str(cfg.snapshot_path),
    }
    try:
        catalog = app.catalog_for(cfg)
        as_of = catalog_as_of(catalog)
        age = (date.today() - as_of).days
        stale = " (stale: update the prices)" if age > cfg.catalog.max_age_days else ""
        out["catalog"] = (
            f"{cfg.catalog_path}: {catalog.height} rows, as of {as_of}, {age} days old{stale}"
        )
    except Exception as exc:
        out["catalog"] = f"error: {exc}"
    snap = Snapshot(cfg.snapshot_path)
    try:
        meta = snap.meta()
        out["snapshot_age_s"] = round(snap.age_seconds(), 1)
        out["data_as_of"] = meta.get("data_as_of") or "no samples yet"
        for host in snap.hosts().iter_rows(named=True):
            last = host["last_sample"]
            lag = (datetime.now(UTC) - last).total_seconds() if last else None
            out[f"host {host['host']}"] = (
                f"{host['gpus']} GPU(s), source {host['source']}, "
                f"last sample {last:%Y-%m-%d %H:%M:%S}Z"
                f" ({lag:.0f}s ago)"
                if last
                else "no samples"
            )
    except SnapshotMissing as exc:
        out["snapshot_age_s"] = str(exc)
    finally:
        snap.close()
    return out
