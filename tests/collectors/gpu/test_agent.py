from datetime import datetime

import polars as pl

from collectors.gpu.agent import Agent
from tables import spool
from tables.records import Batch


def _batch(now: datetime, hosts=("a", "b")) -> Batch:
    return Batch(
        pl.DataFrame(
            {
                "ts": [now] * len(hosts),
                "host": list(hosts),
                "gpu_uuid": [f"GPU-{h}" for h in hosts],
                "util_pct": [1.0] * len(hosts),
            }
        )
    )


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_flush_writes_one_batch_per_kind_and_host(tmp_path):
    agent = Agent(_batch, tmp_path)
    agent.tick()
    agent.tick()
    assert agent.flush() == 2
    files = spool.list_batches(tmp_path, "gpu_samples")
    assert sorted(p.parent.name for p in files) == ["host=a", "host=b"]
    assert sum(pl.read_parquet(p).height for p in files) == 4


def test_a_failing_sample_is_counted_and_sampling_goes_on(tmp_path):
    calls = {"n": 0}

    def flaky(now):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("GPU fell off the bus")
        return _batch(now)

    agent = Agent(flaky, tmp_path)
    agent.tick()
    agent.tick()
    assert (agent.errors, agent.ticks) == (1, 1)


def test_a_full_disk_keeps_the_rows_in_memory_until_the_spool_recovers(tmp_path, monkeypatch):
    agent = Agent(_batch, tmp_path)
    agent.tick()
    real = spool.write_batch

    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(spool, "write_batch", full)
    assert agent.flush() == 0
    agent.tick()
    monkeypatch.setattr(spool, "write_batch", real)
    assert agent.flush() == 2
    rows = sum(pl.read_parquet(p).height for p in spool.list_batches(tmp_path, "gpu_samples"))
    assert rows == 4  # nothing sampled during the outage was lost


def test_ticks_follow_the_monotonic_schedule_without_drift(tmp_path):
    clock = FakeClock()
    seen: list[float] = []
    agent = Agent(
        lambda now: _batch(now), tmp_path, interval_s=1.0, flush_interval_s=60, clock=clock
    )

    def tick() -> None:
        seen.append(clock.t)
        clock.t += 0.3  # each tick takes 0.3 s
        if len(seen) == 5:
            agent.stop_event.set()

    agent.tick = tick  # type: ignore[method-assign]
    agent.stop_event.wait = lambda d: setattr(clock, "t", clock.t + d)  # type: ignore[method-assign]
    agent.run()
    assert seen == [100.0, 101.0, 102.0, 103.0, 104.0]


def test_a_failure_that_goes_on_is_logged_once_then_once_a_minute(tmp_path, caplog):
    clock = FakeClock()

    def down(now):
        raise ConnectionError("cannot fetch http://127.0.0.1:9400/metrics: refused")

    agent = Agent(down, tmp_path, clock=clock)
    with caplog.at_level("INFO", logger="collectors.gpu.agent"):
        for _ in range(90):  # 90 ticks a second apart
            agent.tick()
            clock.t += 1.0
        agent.sample = _batch
        agent.tick()
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "sampling failed; the next tick tries again",
        "sampling still failing (61 ticks in a row): ConnectionError: cannot fetch"
        " http://127.0.0.1:9400/metrics: refused",
        "sampling works again after 90 failed tick(s)",
    ]
    assert caplog.records[0].exc_info is not None  # the first one carries the traceback
    assert (agent.errors, agent.ticks) == (90, 1)


def test_stop_ends_run_and_flushes_what_it_holds(tmp_path):
    agent = Agent(_batch, tmp_path, interval_s=0.2, flush_interval_s=300)
    thread = agent.start_thread()
    while agent.ticks < 2:
        thread.join(0.01)
    agent.stop()
    thread.join(5)
    assert not thread.is_alive()
    rows = sum(pl.read_parquet(p).height for p in spool.list_batches(tmp_path, "gpu_samples"))
    assert rows == 2 * agent.ticks  # two hosts a tick, all flushed on stop
