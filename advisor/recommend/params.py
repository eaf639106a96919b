"""The knobs of the comparison ([advisor], [energy] and [local] of the configuration), read once
and passed to every step: measuring, pricing the alternatives, choosing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import polars as pl

from advisor.costs import rate, usd
from config.settings import Config
from tables.clouds import CLOUDS


@dataclass(frozen=True)
class Params:
    """The knobs of the comparison ([advisor], [energy] and [local] of the configuration)."""

    window_days: int = 30
    min_saving_usd: float = 100.0
    min_saving_pct: float = 15.0
    memory_headroom_pct: float = 10.0
    max_projected_busy_pct: float = 70.0
    buy_min_duty_pct: float = 50.0
    active_hour_busy_pct: float = 10.0
    contention_idle_pct: float = 5.0
    saturated_busy_pct: float = 80.0
    price_per_kwh: float = 0.15
    pue: float = 1.4
    depreciation_years: float = 3.0
    ops_usd_per_gpu_hour: float = 0.10
    # (host, GPUs) of every [[local.hosts]] entry: what a spare host has where telemetry saw less
    host_gpus: tuple[tuple[str, int], ...] = ()
    # the clouds whose machines may be proposed ([advisor] clouds); empty: decided by
    # `with_clouds` from the instance types the bills name
    clouds: tuple[str, ...] = ()
    # Buying hardware costs this much beyond the GPUs (server, network, rack), % of their price.
    buy_overhead_pct: float = 30.0
    # Commitments (1- and 3-year reservations) are proposed only after this many days observed.
    commit_min_days: int = 14
    # Processes that ran at most this long (p90) count as short jobs spot capacity suits.
    spot_max_job_minutes: float = 60.0
    # Workloads whose work may be interrupted ([workloads] interruptible): spot is proposed.
    interruptible: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, cfg: Config) -> Params:
        a = cfg.advisor
        return cls(
            window_days=a.window_days,
            min_saving_usd=a.min_saving_usd,
            min_saving_pct=a.min_saving_pct,
            memory_headroom_pct=a.memory_headroom_pct,
            max_projected_busy_pct=a.max_projected_busy_pct,
            buy_min_duty_pct=a.buy_min_duty_pct,
            active_hour_busy_pct=a.active_hour_busy_pct,
            contention_idle_pct=a.contention_idle_pct,
            saturated_busy_pct=a.saturated_busy_pct,
            price_per_kwh=cfg.energy.price_per_kwh,
            pue=cfg.energy.pue,
            depreciation_years=cfg.local.depreciation_years,
            ops_usd_per_gpu_hour=cfg.local.ops_usd_per_gpu_hour,
            host_gpus=tuple((h.name, h.gpu_count) for h in cfg.local.hosts),
            clouds=a.clouds,
            buy_overhead_pct=a.buy_overhead_pct,
            commit_min_days=a.commit_min_days,
            spot_max_job_minutes=a.spot_max_job_minutes,
            interruptible=cfg.workloads.interruptible,
        )

    def configured_gpus(self, host: str) -> int:
        """The GPUs [[local.hosts]] gives `host` (0 where it is not listed)."""
        return sum(n for name, n in self.host_gpus if name == host)

    def energy_usd(self, watts: float, hours: float) -> float:
        return watts / 1000.0 * hours * self.pue * self.price_per_kwh

    def energy_words(self, gpus: int, watts: float, hours: float) -> str:
        return (
            f"{gpus} × {watts:,.0f} W × {hours:,.0f} h × {self.pue:g} PUE × "
            f"{rate(self.price_per_kwh)}/kWh = {usd(gpus * self.energy_usd(watts, hours))}"
        )


def with_clouds(
    params: Params, instance_types: Iterable[str | None], catalog: pl.DataFrame
) -> Params:
    """`params` with the clouds whose machines may be proposed settled: [advisor] clouds where
    set; else the clouds of the instance types the bills name (their catalog `provider`); else,
    where no bill names a cloud machine of the catalog, every cloud."""
    if params.clouds:
        return params
    names = {n for n in instance_types if n}
    billed = set(
        catalog.filter((pl.col("kind") == "instance") & pl.col("name").is_in(list(names)))[
            "provider"
        ].to_list()
    )
    return replace(params, clouds=tuple(c for c in CLOUDS if c in billed) or CLOUDS)
