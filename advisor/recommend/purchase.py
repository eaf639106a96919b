"""What buying local GPUs costs a month: the purchase with what a real one needs beyond the GPUs
([advisor] buy_overhead_pct: the server around them, network, rack), amortized over [local]
depreciation_years, plus operations for every hour and energy for the hours they run. Buying a
whole workload's GPUs (advisor/recommend/alternatives.py) and a hybrid's base (hybrid.py) use it.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.costs import rate, usd
from advisor.recommend.params import Params
from tables.units import HOURS_PER_MONTH, HOURS_PER_YEAR

# Watts assumed per GPU where nothing was measured (a what-if on a class the team never ran).
ASSUMED_WATTS = 300.0


@dataclass(frozen=True)
class Purchase:
    """`gpus` GPUs of `gpu_model` at `price` each, running `hours` a month at `watts` each."""

    gpus: int
    gpu_model: str
    price: float
    watts: float
    hours: float
    params: Params
    assumed_watts: bool = False

    @property
    def upfront(self) -> float:
        """The GPUs and what a real purchase needs around them."""
        return self.gpus * self.price * (1 + self.params.buy_overhead_pct / 100.0)

    @property
    def capital(self) -> float:
        """The purchase amortized, a month."""
        p = self.params
        return self.upfront / (p.depreciation_years * HOURS_PER_YEAR) * HOURS_PER_MONTH

    @property
    def ops(self) -> float:
        return self.gpus * HOURS_PER_MONTH * self.params.ops_usd_per_gpu_hour

    @property
    def energy(self) -> float:
        return self.gpus * self.params.energy_usd(self.watts, self.hours)

    @property
    def monthly(self) -> float:
        return self.capital + self.ops + self.energy

    def words(self) -> str:
        """The arithmetic, from the price to the monthly cost."""
        p, n = self.params, self.gpus
        assumed = " (assumed watts)" if self.assumed_watts else ""
        return (
            f"buying {n} × {self.gpu_model} ({usd(self.price, cents=False)} each + "
            f"{p.buy_overhead_pct:g} % for the server, network and rack around them = "
            f"{usd(self.upfront, cents=False)}): {usd(self.upfront, cents=False)} ÷ "
            f"({p.depreciation_years:g} years × 8,760 h) × 730 h = {usd(self.capital)} capital + "
            f"{n} × 730 h × {rate(p.ops_usd_per_gpu_hour)}/GPU-h = {usd(self.ops)} operations + "
            f"{p.energy_words(n, self.watts, self.hours)} energy{assumed} = "
            f"{usd(self.monthly)} a month"
        )


def break_even_months(upfront: float, cash_per_month: float) -> float | None:
    """Months until `upfront` is saved back at `cash_per_month` (None: never)."""
    return upfront / cash_per_month if cash_per_month > 0 else None
