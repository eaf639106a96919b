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
- `fit`: whether a GPU holds a workload (memory, throughput) and whether it is smaller;
- `alternatives`: the option builders (`OPTION_BUILDERS`: cloud, buy, spare), pricing each
  option's savings and action;
- `choose`: the action and the reasons in words (Recommendation, decide);
- `frames`: the published tables and `recommendations`, the whole way from usage to them.
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
    RECOMMENDATION_SCHEMA,
    recommendation_frames,
    recommendations,
)
from advisor.recommend.params import Params
from advisor.recommend.profiles import (
    MEMORY_UNKNOWN_CONFIDENCE,
    Freed,
    Profile,
    _confidence,
    measured_profiles,
)
from advisor.recommend.usage import Window, observed_window, with_activity, with_class

__all__ = [
    "ACTIONS",
    "ALTERNATIVE_SCHEMA",
    "ASSUMED_WATTS",
    "FULL_NODE_GPUS",
    "MEMORY_UNKNOWN_CONFIDENCE",
    "OPTION_BUILDERS",
    "RECOMMENDATION_SCHEMA",
    "SPARE_TOLERANCE_GPUS",
    "SPOT_NOTE",
    "Alternative",
    "Freed",
    "LocalCapacity",
    "OptionBuilder",
    "Params",
    "Profile",
    "Recommendation",
    "Window",
    "_confidence",
    "alternatives",
    "buy_alternatives",
    "cloud_alternatives",
    "decide",
    "fit",
    "local_capacity",
    "measured_profiles",
    "memory_fit",
    "observed_window",
    "price_alternatives",
    "recommend_profiles",
    "recommendation_frames",
    "recommendations",
    "smaller",
    "spare_alternatives",
    "with_activity",
    "with_class",
]
