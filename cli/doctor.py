"""`gpuledger doctor`: what gpuledger finds on this machine, without changing anything."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl

from advisor.engine import describe as describe_engine
from cli import app
from collectors.billing.aws_accounts import credential_source
from collectors.gpu import sources as gpu_sources
from config.catalog import catalog_ages, catalog_as_of
from config.gpu_class import GpuClasses, unpriced_advice, unpriced_warnings
from config.settings import Config
from warehouse import advisor_reads
from warehouse.snapshot import Snapshot, SnapshotMissing


def diagnose(cfg: Config) -> dict[str, Any]:
    out: dict[str, Any] = {
        "config": cfg.source or "(built-in defaults)",
        **gpu_source_probes(),
        "aws_billing": "enabled" if cfg.aws.enabled else "disabled ([aws] enabled = false)",
        "aws_credentials": credential_source(),
        "warehouse": str(cfg.db_path),
        "warehouse_size_mib": round(cfg.db_path.stat().st_size / 2**20, 1)
        if cfg.db_path.exists()
        else "not created yet (run `gpuledger init`)",
        "spool": str(cfg.spool_dir),
        "snapshot": str(cfg.snapshot_path),
        "engine": describe_engine(cfg.engine),
    }
    catalog = None
    try:
        catalog = app.catalog_for(cfg)
        as_of = catalog_as_of(catalog)
        age = (date.today() - as_of).days
        stale = " (stale: update the prices)" if age > cfg.catalog.max_age_days else ""
        out["catalog"] = (
            f"{cfg.catalog_path}: {catalog.height} rows, as of {as_of}, {age} days old{stale}"
        )
        out.update(catalog_age_lines(cfg, catalog))
        out.update(local_host_classes(cfg, catalog))
    except Exception as exc:
        out["catalog"] = f"error: {exc}"
    snap = Snapshot(cfg.snapshot_path)
    try:
        meta = snap.meta()
        if catalog is not None and advisor_reads.has_advisor_tables(snap):
            since = date.today() - timedelta(days=cfg.advisor.window_days + 1)
            unpriced = advisor_reads.unpriced_models(advisor_reads.ledger(snap, since))
            out["unpriced_gpus"] = unpriced_warnings(unpriced, catalog) or (
                "none: every local GPU of the last window has a purchase price"
            )
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


def catalog_age_lines(cfg: Config, catalog: pl.DataFrame, today: date | None = None) -> dict:
    """One line per cloud (and the GPU classes): rows, the oldest and newest as_of, and whether
    the oldest is older than [catalog] max_age_days."""
    out = {}
    ages = catalog_ages(catalog, today or date.today(), cfg.catalog.max_age_days)
    for r in ages.iter_rows(named=True):
        stale = (
            f" (stale: older than {cfg.catalog.max_age_days} days"
            + ("; gpuledger catalog refresh aws" if r["provider"] == "aws" else "")
            + ")"
            if r["stale"]
            else ""
        )
        out[f"catalog {r['provider']}"] = (
            f"{r['rows']} rows, as of {r['oldest']} to {r['newest']}, oldest"
            f" {r['age_days']} days old{stale}"
        )
    return out


def gpu_source_probes() -> dict[str, str]:
    """Whether each GPU source that can tell (collectors/gpu/sources.py) works on this host."""
    out = {}
    for name in gpu_sources.having("probe"):
        ok, why = gpu_sources.get(name).function("probe")()
        out[name] = "ok: " + why if ok else why
    return out


def local_host_classes(cfg: Config, catalog: pl.DataFrame) -> dict[str, str]:
    """For each [[local.hosts]] entry: the catalog class its gpu_model resolves to and where
    its purchase price comes from, or what to add when it has none."""
    classes = GpuClasses(catalog)
    out = {}
    for h in cfg.local.hosts:
        klass = classes.resolve(h.gpu_model)
        info = classes.info(klass) or {}
        if not math.isnan(h.purchase_usd):
            price = f"purchase_usd {h.purchase_usd:,.0f} for {h.gpu_count} GPU(s)"
        elif info.get("purchase_usd_per_gpu") is not None:
            price = f"catalog purchase price {info['purchase_usd_per_gpu']:,.0f} per GPU"
        else:
            price = "unpriced: " + unpriced_advice(h.gpu_model, klass)
        out[f"local host {h.name}"] = f"{h.gpu_model} -> class {klass or 'none'}; {price}"
    return out
