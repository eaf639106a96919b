"""`gpuledger ship`: move this host's finished spool batches to `[ship] target` (a shared
directory or an S3 prefix), every `[ship] interval_s` until SIGTERM or SIGINT, beside
`gpuledger collect`; `--once` ships what is there and exits. `--pull` is the central side for S3:
download new batches from `[ship] pull_from` into the local spool (`gpuledger run` does this
itself when `pull_from` is set). docs/multi-host.md describes the layout."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from cli.output import emit_mapping
from collectors.shipping import S3Puller, Shipper, ShipTargetError
from config.settings import Config

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "ship",
        parents=[common],
        help="ship this host's spool batches to the central spool (directory or S3)",
        description=__doc__,
    )
    p.add_argument("--target", help="directory or s3://bucket/prefix (default: [ship] target)")
    p.add_argument("--once", action="store_true", help="one run, then exit")
    p.add_argument(
        "--pull", action="store_true", help="central side: pull new batches from [ship] pull_from"
    )
    p.set_defaults(func=cmd_ship)


def cmd_ship(args: argparse.Namespace, cfg: Config) -> int:
    try:
        if args.pull:
            source = args.target or cfg.ship.pull_from
            if not source:
                raise ShipTargetError("--pull needs [ship] pull_from or --target s3://…")
            return _pull(args, cfg, source)
        target = args.target or cfg.ship.target
        if not target:
            raise ShipTargetError(
                "nothing to ship to: set [ship] target (a shared directory or s3://bucket/prefix)"
                " or pass --target"
            )
        shipper = Shipper(cfg.spool_dir, target)
    except ShipTargetError as exc:
        print(f"gpuledger ship: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.once:
        result = shipper.ship_once()
        emit_mapping(
            {
                "target": str(shipper.target),
                "shipped": result.files,
                "bytes": result.bytes,
                "failed": result.failed,
            },
            args.format,
        )
        return EXIT_FAIL if result.failed else EXIT_OK
    stop = _stop_on_signals()
    shipper.run(stop, cfg.ship.interval_s)
    return EXIT_OK


def _pull(args: argparse.Namespace, cfg: Config, source: str) -> int:
    puller = S3Puller(source, cfg.spool_dir, days=cfg.ship.pull_days)
    if args.once:
        result = puller.pull_once()
        emit_mapping(
            {"source": str(puller.source), "pulled": result.files, "bytes": result.bytes},
            args.format,
        )
        return EXIT_OK
    stop = _stop_on_signals()
    while not stop.is_set():
        try:
            puller.pull_once()
        except Exception as exc:  # network trouble: say so, try again next period
            print(f"gpuledger ship --pull: {type(exc).__name__}: {exc}", file=sys.stderr)
        stop.wait(cfg.ship.interval_s)
    return EXIT_OK


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    return stop
