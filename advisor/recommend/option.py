"""One alternative a workload could run on (`Alternative`) and the shape of an option builder
(`OptionBuilder`): the record every builder of advisor/recommend/ fills and the choice reads."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from advisor.recommend.capacity import LocalCapacity
from advisor.recommend.params import Params
from advisor.recommend.profiles import Profile


@dataclass
class Alternative:
    option: str
    # cloud | cloud_spot | cloud_reserved_1y | cloud_reserved_3y | buy | spare | hybrid
    kind: str
    placement: str
    gpu_model: str
    gpus: int
    monthly_cost: float
    feasible: bool
    note: str
    arithmetic: str
    instance_type: str | None = None
    host: str | None = None
    rel_throughput: float | None = None
    memory_gib: float | None = None
    upfront: float | None = None
    monthly_savings: float = 0.0  # the workload's own cash a month
    break_even_months: float | None = None
    savings_words: str = ""
    action: str = "keep"
    provider: str | None = None  # the cloud of a cloud option (tables/clouds.py)
    freed_usd: float = 0.0  # capacity it hands to others, a month (not its own cash)
    hourly_usd: float | None = None  # what an hour of it costs where paid by the hour
    instances: int = 0  # instances of `instance_type`
    base_gpus: float | None = None  # a hybrid: the local GPUs that carry the base load

    @property
    def team_savings(self) -> float:
        """Its own cash plus the capacity it frees for others: what the choice ranks by."""
        return self.monthly_savings + self.freed_usd


# One kind of option: every alternative of that kind for a profile (none where it does not apply).
OptionBuilder = Callable[[Profile, LocalCapacity, pl.DataFrame, Params], list[Alternative]]
