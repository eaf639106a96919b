"""Prometheus `/metrics` on 127.0.0.1, served by `gpuledger run` (prometheus-client).

Every scrape reads the published snapshot (read-only, never the writer's connection), so the
endpoint shows what the dashboard shows: per-GPU utilization, SM activity, memory and power;
per-workload cost rate; wasted high-end GPU seconds and dollars (counters over all alerts, which
only grow); open alerts; the snapshot's age.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from advisor.waste import KINDS
from config.settings import Config
from tables.units import BYTES_PER_MIB
from warehouse import alerts as store
from warehouse.snapshot import Snapshot, SnapshotMissing

log = logging.getLogger(__name__)
HOST = "127.0.0.1"


class SnapshotCollector:
    """A custom collector: the metric families are built from the snapshot at scrape time."""

    def __init__(self, snapshot_path: Path) -> None:
        self.snapshot = Snapshot(snapshot_path)

    def describe(self) -> list[Metric]:
        return []  # no collection at registration time

    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "gpuledger_snapshot_age_seconds", "Seconds since the snapshot was published"
        )
        age.add_metric([], self.snapshot.age_seconds())
        yield age
        try:
            yield from self._gpus()
            yield from self._costs()
            yield from self._waste()
        except SnapshotMissing:
            return

    def _gpus(self) -> Iterator[Metric]:
        labels = ["host", "gpu_uuid", "gpu_index", "gpu_model", "workload"]
        util = GaugeMetricFamily(
            "gpuledger_gpu_utilization_percent",
            "NVML utilization.gpu of each GPU at its newest sample",
            labels=labels,
        )
        sm = GaugeMetricFamily(
            "gpuledger_gpu_sm_active_percent",
            "SM active of each GPU at its newest sample, where known (GPM or DCGM)",
            labels=labels,
        )
        power = GaugeMetricFamily(
            "gpuledger_gpu_power_watts", "Power draw of each GPU", labels=labels
        )
        memory = GaugeMetricFamily(
            "gpuledger_gpu_memory_used_bytes", "GPU memory used (memory.used)", labels=labels
        )
        for g in self.snapshot.gpus_now().iter_rows(named=True):
            values = [
                g["host"],
                g["gpu_uuid"],
                "" if g["gpu_index"] is None else str(g["gpu_index"]),
                g["gpu_model"] or "",
                g["workload"] or "",
            ]
            for family, value, scale in (
                (util, g["util_pct"], 1),
                (sm, g["sm_active_pct"], 1),
                (power, g["power_w"], 1),
                (memory, g["mem_used_mib"], BYTES_PER_MIB),
            ):
                if value is not None:
                    family.add_metric(values, value * scale)
        yield from (util, sm, power, memory)

    def _costs(self) -> Iterator[Metric]:
        rate = GaugeMetricFamily(
            "gpuledger_workload_cost_usd_per_hour",
            "What each workload's GPUs cost per hour now: capital + operations + energy for"
            " local GPUs, the on-demand price share for cloud GPUs",
            labels=["workload", "placement"],
        )
        for r in store.snapshot_cost_rates(self.snapshot).iter_rows(named=True):
            rate.add_metric([r["workload"], r["placement"] or ""], r["usd_per_hour"] or 0.0)
        yield rate

    def _waste(self) -> Iterator[Metric]:
        labels = ["workload", "kind"]
        seconds = CounterMetricFamily(
            "gpuledger_wasted_gpu_seconds",
            "Wasted high-end GPU seconds over all alerts (DESIGN.md §2)",
            labels=labels,
        )
        usd = CounterMetricFamily(
            "gpuledger_wasted_usd",
            "Money wasted on high-end GPUs over all alerts, USD",
            labels=labels,
        )
        open_ = GaugeMetricFamily(
            "gpuledger_open_alerts", "Open alerts on wasted high-end GPU time", labels=["kind"]
        )
        totals = store.snapshot_waste_totals(self.snapshot)
        for r in totals.iter_rows(named=True):
            seconds.add_metric([r["workload"], r["kind"]], r["wasted_s"] or 0.0)
            usd.add_metric([r["workload"], r["kind"]], r["wasted_usd"] or 0.0)
        for kind in KINDS:
            open_.add_metric(
                [kind], float(totals.filter(totals["kind"] == kind)["open_alerts"].sum())
            )
        yield from (seconds, usd, open_)


class MetricsServer:
    """The HTTP server and its thread; `stop()` shuts it down."""

    def __init__(self, snapshot_path: Path, port: int) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = SnapshotCollector(snapshot_path)
        self.registry.register(self.collector)
        self.server, self.thread = start_http_server(port, addr=HOST, registry=self.registry)
        self.port = self.server.server_port

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/metrics"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.collector.snapshot.close()


def start_metrics(cfg: Config, *, port: int | None = None) -> MetricsServer | None:
    """Serve /metrics when `[metrics] enabled`; a taken port is logged, never fatal."""
    if not cfg.metrics.enabled:
        return None
    try:
        server = MetricsServer(cfg.snapshot_path, cfg.metrics.port if port is None else port)
    except OSError as exc:
        log.error(
            "/metrics not served: cannot listen on %s:%s (%s); set [metrics] port",
            HOST,
            cfg.metrics.port if port is None else port,
            exc,
        )
        return None
    log.info("metrics: %s", server.url)
    return server
