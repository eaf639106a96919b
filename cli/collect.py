"""`gpuledger collect`: the agent on every GPU host, a saved capture parsed and printed, or a
Prometheus server's history read into the spool.

- `--source nvml|smi|prometheus|demo` samples every `[collect] interval_s` into the spool until
  SIGTERM or SIGINT, then flushes what it holds and exits 0 (docs/collectors.md).
- `--once` prints one sample instead; `--from FILE --once` parses a saved capture (smi,
  prometheus) and prints it in the `import samples` schema (DESIGN.md §3); `--from` repeated
  reads the files as one capture (a `--query-gpu` CSV and its `--query-compute-apps` CSV).
- `--source prometheus --url SERVER --since T [--until T] [--step S] [--window S] [--max-series N]`
  reads history through the server's HTTP API into the spool in windows, resuming where the last
  run of the same server, since and step stopped (collectors/gpu/history.py), then ingests it like
  `import` does (queued for the daemon when it owns the warehouse).

Exit status 2 for bad input or usage, and when the source cannot work on this host (no NVIDIA
driver for nvml, no nvidia-smi for smi).

`python -m cli.collect ARGS` is the same command loading only the agent's code (no warehouse,
no advisor, no billing clients): the smallest footprint on a GPU host (docs/collectors.md).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

if __name__ == "__main__":
    # The lean entry samples in one thread: Polars' pool (a thread per core, 100+ on big GPU
    # hosts) would only add memory. Set before Polars is first imported, below.
    os.environ.setdefault("POLARS_MAX_THREADS", "1")

from cli.output import FORMATS, emit, emit_mapping  # noqa: E402
from collectors.gpu import sources  # noqa: E402
from collectors.gpu.agent import Agent  # noqa: E402
from collectors.gpu.sources import Sampler, SourceSettings  # noqa: E402
from config.settings import Config, ConfigError, load_config  # noqa: E402
from tables.files import owner_umask, set_file_mode  # noqa: E402
from tables.records import Batch  # noqa: E402

log = logging.getLogger(__name__)
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
DEFAULT_STEP_S = 60
HISTORY_LAG = timedelta(minutes=5)  # --until's default: now minus this


class CollectUsageError(ValueError):
    """Wrong arguments or a source that cannot work here; exit status 2."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `gpuledger collect` (cli/main.py adds them to its subcommand)."""
    p.add_argument(
        "--source",
        choices=sources.names(),
        default=None,
        help="where to sample: "
        + "; ".join(f"{s.name}: {s.help}" for s in sources.SOURCES.values())
        + " (default: [collect] source)",
    )
    p.add_argument(
        "--from",
        dest="from_file",
        type=Path,
        action="append",
        help="parse a saved capture instead (repeat it for a --query-gpu CSV and the "
        "--query-compute-apps CSV taken with it)",
    )
    p.add_argument("--url", help="dcgm-exporter /metrics URL, or with --since a Prometheus server")
    p.add_argument("--once", action="store_true", help="one sample, then exit")
    p.add_argument("--host", help="host id to record (default: [collect] host_id or detected)")
    p.add_argument("--since", help="read history from a Prometheus server (ISO 8601, e.g. ...Z)")
    p.add_argument("--until", help="end of the history, exclusive (default: 5 minutes ago)")
    p.add_argument("--step", type=int, help="seconds between history points (default: 60)")
    p.add_argument(
        "--window",
        type=int,
        help="seconds of history per query_range call (default: 3600); a run that stops "
        "resumes at the window it was reading",
    )
    p.add_argument(
        "--header",
        action="append",
        metavar="'NAME: VALUE'",
        help="an HTTP header for every history call (repeatable), e.g. 'X-Scope-OrgID: fleet' "
        "for Mimir; user:password@ in --url is basic authentication",
    )
    p.add_argument(
        "--max-series",
        type=int,
        help="series per query_range call at most, more read in groups of `instance` labels "
        "(default: 250,000 points per call / steps per window)",
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m cli.collect`: `gpuledger collect` without the rest of the CLI's imports."""
    parser = argparse.ArgumentParser(
        prog="gpuledger collect", description="gpuledger collect, loading only the agent"
    )
    parser.add_argument("--config", help="configuration file (default: as gpuledger)")
    parser.add_argument("--db", help="warehouse DuckDB file")
    parser.add_argument("--format", choices=FORMATS, default="table")
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        cfg = load_config(args.config, db=args.db)
    except ConfigError as exc:
        print(f"gpuledger: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=os.environ.get("GPULEDGER_LOG_LEVEL", cfg.log.level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    set_file_mode(int(cfg.warehouse.file_mode, 8))
    with owner_umask():  # the spool it writes: [warehouse] file_mode
        return run_collect(args, cfg)


def parse_capture(source: str, paths: list[Path], host: str | None, cfg: Config) -> Batch:
    """Saved captures of `source` (smi: XML or query CSVs, a `--query-compute-apps` CSV matched
    to the `--query-gpu` rows of its sampling cycle; prometheus: text page or API JSON), their
    processes named by the configured rules (by what the capture carries: no /proc)."""
    from collectors.gpu.workload_rules import ProcessAttributor

    entry = sources.get(source)
    if not entry.captures:
        readers = " or ".join(sources.having("captures"))
        raise CollectUsageError(f"--from works with --source {readers}, not {source}")
    batch = entry.function("parse_capture")(paths, host=host)
    return ProcessAttributor(cfg.workloads.rules).apply(batch)


def print_samples(batch: Batch, fmt: str) -> None:
    """The samples in the `import samples` schema (DESIGN.md §3)."""
    rows = batch.gpu_samples.with_columns(
        batch.gpu_samples["ts"].dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00")
    ).to_dicts()
    emit(rows, "json" if fmt == "table" else fmt)


def source_settings(cfg: Config, host: str | None = None, url: str | None = None) -> SourceSettings:
    """What a source may need to open: --host and --url, else the configuration."""
    return SourceSettings(
        host=host,
        host_id=cfg.collect.host_id,
        url=url or cfg.collect.prometheus_url or None,
        rules=cfg.workloads.rules,
        seed=cfg.demo.seed,
    )


def open_sampler(source: str, cfg: Config, host: str | None, url: str | None) -> Sampler:
    """The tick function of `source`; SourceUnavailable (a usage error) when it cannot work
    here."""
    return sources.get(source).open(source_settings(cfg, host, url))


def run_collect(args: argparse.Namespace, cfg: Config) -> int:
    configured = cfg.collect.source
    source = args.source or (configured if configured != sources.AUTO else sources.DEFAULT_SOURCE)
    try:
        if getattr(args, "since", None) is not None or getattr(args, "until", None) is not None:
            return run_history(args, cfg, source)
        for option in ("step", "window", "max_series", "header"):
            if getattr(args, option, None) is not None:
                flag = "--" + option.replace("_", "-")
                raise CollectUsageError(f"{flag} goes with --since (Prometheus history)")
        if args.from_file is not None:
            try:
                batch = parse_capture(source, args.from_file, args.host, cfg)
            except (ValueError, OSError) as exc:
                raise CollectUsageError(str(exc)) from None
            print_samples(batch, args.format)
            return EXIT_OK
        sampler = open_sampler(source, cfg, args.host, args.url)
    except (CollectUsageError, ValueError) as exc:
        print(f"gpuledger collect: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.once:
            print_samples(sampler.sample(datetime.now(UTC)), args.format)
            return EXIT_OK
        return _run_agent(sampler, cfg, source)
    finally:
        sampler.close()


def _run_agent(sampler: Sampler, cfg: Config, source: str) -> int:
    """Sample until SIGTERM or SIGINT; the agent flushes what it holds before returning."""
    agent = Agent(
        sampler.sample,
        cfg.spool_dir,
        interval_s=cfg.collect.interval_s,
        flush_interval_s=cfg.collect.flush_interval_s,
    )
    stop = threading.Event()
    agent.stop_event = stop
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    log.info(
        "collecting from %s every %.1fs into %s", source, cfg.collect.interval_s, cfg.spool_dir
    )
    agent.run()
    log.info(
        "stopped after %d ticks (%d failed), %d spool files",
        agent.ticks,
        agent.errors,
        agent.flushed_files,
    )
    return EXIT_OK


# --------------------------------------------------------------------------- history


def parse_time(text: str, option: str) -> datetime:
    """An ISO 8601 time with its offset (`2026-11-20T00:00:00Z`), or a date (midnight UTC)."""
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        value = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise CollectUsageError(
            f"{option} {text!r} is not an ISO 8601 time like 2026-11-20T00:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise CollectUsageError(f"{option} {text!r} has no offset: add Z for UTC")
    return value.astimezone(UTC)


def _history_options(args: argparse.Namespace) -> tuple[int, int | None, int | None]:
    """--step, --window and --max-series, checked."""
    step = DEFAULT_STEP_S if args.step is None else args.step
    if not 1 <= step <= 3600:
        raise CollectUsageError(f"--step must be between 1 and 3600 seconds, got {step}")
    window = getattr(args, "window", None)
    if window is not None and window < step:
        raise CollectUsageError(f"--window must be at least --step ({step} s), got {window}")
    max_series = getattr(args, "max_series", None)
    if max_series is not None and max_series < 1:
        raise CollectUsageError(f"--max-series must be at least 1, got {max_series}")
    return step, window, max_series


def run_history(args: argparse.Namespace, cfg: Config, source: str) -> int:
    """`collect --source prometheus --url SERVER --since T`: history into the spool in windows
    (resuming where the last run of the same job stopped), then ingested."""
    from collectors.gpu.history import HistoryJob, public_url

    entry = sources.get(source)
    if not entry.history:
        readers = " or ".join(sources.having("history"))
        raise CollectUsageError(f"--since and --until read history from --source {readers} only")
    if args.since is None:
        raise CollectUsageError("--until needs --since")
    url = args.url or cfg.collect.prometheus_url
    if not url:
        raise CollectUsageError("--since needs --url http://prometheus:9090 (the server)")
    since = parse_time(args.since, "--since")
    # Default: a few minutes ago. The newest minutes may not be in the server yet (remote write,
    # VictoriaMetrics' latency offset), and a step once read is not read again on resuming.
    until = parse_time(args.until, "--until") if args.until else datetime.now(UTC) - HISTORY_LAG
    step, window, max_series = _history_options(args)
    job = HistoryJob(source, public_url(url), since, step)  # no password in its state file
    options: dict[str, Any] = {"rules": cfg.workloads.rules, "window_s": window}
    options |= {"max_series": max_series, "headers": _headers(getattr(args, "header", None))}
    try:
        with job.lock(cfg.spool_dir):  # one run of a job at a time
            run = _read_history(entry.function("read_history"), job, url, until, options, cfg)
    except ConnectionError as exc:
        print(f"gpuledger collect: {exc} (stopped; run it again to resume)", file=sys.stderr)
        return EXIT_FAIL
    emit_mapping(_history_report(source, job.url, since, until, step, run, cfg), args.format)
    return EXIT_OK


def _headers(given: list[str] | None) -> dict[str, str]:
    """--header 'Name: value', each checked."""
    headers = {}
    for text in given or []:
        name, colon, value = text.partition(":")
        if not colon or not name.strip() or any(c in text for c in "\r\n"):
            raise CollectUsageError(f"--header {text!r} is not 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _read_history(
    read_history: Any, job: Any, url: str, until: datetime, options: dict[str, Any], cfg: Config
) -> Any:
    """The job's windows from where its last run stopped, spooled (collectors/gpu/history.py)."""
    from collectors.gpu.history import spool_pieces

    resume_at = job.resume_at(cfg.spool_dir)
    if resume_at is not None:
        where = job.state_path(cfg.spool_dir)
        print(f"resuming at {resume_at:%Y-%m-%dT%H:%M:%SZ} ({where})", file=sys.stderr)
    pieces = read_history(url, job.since, until, job.step_s, resume_at=resume_at, **options)
    meta = {"source_url": job.url}
    return spool_pieces(
        job, pieces, cfg.spool_dir, resumed_at=resume_at, metadata=meta, progress=_progress
    )


def _progress(piece: Any, run: Any) -> None:
    """One line on stderr per window read: which, what it held, the total so far."""
    print(
        f"window {piece.window}/{piece.windows} {piece.start:%Y-%m-%dT%H:%M:%SZ}"
        f"..{piece.end:%H:%M:%SZ}: {run.window_rows:,} samples, {piece.series} series, "
        f"{run.window_calls} call(s); {run.rows.get('gpu_samples', 0):,} samples this run",
        file=sys.stderr,
    )


def _history_report(
    source: str, url: str, since: datetime, until: datetime, step: int, run: Any, cfg: Config
) -> dict[str, Any]:
    new_files = len(run.written)
    if new_files:
        status = _ingest(cfg)
    elif run.pieces:
        status = "nothing in that span"
    else:
        status = "already read up to --until" if run.resumed_at else "nothing in that span"
    return {
        source: url,  # the server the history came from
        "since": since,
        "until": until,
        "step_s": step,
        "windows": len(run.windows),
        "resumed_at": run.resumed_at,
        "hosts": len(run.hosts),
        "gpu_samples": run.rows.get("gpu_samples", 0),
        "process_samples": run.rows.get("process_samples", 0),
        "spool_files": new_files,
        "already_spooled": run.already,  # by a run that stopped before recording its window
        "state": str(run.state_path),
        "status": status,
    }


def _ingest(cfg: Config) -> str:
    """Ingest the spool now, as `import` does; queued when the daemon owns the warehouse."""
    from cli import app  # the warehouse's code: loaded only for history

    return app.ingest_now(cfg)


if __name__ == "__main__":
    sys.exit(main())
