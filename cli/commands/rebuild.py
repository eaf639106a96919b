"""`gpuledger rebuild`: a new warehouse from the spool, for a warehouse that was lost or damaged.

The spool is the permanent record of every sample and bill (warehouse/retention.py keeps it,
compacted; `[retention] spool_days` = 0 keeps it forever), so the warehouse can always be made
again from it: the old file is kept aside as `<warehouse>.before-rebuild-<UTC time>` (never
deleted), a new one ingests every batch of the spool, every day is attributed and costed again,
and the snapshot is published. What the spool does not hold starts afresh: the alerts' history
and delivery log. docs/operations.md says when and how.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from cli import app
from cli.output import emit_mapping
from config.settings import Config
from tables import spool
from tables.records import SCHEMAS
from warehouse.lock import LockHeld, WriterLock

EXIT_OK, EXIT_FAIL = 0, 1


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "rebuild",
        parents=[common],
        help="make the warehouse again from the spool (the old file is kept aside)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=cmd_rebuild)


def set_aside(db_path: Path, now: datetime) -> Path | None:
    """Move the warehouse file (and its write-ahead log) to `<name>.before-rebuild-<time>`;
    returns the new name, None where there was no file."""
    if not db_path.exists():
        return None
    aside = db_path.with_name(f"{db_path.name}.before-rebuild-{now:%Y%m%dT%H%M%SZ}")
    db_path.rename(aside)
    wal = Path(f"{db_path}.wal")
    if wal.exists():
        wal.rename(Path(f"{aside}.wal"))
    return aside


def cmd_rebuild(args: argparse.Namespace, cfg: Config) -> int:
    catalog = app.catalog_for(cfg)  # a broken catalog stops it before anything moves
    batches = sum(len(spool.list_batches(cfg.spool_dir, kind)) for kind in SCHEMAS)
    if batches == 0:
        print(
            f"gpuledger rebuild: the spool {cfg.spool_dir} holds no batches, so there is nothing"
            " to rebuild from; the warehouse is left as it is (is [warehouse] spool_dir right?)",
            file=sys.stderr,
        )
        return EXIT_FAIL
    lock = WriterLock(cfg.db_path)
    try:
        lock.acquire()
    except LockHeld as exc:
        print(
            f"gpuledger rebuild: {exc}: stop `gpuledger run` first, then rebuild",
            file=sys.stderr,
        )
        return EXIT_FAIL
    try:
        aside = set_aside(cfg.db_path, datetime.now(UTC))
    finally:
        lock.release()
    with app.open_warehouse(cfg) as wh:
        result = app.cycle(wh, cfg, catalog, progress=True, recompute=True)
    out: dict[str, object] = {
        "warehouse": str(cfg.db_path),
        "previous file": str(aside) if aside else "(none)",
        "spool files": result.files,
        **{f"{kind} rows": n for kind, n in sorted(result.rows.items())},
        "set aside": len(result.rejected),
        "snapshot": str(cfg.snapshot_path),
    }
    emit_mapping(out, args.format)
    return EXIT_OK
