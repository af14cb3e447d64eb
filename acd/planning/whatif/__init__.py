"""What-if simulation: the real engine against the simulated switch, in virtual time.

A `WhatIf` pairs a scenario of the simulated switch (``firmware_sim``: traffic, callers,
agents) with the site's engine configuration. Each simulated day builds a fresh
`Engine` behind a `Bridge` (the same mapping the live controller uses) and runs it
against ``Switch`` in process with ``acd.runtime.bridge.run_virtual``: no link, no clock, so a
day takes a fraction of a second. `replicate` runs several independent replications of
N days and reports the customer's figures (docs/tools.md) per hour and overall with 95 %
confidence intervals (Student t over replications); `expectation` gives the Erlang A
figures of the same traffic where that model applies, and `sweep` answers "which daily
volume still reaches the target?".

Two changes to the site's configuration make a what-if run practical and change no
routing decision: agents' PIN hashes are replaced by cheap ones of the same PINs
(checked once against the real hashes), and handset display refreshes are switched off.

The package: `stats` (confidence intervals), `runs` (a run, its days and replications),
`erlang` (the Erlang A expectation) and `builders` (runs from a scenario, a volume or
flags; `sweep`). Its names are imported here: ``from acd.planning import whatif``.
"""

from acd.planning.whatif.builders import (
    FIRST_DAY,
    REFERENCE_SITE,
    Flags,
    SweepPoint,
    cheap_pins,
    for_flags,
    for_scenario,
    highest_holding,
    served_queue,
    sweep,
    with_volume,
)
from acd.planning.whatif.erlang import (
    Expectation,
    HourExpectation,
    expectation,
    fractional_team,
    on_phones,
    staffed_hours,
    warnings,
)
from acd.planning.whatif.runs import (
    METRICS,
    RATES,
    DayRun,
    Replication,
    Result,
    WhatIf,
    day_seed,
    in_processes,
    replicate,
    replication,
    run_day,
    summary,
)
from acd.planning.whatif.stats import CONFIDENCE, Estimate, estimate, t_cdf, t_quantile, verdict

__all__ = [
    "CONFIDENCE", "FIRST_DAY", "METRICS", "RATES", "REFERENCE_SITE", "DayRun", "Estimate",
    "Expectation", "Flags", "HourExpectation", "Replication", "Result", "SweepPoint", "WhatIf",
    "cheap_pins", "day_seed", "estimate", "expectation", "for_flags", "for_scenario",
    "fractional_team", "highest_holding", "in_processes", "on_phones", "replicate", "replication",
    "run_day", "served_queue", "staffed_hours", "summary", "sweep", "t_cdf", "t_quantile",
    "verdict", "warnings", "with_volume",
]  # fmt: skip
