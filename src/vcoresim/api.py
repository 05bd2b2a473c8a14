"""The Python API: load a scenario, change it, check or simulate it, read the result.

Everything here is re-exported by the package (``vcoresim.check``, ...), so::

    import vcoresim

    sc = vcoresim.load_scenario("stray-ipi@fixed")
    sc.set_patch("stray-ipi-guard", False)        # the kernel without seed 000's fix
    result = vcoresim.check(sc)                    # the scenario's bounds, strategy and seed
    assert result.verdict == "violation"
    print(result.summary)                          # what was covered, in one sentence
    result.counterexample.write("race.json")       # a trace file only when asked

Errors in what you pass are :class:`ScenarioError` whose message names the
field (``faults.stray_ipi: ...``, ``kernel.patches: unknown patch ...``),
never a command-line option.  ``docs/api.md`` has a pytest example.
"""

from __future__ import annotations

from vcoresim.check.api import check, mutate, replay
from vcoresim.check.driver import CheckResult, ReplayOutcome
from vcoresim.check.mutation import MutationRun
from vcoresim.check.trace import Trace
from vcoresim.engine.strategies.base import Bounds
from vcoresim.errors import ScenarioError
from vcoresim.scenarios.edit import Scenario, load_scenario, scenario_names
from vcoresim.simulate.api import Simulation, simulate

__all__ = [
    "Bounds",
    "CheckResult",
    "MutationRun",
    "ReplayOutcome",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "Trace",
    "check",
    "load_scenario",
    "mutate",
    "replay",
    "scenario_names",
    "simulate",
]
