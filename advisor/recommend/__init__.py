"""Recommendations: where each workload should run, with the arithmetic (DESIGN.md §2).

For every workload over a window of whole UTC days (default 30, scaled to a month of 730 h) the
measured profile (GPU-hours, busy fraction, duty cycle, peak memory, placement, current monthly
cost) is set beside every feasible alternative (cloud instances, buying local GPUs, local spare
capacity), and the one that saves the most, where it saves enough, is the recommendation.

Feasible: every GPU of the alternative has the observed peak memory plus headroom, and either
at least the current relative throughput or enough of it to keep the workload's average busy
time under a ceiling (a slower GPU runs the same work for longer).

The steps, one module each:

- `params`: the knobs of the comparison (Params, from the configuration);
- `usage`: the window of whole days and the hourly usage frames it reads;
- `capacity`: local spare capacity per host and GPU class, hour of the week by hour;
- `profiles`: measuring each workload (Profile) and marking contention on full local classes;
- `load`: what each workload asks of its GPUs (Load: GPUs at once, p95 busy, memory in total
  and per process, multi-GPU job or independent work, active hours, interruptible);
- `confidence`: the named confidence level and its reasons;
- `fit` and `sizing`: whether a GPU holds a workload (memory, throughput), whether it is
  smaller, and how many GPUs of a class it needs (consolidation);
- `option`: the Alternative record; `alternatives`: the option builders (`OPTION_BUILDERS`:
  cloud (cloud.py: on-demand, spot, reserved), buy (purchase.py), spare, hybrid (hybrid.py),
  schedule (schedule.py)), pricing each option's savings and action;
- `choose`: the action and the reasons in words (Recommendation, decide);
- `frames`: the published tables and `recommendation_results`, the whole way from usage to them.
"""

from __future__ import annotations

from advisor.recommend.alternatives import (
    ASSUMED_WATTS,
    FULL_NODE_GPUS,
    OPTION_BUILDERS,
    SPARE_TOLERANCE_GPUS,
    SPOT_NOTE,
    Alternative,
    OptionBuilder,
    alternatives,
    buy_alternatives,
    cloud_alternatives,
    price_alternatives,
    spare_alternatives,
)
from advisor.recommend.capacity import LocalCapacity, local_capacity
from advisor.recommend.choose import ACTIONS, Recommendation, decide, recommend_profiles
from advisor.recommend.fit import fit, memory_fit, smaller
from advisor.recommend.frames import (
    ALTERNATIVE_SCHEMA,
    DEMAND_CURVE_SCHEMA,
    RECOMMENDATION_SCHEMA,
    RecommendationResults,
    recommendation_frames,
    recommendation_results,
    recommendations,
)
from advisor.recommend.load import Load, measure_load
from advisor.recommend.params import Params
from advisor.recommend.profiles import (
    MEMORY_UNKNOWN_CONFIDENCE,
    Freed,
    Profile,
    _confidence,
    measured_profiles,
)
from advisor.recommend.schedule import Schedule, schedule_of, when_words
from advisor.recommend.sizing import Sizing, size_for
from advisor.recommend.usage import Window, observed_window, with_activity, with_class

__all__ = [
    "ACTIONS",
    "ALTERNATIVE_SCHEMA",
    "DEMAND_CURVE_SCHEMA",
    "ASSUMED_WATTS",
    "FULL_NODE_GPUS",
    "MEMORY_UNKNOWN_CONFIDENCE",
    "OPTION_BUILDERS",
    "RECOMMENDATION_SCHEMA",
    "SPARE_TOLERANCE_GPUS",
    "SPOT_NOTE",
    "Alternative",
    "Freed",
    "Load",
    "LocalCapacity",
    "OptionBuilder",
    "Params",
    "Profile",
    "Recommendation",
    "RecommendationResults",
    "Schedule",
    "Sizing",
    "Window",
    "_confidence",
    "alternatives",
    "buy_alternatives",
    "cloud_alternatives",
    "decide",
    "fit",
    "local_capacity",
    "measure_load",
    "measured_profiles",
    "memory_fit",
    "observed_window",
    "price_alternatives",
    "recommend_profiles",
    "recommendation_frames",
    "recommendation_results",
    "recommendations",
    "schedule_of",
    "size_for",
    "smaller",
    "spare_alternatives",
    "with_activity",
    "when_words",
    "with_class",
]
