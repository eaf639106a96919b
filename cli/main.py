"""The `gpuledger` command line. Exit status: 0 success, 2 bad input or usage, 1 other failures."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from cli import app
from cli.commands import register_all
from cli.output import FORMATS, emit, emit_mapping
from collectors.billing import sources as billing_sources
from collectors.errors import InputError
from config.catalog import CatalogError
from config.exposure import install_log_redaction
from config.settings import Config, ConfigError, load_config
from tables import files, spool
from tables.batches import BATCH_ROWS, BatchWriter
from warehouse.errors import explain
from warehouse.lock import LockHeld

log = logging.getLogger("gpuledger")
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Wrong arguments; exit status 2."""


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="configuration file (default: $GPULEDGER_CONFIG or config/gpuledger.toml)",
    )
    common.add_argument("--db", default=argparse.SUPPRESS, help="warehouse DuckDB file")
    common.add_argument(
        "--format",
        choices=FORMATS,
        default=argparse.SUPPRESS,
        help="output format of printed results (default: table)",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="gpuledger",
        parents=[common],
        description="Per-workload GPU utilization and cost, cloud and local side by side.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    p = sub.add_parser("init", parents=[common], help="create the warehouse and the spool")
    p.set_defaults(func=cmd_init)
    p = sub.add_parser("demo", parents=[common], help="fill the warehouse with the demo fleet")
    p.add_argument("--days", type=int, help="days of history (default: [demo] history_days)")
    p.add_argument(
        "--purge", action="store_true", help="delete the demo fleet's data (keep everything else)"
    )
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("import", parents=[common], help="import GPU samples or billing files")
    isub = p.add_subparsers(dest="what", metavar="WHAT")
    isub.required = True
    for what, help_ in (
        ("samples", "GPU samples (CSV or Parquet)"),
        *((f.name, f.help) for f in billing_sources.FORMATS.values()),
    ):
        ip = isub.add_parser(what, parents=[common], help=help_)
        ip.add_argument("files", nargs="+", type=Path, metavar="FILE")
        ip.set_defaults(func=cmd_import)
    p = sub.add_parser("collect", parents=[common], help="sample GPUs into the spool")
    from cli.collect import add_arguments as add_collect_arguments  # the options live there

    add_collect_arguments(p)
    p.set_defaults(func=cmd_collect)
    p = sub.add_parser("run", parents=[common], help="the daemon: ingest, jobs, snapshot, sampling")
    p.add_argument("--dashboard", action="store_true", help="also serve the dashboard")
    p.add_argument("--once", action="store_true", help="one cycle, then exit")
    p.add_argument("--port", type=port_number, help=PORT_HELP)
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("dashboard", parents=[common], help="serve the dashboard (read-only)")
    p.add_argument("--port", type=port_number, help=PORT_HELP)
    p.set_defaults(func=cmd_dashboard)
    p = sub.add_parser("doctor", parents=[common], help="what gpuledger finds on this machine")
    p.set_defaults(func=cmd_doctor)
    register_all(sub, common)
    return parser


# Commands -------------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace, cfg: Config) -> int:
    app.catalog_for(cfg)  # validate it at start
    files.make_dirs(cfg.spool_dir)
    with app.open_warehouse(cfg) as wh:
        app.cycle(wh, cfg, app.catalog_for(cfg), force=True)
    emit_mapping(
        {
            "warehouse": str(cfg.db_path),
            "spool": str(cfg.spool_dir),
            "snapshot": str(cfg.snapshot_path),
        },
        args.format,
    )
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, cfg: Config) -> int:
    from dataclasses import replace

    if args.days is not None:
        if not 1 <= args.days <= 90:
            raise UsageError("--days must be between 1 and 90")
        cfg = replace(cfg, demo=replace(cfg.demo, history_days=args.days))
    catalog = app.catalog_for(cfg)
    if args.purge:
        with app.open_warehouse(cfg) as wh:
            deleted = wh.purge_source("demo")
            app.cycle(wh, cfg, catalog, force=True)  # the ledger and snapshot without it
        emit_mapping({f"deleted {t}": n for t, n in deleted.items()}, args.format)
        return EXIT_OK
    with app.open_warehouse(cfg) as wh:
        seeded = app.seed_demo(wh, cfg, catalog, progress=True)
    if seeded is None:
        emit_mapping({"demo": "already current"}, args.format)
    else:
        emit_mapping(
            {
                "from": seeded.start,
                "to": seeded.end,
                "gpu_samples": seeded.gpu_rows,
                "billing_lines": seeded.billing_rows,
                "seconds": round(seeded.seconds, 2),
            },
            args.format,
        )
    return EXIT_OK


def cmd_import(args: argparse.Namespace, cfg: Config) -> int:
    """Validate every file first (any error: nothing is written), then spool and ingest."""
    if args.what in billing_sources.FORMATS:  # streamed into one batch: cli/commands/billing.py
        from cli.commands.billing import import_billing_files

        rows = import_billing_files(args.files, cfg, args.what)
        status = app.ingest_now(cfg)
        emit([{**r, "status": status} for r in rows], args.format)
        return EXIT_OK
    rows = spool_samples_files(args.files, cfg)
    status = app.ingest_now(cfg, chunk_rows=BATCH_ROWS)
    for r in rows:
        r["status"] = status
    emit(rows, args.format)
    return EXIT_OK


def spool_samples_files(paths: list[Path], cfg: Config) -> list[dict]:
    """Stream each samples file, chunk by chunk validated, into spool batches under temporary
    names; only when every file validated are they all published (any error: nothing is
    written). Memory stays bounded by the chunk, whatever the files' size."""
    from collectors.gpu.samples_file import iter_samples_file

    writers: list[BatchWriter] = []
    try:
        for path in paths:
            writer = BatchWriter(
                cfg.spool_dir,
                "gpu_samples",
                "import-" + spool.safe_part(path.stem),
                metadata={"source_file": str(path.resolve())},
            )
            writers.append(writer)
            for chunk in iter_samples_file(path):
                writer.add(chunk)
        for writer in writers:
            writer.publish()
    except BaseException:
        for writer in writers:
            writer.discard()
        raise
    return [
        {"file": str(p), "kind": "gpu_samples", "rows": w.rows}
        for p, w in zip(paths, writers, strict=True)
    ]


def cmd_collect(args: argparse.Namespace, cfg: Config) -> int:
    from cli.collect import run_collect

    return run_collect(args, cfg)


PORT_HELP = "the dashboard's TCP port (default: [dashboard] port, 8501)"


def port_number(text: str) -> int:
    """A TCP port, 1-65535 (argparse refuses anything else with exit status 2)."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port (1-65535)")
    return port


def with_port(cfg: Config, args: argparse.Namespace) -> Config:
    """`cfg` with the dashboard on `--port` where one was given."""
    port = getattr(args, "port", None)
    return cfg if port is None else replace(cfg, dashboard=replace(cfg.dashboard, port=port))


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    from cli.daemon import Daemon

    cfg = with_port(cfg, args)
    try:
        return Daemon(cfg, dashboard=args.dashboard, once=args.once).run()
    except LockHeld as exc:
        print(f"gpuledger run: the warehouse is already owned: {exc}", file=sys.stderr)
        return EXIT_FAIL


def cmd_dashboard(args: argparse.Namespace, cfg: Config) -> int:
    import subprocess

    from cli.daemon import dashboard_command, dashboard_env

    cfg = with_port(cfg, args)
    print(f"dashboard: http://{cfg.dashboard.host}:{cfg.dashboard.port}", flush=True)
    return subprocess.call(dashboard_command(cfg), env=dashboard_env(cfg))


def cmd_doctor(args: argparse.Namespace, cfg: Config) -> int:
    from cli.doctor import diagnose

    emit_mapping(diagnose(cfg), args.format)
    return EXIT_OK


# Entry point ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors already
        return int(exc.code or 0)
    args.format = getattr(args, "format", "table")
    handlers: dict[type[Exception], Callable[[Exception], str]] = {
        ConfigError: str,
        InputError: str,
        CatalogError: str,
        UsageError: str,
    }
    cfg: Config | None = None
    try:
        cfg = load_config(getattr(args, "config", None), db=getattr(args, "db", None))
        logging.basicConfig(
            level=os.environ.get("GPULEDGER_LOG_LEVEL", cfg.log.level),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        install_log_redaction(cfg)  # no secret value in any log line, whoever logs it
        files.set_file_mode(int(cfg.warehouse.file_mode, 8))
        with files.owner_umask():  # every file made from here on: [warehouse] file_mode
            return args.func(args, cfg)
    except tuple(handlers) as exc:
        print(f"gpuledger: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except LockHeld as exc:
        print(f"gpuledger: {exc}; stop it or wait for it to finish", file=sys.stderr)
        return EXIT_FAIL
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a full disk, a read-only folder, a damaged file: say what to do
        found = explain(exc, cfg.db_path) if cfg is not None else None
        if found is None:
            raise
        print(f"gpuledger: {found}", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":
    sys.exit(main())
