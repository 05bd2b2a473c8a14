"""The Python API's ``check``, ``replay`` and ``mutate`` (re-exported by the package).

``vcoresim.check(scenario, ...)`` calls :func:`check`: the ``vcoresim.check``
package is callable (see its ``__init__``), so the function and the package of
the same name live together.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vcoresim.check.driver import STRATEGIES, CheckResult, ReplayOutcome
from vcoresim.check.driver import check as _check
from vcoresim.check.mutation import MUTANT_EXECUTIONS, MutationRun
from vcoresim.check.trace import Trace
from vcoresim.engine.mutants import KINDS as MUTATION_KINDS
from vcoresim.engine.strategies.base import Bounds, Stats
from vcoresim.errors import ScenarioError, did_you_mean
from vcoresim.scenarios.edit import Scenario, load_scenario
from vcoresim.scenarios.registry import program_for

__all__ = ["check", "mutate", "replay"]


# ------------------------------------------------------------------ check
def check(
    scenario: Scenario | str,
    *,
    memory_model: str = "sc",
    strategy: str | None = None,
    seed: int | None = None,
    bounds: Bounds | None = None,
    trace_out: str | Path | None = None,
    shrink: bool = True,
    unreached: bool = False,
    progress: Callable[[Stats], None] | None = None,
) -> CheckResult:
    """Explore ``scenario`` (a :class:`Scenario` or a name) and return its verdict.

    Uses the scenario's own strategy, seed, bounds and expectation unless
    given here.  ``memory_model``: ``sc`` (default), ``tso``, ``pso`` or
    ``power``; the scenario's expectation applies only under ``sc``.  The
    counterexample is ``result.counterexample`` (a :class:`Trace`); a file is
    written only to ``trace_out``.  ``unreached``: also report the model code
    the check never executed and vacuous invariants (``result.extra["unreached"]``).
    ``progress``: called with running statistics.

    ``result.verdict`` is ``holds`` (a proof within the bounds), ``violation``,
    ``bounded`` (executions cut at ``max_steps``), ``sampled`` (random/PCT
    found nothing) or ``incomplete`` (a budget ran out); ``result.summary``
    says so in a sentence and ``result.as_expected`` compares it with the
    scenario's expectation.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    strat = strategy or sc.strategy
    if strat not in STRATEGIES:
        raise ScenarioError(f"strategy: unknown strategy {strat!r}{did_you_mean(strat, STRATEGIES)} (known: {', '.join(STRATEGIES)})")
    b = bounds or sc.bounds
    _check_bounds(b)
    program = sc.program(memory_model)
    expected = sc.expected if memory_model == "sc" else None
    try:
        return _check(
            program,
            strategy=strat,
            bounds=b,
            seed=sc.seed if seed is None else seed,
            trace_out=Path(trace_out) if trace_out is not None else None,
            trace_dir=None,  # a file only when asked
            do_shrink=shrink,
            expected=expected,
            expected_invariant=sc.expected_invariant if expected else None,
            progress=progress,
            coverage=unreached,
        )
    except ValueError as e:
        raise ScenarioError(str(e)) from None


def _check_bounds(b: Bounds) -> None:
    for name in ("max_steps", "max_preemptions", "max_executions", "max_seconds"):
        v = getattr(b, name)
        if v is None:
            if name == "max_steps":
                raise ScenarioError("bounds.max_steps: required (a positive number of steps)")
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < (0 if name == "max_preemptions" else 1e-9):
            raise ScenarioError(f"bounds.{name}: expected a {'non-negative' if name == 'max_preemptions' else 'positive'} number, got {v!r}")


def replay(trace: Trace | str | Path) -> ReplayOutcome:
    """Re-execute a trace (a :class:`Trace` or a trace file): ``outcome.reproduced``,
    ``outcome.summary``, ``outcome.execution.records`` (each step's operations).
    A timed run's trace (``simulate(..., trace_out=...)``) is simulated again."""
    from vcoresim.check.trace import TraceError
    from vcoresim.simulate.trace import replay_any as _replay

    try:
        if isinstance(trace, Trace):
            with tempfile.TemporaryDirectory() as d:
                path = Path(d) / "trace.json"
                trace.write(path)
                return _replay(path, program_for)
        return _replay(Path(trace), program_for)
    except TraceError as e:
        raise ScenarioError(str(e)) from None


def mutate(
    scenario: Scenario | str,
    *,
    memory_model: str = "sc",
    kinds: tuple[str, ...] = MUTATION_KINDS,
    sites: str | None = None,
    mutant_executions: int = MUTANT_EXECUTIONS,
    trace_dir: str | Path | None = None,
    progress: Any = None,
) -> MutationRun:
    """Mutation analysis (``check --mutate``): the scenario, then one check per
    mutant of the operations it executes; ``run.kill_rate``, ``run.outcomes``."""
    from vcoresim.check.mutation import mutate as _mutate

    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    for k in kinds:
        if k not in MUTATION_KINDS:
            raise ScenarioError(f"kinds: unknown mutation {k!r}{did_you_mean(k, MUTATION_KINDS)} (known: {', '.join(MUTATION_KINDS)})")
    _check_bounds(sc.bounds)
    b = sc.bounds
    return _mutate(
        sc.program(memory_model),
        strategy=sc.strategy,
        bounds=b,
        mutant_bounds=Bounds(b.max_steps, b.max_preemptions, mutant_executions, None),
        seed=sc.seed,
        trace_dir=Path(trace_dir) if trace_dir is not None else None,
        kinds=tuple(kinds),
        sites=sites,
        progress=progress,
    )
