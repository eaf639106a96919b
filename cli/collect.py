"""`gpuledger collect`: the agent on every GPU host, or a saved capture parsed and printed."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from datetime import UTC, datetime

from cli.output import emit
from collectors.agent import Agent
from collectors.schema import Batch
from config.settings import Config

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def parse_capture(source: str, path, host: str | None) -> Batch:
    """A saved capture of `source` (smi: XML or query CSV; prometheus: text page or API JSON)."""
    if source == "smi":
        from collectors.smi import parse_capture_file
    elif source == "prometheus":
        from collectors.prometheus import parse_capture_file
    else:
        raise ValueError(f"--from works with --source smi or prometheus, not {source}")
    return parse_capture_file(path, host=host) if host else parse_capture_file(path)


def print_samples(batch: Batch, fmt: str) -> None:
    """The samples in the `import samples` schema (DESIGN.md §3)."""
    rows = batch.gpu_samples.with_columns(
        batch.gpu_samples["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
    ).to_dicts()
    emit(rows, "json" if fmt == "table" else fmt)


def sampler_for(source: str, cfg: Config, host: str | None, url: str | None):
    if source == "demo":
        from collectors.demo import LiveDemo

        return LiveDemo(cfg.demo.seed).tick
    if source == "nvml":
        from collectors.nvml import NvmlCollector, detect_host_id

        collector = NvmlCollector(
            host or detect_host_id(cfg.collect.host_id or None), rules=list(cfg.workloads.rules)
        )
        return collector.sample
    if source == "smi":
        from collectors.nvml import detect_host_id
        from collectors.smi import sample_live

        name = host or detect_host_id(cfg.collect.host_id or None)
        return lambda now: sample_live(name)
    if source == "prometheus":
        from collectors.prometheus import parse_exposition, scrape

        target = url or cfg.collect.prometheus_url
        if not target:
            raise ValueError("source prometheus needs --url or [collect] prometheus_url")
        return lambda now: parse_exposition(scrape(target), host=host, ts=now)
    raise ValueError(f"unknown source {source}")


def run_collect(args: argparse.Namespace, cfg: Config) -> int:
    source = args.source or (cfg.collect.source if cfg.collect.source != "auto" else "nvml")
    if args.from_file is not None:
        try:
            batch = parse_capture(source, args.from_file, args.host)
        except (ValueError, OSError) as exc:
            print(f"gpuledger collect: {args.from_file}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        print_samples(batch, args.format)
        return EXIT_OK
    try:
        sample = sampler_for(source, cfg, args.host, args.url)
    except Exception as exc:
        name = type(exc).__name__
        if name in ("NvmlUnavailable", "SmiUnavailable") or isinstance(exc, ValueError):
            print(f"gpuledger collect: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise
    if args.once:
        print_samples(sample(datetime.now(UTC)), args.format)
        return EXIT_OK
    agent = Agent(
        sample,
        cfg.spool_dir,
        interval_s=cfg.collect.interval_s,
        flush_interval_s=cfg.collect.flush_interval_s,
    )
    stop = threading.Event()
    agent.stop_event = stop
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    log.info(
        "collecting from %s every %.1fs into %s", source, cfg.collect.interval_s, cfg.spool_dir
    )
    agent.run()
    log.info("stopped after %d ticks, %d spool files", agent.ticks, agent.flushed_files)
    return EXIT_OK
