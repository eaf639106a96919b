"""`gpuledger run`: the one writer. Ingests the spool, runs the jobs, publishes the snapshot on a
`schedule.Scheduler`; samples in its own thread; exits cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import schedule

from cli import app
from cli.collect import source_settings
from cli.jobs import periodic_jobs
from cli.metrics import MetricsServer, start_metrics
from collectors.gpu import sources
from collectors.gpu.agent import Agent
from config import access
from config.settings import Config, ConfigError

if TYPE_CHECKING:
    import polars as pl

    from warehouse.store import Warehouse

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent


# What may stop the daemon from inside a job: an interrupt, sys.exit. Anything else a job raises
# is logged and the job runs again next period, a Rust panic of Polars (a BaseException) too.
STOPPING = (KeyboardInterrupt, SystemExit)


def guarded(name: str, fn: Callable[[], object], failures: dict[str, int]) -> Callable[[], None]:
    """A job that logs its failure and lets the next run try again, never killing the daemon."""

    def job() -> None:
        try:
            fn()
        except STOPPING:
            raise
        except BaseException:
            failures[name] = failures.get(name, 0) + 1
            log.exception(
                "job %s failed (%d time(s)); it runs again next period", name, failures[name]
            )

    return job


def every_seconds(sched: schedule.Scheduler, seconds: float) -> schedule.Job:
    """`sched.every(seconds).seconds`. schedule annotates `every(interval: int)`, but a job's
    interval is any number of seconds (it becomes a timedelta); configured periods may be
    fractions."""
    return sched.every(seconds).seconds  # type: ignore[arg-type]


def dashboard_command(cfg: Config) -> list[str]:
    """The `streamlit run` command of the dashboard; raises ConfigError for settings that would
    let anyone in (a proxy dashboard off loopback without trusted_proxies: config/access.py) and
    warns loudly for one without login off loopback."""
    d = cfg.dashboard
    problem = access.startup_problem(d.auth, d.host, d.trusted_proxies)
    if problem:
        raise ConfigError(problem)
    exposed = access.exposure_warning(d.auth, d.host)
    if exposed:
        log.warning(exposed)
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "streamlit_app.py"),
        "--server.address",
        cfg.dashboard.host,
        "--server.port",
        str(cfg.dashboard.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "minimal",
        "--client.disableDataExport",
        "true",
    ]


def dashboard_env(cfg: Config) -> dict[str, str]:
    env = dict(os.environ)
    if cfg.source:
        env["GPULEDGER_CONFIG"] = str(Path(cfg.source).resolve())
    env["GPULEDGER_DB"] = str(cfg.db_path.resolve())
    env["GPULEDGER_SNAPSHOT"] = str(cfg.snapshot_path.resolve())
    env["GPULEDGER_SPOOL"] = str(cfg.spool_dir.resolve())
    env.update(access.PEER_ENV)  # the server reports each connection's real peer address
    return env


class Daemon:
    def __init__(self, cfg: Config, *, dashboard: bool = False, once: bool = False) -> None:
        self.cfg = cfg
        self.dashboard = dashboard
        self.once = once
        self.stop_event = threading.Event()
        self.failures: dict[str, int] = {}
        self.agent: Agent | None = None
        self.dash: subprocess.Popen | None = None
        self.metrics: MetricsServer | None = None

    def _on_signal(self, signum: int, _frame: object) -> None:
        log.info("received %s: stopping", signal.Signals(signum).name)
        self.stop_event.set()

    def _sampler(self, demo_on: bool) -> Agent | None:
        """The agent of [collect] source when the daemon samples it itself (`auto`: the demo
        fleet while it runs, else NVML), after its probe says it works here; else None."""
        name = self.cfg.collect.source
        if name == sources.AUTO:
            name = "demo" if demo_on else sources.DEFAULT_SOURCE
        source = sources.get(name)
        if not source.daemon:
            log.info("source %s is sampled by `gpuledger collect`, not the daemon", name)
            return None
        if source.probe:
            ok, why = source.function("probe")()
            if not ok:
                log.info("no local sampling: %s", why)
                return None
        sampler = source.open(source_settings(self.cfg))
        return Agent(
            sampler.sample,
            self.cfg.spool_dir,
            interval_s=self.cfg.collect.interval_s,
            flush_interval_s=self.cfg.collect.flush_interval_s,
        )

    def run(self) -> int:
        cfg = self.cfg
        catalog = app.catalog_for(cfg)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        if self.dashboard:
            self.dash = subprocess.Popen(dashboard_command(cfg), env=dashboard_env(cfg), cwd=ROOT)
            print(f"dashboard: http://{cfg.dashboard.host}:{cfg.dashboard.port}", flush=True)
        wh = app.open_warehouse(cfg)
        thread = None
        try:
            demo_on = self._catch_up(wh, catalog)
            if self.once:
                return 0
            self.metrics = start_metrics(cfg)  # Prometheus /metrics on 127.0.0.1
            self.agent = self._sampler(demo_on)
            if self.agent:
                self.agent.stop_event = self.stop_event
                thread = self.agent.start_thread()
            self._loop(self._scheduler(wh, catalog, demo_on))
            return 0
        finally:
            self._shut_down(wh, catalog, thread)

    def _catch_up(self, wh: Warehouse, catalog: pl.DataFrame) -> bool:
        """Ingest what was queued, seed the demo fleet where it runs, recompute and publish;
        whether the demo fleet runs."""
        cfg = self.cfg
        app.cycle(wh, cfg, catalog, progress=True)  # what was queued decides the demo too
        demo_on, why = app.demo_decision(cfg, wh)
        log.info("demo fleet: %s", why)
        if not demo_on and wh.last_sample("demo") is not None:
            log.warning(
                "the warehouse still holds the demo fleet's data beside yours: "
                "`gpuledger demo --purge` removes it"
            )
        if demo_on:
            seeded = app.seed_demo(wh, cfg, catalog, progress=True)
            if seeded:
                print(
                    f"demo history: {seeded.gpu_rows:,} samples, {seeded.billing_rows} bill"
                    f" lines in {seeded.seconds:.1f}s",
                    flush=True,
                )
        app.cycle(wh, cfg, catalog, force=True)
        return demo_on

    def _scheduler(self, wh: Warehouse, catalog: pl.DataFrame, demo_on: bool) -> schedule.Scheduler:
        """Ingest, publish (where something was ingested) and the periodic jobs, each guarded."""
        cfg = self.cfg
        sched = schedule.Scheduler()
        state = {"dirty": False}

        def ingest() -> None:
            result = wh.ingest_spool()
            if result.files:
                state["dirty"] = True
                log.debug(result.summary())

        def publish() -> None:
            if state["dirty"]:
                app.cycle(wh, cfg, catalog, force=True)
                state["dirty"] = False

        every_seconds(sched, cfg.run.ingest_interval_s).do(guarded("ingest", ingest, self.failures))
        every_seconds(sched, cfg.run.publish_interval_s).do(
            guarded("publish", publish, self.failures)
        )
        for name, period, fn in periodic_jobs(cfg, wh, catalog, demo_on=demo_on):
            every_seconds(sched, period).do(guarded(name, fn, self.failures))
        return sched

    def _loop(self, sched: schedule.Scheduler) -> None:
        """Run the due jobs until told to stop, watching the dashboard's process."""
        while not self.stop_event.is_set():
            try:
                sched.run_pending()  # each job is guarded; this guards the scheduler itself
            except STOPPING:
                raise
            except BaseException:
                log.exception("the scheduler failed; it goes on with the next due job")
            if self.dash is not None and self.dash.poll() is not None:
                log.error("the dashboard exited with status %s", self.dash.returncode)
                self.dash = None
            idle = sched.idle_seconds
            self.stop_event.wait(min(max(idle or 0.5, 0.05), 1.0))

    def _shut_down(
        self, wh: Warehouse, catalog: pl.DataFrame, thread: threading.Thread | None
    ) -> None:
        """Stop sampling, ingest what is left, close the warehouse, the metrics and the
        dashboard."""
        cfg = self.cfg
        self.stop_event.set()
        if thread is not None:
            thread.join(timeout=10)
        try:
            app.cycle(wh, cfg, catalog)
        except Exception:
            log.exception("final ingest failed; the spool keeps the data for the next start")
        wh.close()
        if self.metrics is not None:
            self.metrics.stop()
        if self.dash is not None:
            self.dash.terminate()
            try:
                self.dash.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.dash.kill()
        log.info("stopped")
