"""The Python API's ``simulate`` (re-exported by the package).

``vcoresim.simulate(scenario, ...)`` calls :func:`simulate`: the
``vcoresim.simulate`` package is callable (see its ``__init__``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from vcoresim.errors import ScenarioError
from vcoresim.scenarios.edit import Scenario, load_scenario

__all__ = ["Simulation", "simulate"]


# --------------------------------------------------------------- simulate
@dataclasses.dataclass
class Simulation:
    """A timed run: ``result`` (``simulate.timed.SimResult``: outcome, events,
    per-thread time), ``metrics`` (``simulate.metrics.Metrics``: latencies,
    throughput, counts) and, when the run stopped at a violation, ``trace``
    (a trace file that ``vcoresim replay`` re-runs), if one was asked for."""

    result: Any
    metrics: Any
    trace: str | None = None

    @property
    def outcome(self) -> str:
        return str(self.result.outcome)


def simulate(
    scenario: Scenario | str,
    *,
    duration_us: int | None = None,
    seed: int | None = None,
    check_invariants: bool | None = None,
    trace_out: str | Path | None = None,
) -> Simulation:
    """A timed run of ``scenario`` for ``duration_us`` of simulated time (default:
    the scenario's ``[simulate]`` table, else 10 ms).  ``check_invariants=False``
    measures through violations (figures, not a verdict); otherwise a run that
    violates an invariant stops there and, with ``trace_out``, writes a trace
    of what it hit."""
    from vcoresim.simulate.metrics import compute
    from vcoresim.simulate.timed import Timing
    from vcoresim.simulate.timed import simulate as _simulate
    from vcoresim.simulate.trace import write_if_violated

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if duration_us is not None and (isinstance(duration_us, bool) or not isinstance(duration_us, int) or duration_us <= 0):
        raise ScenarioError(f"duration_us: expected a positive number of microseconds, got {duration_us!r}")
    program = sc.program()
    cfg = sc.config.simulate if sc.config is not None else None
    dur = duration_us if duration_us is not None else (cfg.duration_us if cfg is not None else 10_000)
    run_seed = seed if seed is not None else (cfg.seed if cfg is not None else sc.seed)
    try:
        timing = Timing().replace(**dict(cfg.timing if cfg is not None else {}))
    except (TypeError, ValueError) as e:
        raise ScenarioError(f"simulate.timing: {e}") from None
    checking = check_invariants if check_invariants is not None else (cfg.check_invariants if cfg is not None else True)
    if not checking:
        program = dataclasses.replace(program, select=())
    res = _simulate(program, duration_ns=dur * 1_000, seed=run_seed, timing=timing)
    trace = None
    if trace_out is not None and write_if_violated(program, res, Path(trace_out), timing=timing) is not None:
        trace = str(trace_out)
    metrics = compute(res)
    return Simulation(res, metrics, trace)
