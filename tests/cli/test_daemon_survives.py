"""The daemon survives any exception a job raises (cli/daemon.py): a Rust panic of Polars is a
BaseException, so the guard and the scheduler loop catch BaseException, all but an interrupt
and sys.exit; the sampler's tick does the same."""

from __future__ import annotations

import logging
import threading

import polars as pl
import pytest
import schedule

from cli.daemon import Daemon, guarded
from collectors.gpu.agent import Agent
from config.settings import Config
from tables.records import Batch


class PanicException(BaseException):
    """What pyo3 raises for a Rust panic: a BaseException, not an Exception."""


def test_a_panicking_job_is_logged_counted_and_run_again(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def tick() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise PanicException("DateTime + TimeDelta overflowed")

    failures: dict[str, int] = {}
    job = guarded("ingest", tick, failures)
    with caplog.at_level(logging.ERROR, logger="cli.daemon"):
        for _ in range(3):
            job()  # never raises
    assert len(calls) == 3 and failures == {"ingest": 2}
    assert "job ingest failed (2 time(s))" in caplog.text and "PanicException" in caplog.text


@pytest.mark.parametrize("stop", [KeyboardInterrupt, SystemExit])
def test_an_interrupt_or_exit_still_stops_the_daemon(stop: type[BaseException]) -> None:
    def tick() -> None:
        raise stop()

    with pytest.raises(stop):
        guarded("ingest", tick, {})()


def test_the_scheduler_loop_goes_on_past_a_failure_of_its_own(
    cfg: Config, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a failure outside the guarded jobs (the scheduler itself) is logged; the loop runs
    the next due job and stops only when told to."""
    daemon = Daemon(cfg)
    sched = schedule.Scheduler()
    ran: list[int] = []

    def job() -> None:
        ran.append(1)
        if len(ran) >= 3:
            daemon.stop_event.set()

    sched.every(0.01).seconds.do(job)  # type: ignore[arg-type]
    real = sched.run_pending
    broken = iter([True, False, False, False, False, False, False, False, False, False])

    def run_pending() -> None:
        if next(broken, False):
            raise PanicException("the scheduler's own bookkeeping")
        real()

    monkeypatch.setattr(sched, "run_pending", run_pending)
    timer = threading.Timer(10.0, daemon.stop_event.set)  # never hang the suite
    timer.start()
    try:
        with caplog.at_level(logging.ERROR, logger="cli.daemon"):
            daemon._loop(sched)
    finally:
        timer.cancel()
    assert len(ran) >= 3
    assert "the scheduler failed" in caplog.text


def test_the_sampler_survives_a_panicking_tick(tmp_path) -> None:
    ticks: list[int] = []

    def sample(now):
        ticks.append(1)
        if len(ticks) == 1:
            raise PanicException("index out of bounds")
        return Batch(pl.DataFrame({"ts": [now], "host": ["h"], "gpu_uuid": ["g"]}))

    agent = Agent(sample, tmp_path / "spool")
    agent.tick()
    agent.tick()
    assert (agent.errors, agent.ticks) == (1, 1)
    assert agent.flush() == 1
