"""How sure a recommendation is: a named level (high, medium, low) with the reason behind each
factor, beside the 0-1 `confidence` number of the JSON contract (days observed ÷ window days,
lowered by up to half by variability, halved where memory is unknown: profiles.py).

Each factor is ok, weak or bad; the level is low where any is bad, medium where any is weak,
else high:

- days observed: at least [advisor] commit_min_days (14: two whole weeks, every weekday twice)
  ok; 7 or more weak (one of each weekday); fewer bad;
- activity signal: SM active (NVML GPM, DCGM) ok; utilization.gpu ok but said (it counts a
  kernel on one SM as busy, so busy reads high and a saving may be larger than shown); none bad
  (busy unknown: nothing can be sized by it); not recorded (a frame without evidence) weak;
- memory: measured ok; unknown weak (only GPUs at least as big as today's count as fitting);
- demand stability: the coefficient of variation of its GPU-hours (weekly totals where two whole
  weeks exist, else daily) at most 0.3 ok; more weak.
"""

from __future__ import annotations

import statistics

from advisor.recommend.params import Params

LEVELS = ("high", "medium", "low")
# Variability of the GPU-hours up to which demand counts as stable.
STABLE_CV = 0.3
# One of each weekday: fewer days cannot show a weekly pattern.
WEEK_DAYS = 7


def variability(daily: list[float]) -> float:
    """The coefficient of variation of the GPU-hours: of weekly totals where two whole weeks
    exist, else of the daily ones (0 for a single value or none)."""
    weeks = [sum(daily[i : i + 7]) for i in range(len(daily) - 7, -1, -7)][: len(daily) // 7]
    series = weeks if len(weeks) >= 2 else daily
    mean = statistics.fmean(series) if series else 0.0
    return statistics.pstdev(series) / mean if mean > 0 and len(series) > 1 else 0.0


def confidence_level(
    days: float, signal: str, memory_known: bool, cv: float, params: Params
) -> tuple[str, list[str]]:
    """The level and one reason per factor (see the module docstring)."""
    factors = [
        _days(days, params),
        _signal(signal),
        (
            ("ok", "memory measured")
            if memory_known
            else ("weak", "memory unknown: only GPUs at least as big as today's count as fitting")
        ),
        (
            ("ok", f"demand stable (variability {cv:.2f} ≤ {STABLE_CV:g})")
            if cv <= STABLE_CV
            else ("weak", f"demand varies (variability {cv:.2f} > {STABLE_CV:g})")
        ),
    ]
    grades = {grade for grade, _ in factors}
    level = "low" if "bad" in grades else "medium" if "weak" in grades else "high"
    return level, [f"{words} ({grade})" for grade, words in factors]


def _days(days: float, params: Params) -> tuple[str, str]:
    need = params.commit_min_days
    if days >= need:
        return "ok", f"{days:g} days observed (≥ {need})"
    if days >= WEEK_DAYS:
        return "weak", f"{days:g} days observed (under {need}: each weekday seen only once)"
    return "bad", f"only {days:g} days observed (under a week: no weekly pattern yet)"


def _signal(signal: str) -> tuple[str, str]:
    if signal == "sm_active":
        return "ok", "busy measured as SM active"
    if signal == "utilization":
        return "ok", (
            "busy measured as utilization.gpu, which counts a kernel on one SM as busy: busy may "
            "read high, so a saving may be larger than shown"
        )
    if signal == "none":
        return "bad", "no activity signal: busy unknown, nothing is sized by it"
    return "weak", "activity signal not recorded"


def unmeasured_level() -> tuple[str, list[str]]:
    """A workload billed without GPU telemetry: nothing to size it by."""
    return "low", ["no GPU telemetry from its resources: nothing to size it by (bad)"]
