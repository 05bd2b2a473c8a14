"""``check``: run a strategy over a program, shrink what it finds, write the trace."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcoresim.check.trace import Trace, build_trace, context_switches, load_trace, schedule_indices, shrink
from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, ReplayDivergence, Stats, run_schedule
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.engine.strategies.sampling import pct, random_walk
from vcoresim.engine.world import Program

STRATEGIES = ("auto", "exhaustive", "dfs", "random", "pct")
#: Executions of the random phase of ``auto``.
AUTO_RANDOM_EXECUTIONS = 200
#: Executions of the PCT phase ``auto`` adds under a weak memory model: a uniform
#: random walk picks store-buffer and propagation pseudo-actors as often as
#: threads, so buffers drain almost at once; PCT's priorities hold them back.
AUTO_PCT_EXECUTIONS = 1000


@dataclass
class CheckResult:
    scenario: str
    verdict: str  # holds | violation | incomplete
    invariant: str | None
    message: str | None
    strategy: dict[str, Any]
    bounds: dict[str, Any]
    stats: Stats
    coverage: str  # "complete" | "sampled" | "partial" | "stopped at first violation"
    trace: str | None
    config: dict[str, Any]
    expected: str | None = None
    violation_step: int | None = None
    shrink: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return {"holds": 0, "violation": 1, "incomplete": 3}[self.verdict]

    def as_dict(self, *, timing: bool = True) -> dict[str, Any]:
        stats = self.stats.as_dict()
        if not timing:
            stats["seconds"] = None
        return {
            "scenario": self.scenario,
            "verdict": self.verdict,
            "expected": self.expected,
            "invariant": self.invariant,
            "message": self.message,
            "violation_step": self.violation_step,
            "coverage": self.coverage,
            "strategy": self.strategy,
            "bounds": self.bounds,
            "config": self.config,
            "stats": stats,
            "shrink": self.shrink,
            "trace": self.trace,
        }


def _add(total: Stats, part: Stats) -> None:
    total.executions += part.executions
    total.states += part.states
    total.steps += part.steps
    total.truncated += part.truncated
    total.pruned += part.pruned


def auto(program: Program, bounds: Bounds, seed: int, *, cache: bool = False, progress: Progress | None = None) -> Exploration:
    """The default: a seeded random phase finds shallow bugs fast; then DPOR with
    iterative preemption bounding (0, 1, ... up to ``max_preemptions``; unbounded
    last when no bound is given) covers the space.  The verdict covers the last
    bound completed.  ``max_executions`` applies to each phase; ``max_seconds``
    to the whole."""
    budget = Budget(bounds)
    total = Stats()
    phases: list[dict[str, Any]] = []
    rnd = random_walk(program, Bounds(bounds.max_steps, None, AUTO_RANDOM_EXECUTIONS, bounds.max_seconds), seed, progress=progress)
    _add(total, rnd.stats)
    phases.append({"phase": "random", "executions": rnd.stats.executions})
    if rnd.violation is not None:
        total.seconds = budget.elapsed()
        return Exploration("auto", rnd.violation, rnd.schedule, total, False, False, {"seed": seed, "phases": phases})
    if program.memory_model != "sc":
        left = None if bounds.max_seconds is None else max(bounds.max_seconds - budget.elapsed(), 0.001)
        ph = pct(program, Bounds(bounds.max_steps, None, AUTO_PCT_EXECUTIONS, left), seed, depth=3, progress=progress)
        _add(total, ph.stats)
        phases.append({"phase": "pct", "executions": ph.stats.executions})
        if ph.violation is not None:
            total.seconds = budget.elapsed()
            return Exploration("auto", ph.violation, ph.schedule, total, False, False, {"seed": seed, "phases": phases})
    limits: list[int | None] = list(range(0, bounds.max_preemptions + 1)) if bounds.max_preemptions is not None else [0, 1, None]
    res: Exploration | None = None
    for limit in limits:
        left = None if bounds.max_seconds is None else max(bounds.max_seconds - budget.elapsed(), 0.001)
        res = exhaustive(program, Bounds(bounds.max_steps, limit, bounds.max_executions, left), dpor=True, cache=cache, progress=progress)
        _add(total, res.stats)
        phases.append({"phase": "exhaustive", "max_preemptions": limit, "executions": res.stats.executions, "complete": res.complete})
        if res.violation is not None or not res.complete:
            break
    assert res is not None
    total.seconds = budget.elapsed()
    params = {"seed": seed, "phases": phases, "dpor": True, "sleep_sets": True, "state_cache": cache}
    return Exploration("auto", res.violation, res.schedule, total, res.complete, True, params)


def explore(program: Program, strategy: str, bounds: Bounds, seed: int, *, pct_depth: int = 3, cache: bool = False, progress: Progress | None = None) -> Exploration:
    if strategy == "auto":
        return auto(program, bounds, seed, cache=cache, progress=progress)
    if strategy == "exhaustive":
        return exhaustive(program, bounds, dpor=True, cache=cache, progress=progress)
    if strategy == "dfs":
        return exhaustive(program, bounds, dpor=False, cache=cache, progress=progress)
    if strategy == "random":
        return random_walk(program, bounds, seed, progress=progress)
    if strategy == "pct":
        return pct(program, bounds, seed, depth=pct_depth, progress=progress)
    raise ValueError(f"unknown strategy {strategy!r}")


def check(
    program: Program,
    *,
    strategy: str = "auto",
    bounds: Bounds | None = None,
    seed: int = 0,
    pct_depth: int = 3,
    cache: bool = False,
    trace_out: Path | None = None,
    do_shrink: bool = True,
    expected: str | None = None,
    progress: Progress | None = None,
) -> CheckResult:
    bounds = bounds or Bounds()
    res = explore(program, strategy, bounds, seed, pct_depth=pct_depth, cache=cache, progress=progress)
    strat = {"name": strategy, **res.params}
    if strategy in ("random", "pct", "auto"):
        strat["seed"] = seed
    if res.violation is None:
        if res.complete:
            verdict, coverage = "holds", ("complete" if res.exhaustive else "sampled")
        else:
            verdict, coverage = "incomplete", "partial"
        return CheckResult(program.name, verdict, None, None, strat, bounds.as_dict(), res.stats, coverage, None, program.config, expected)
    assert res.schedule is not None
    schedule = shrink(program, res.schedule, res.violation) if do_shrink else res.schedule
    trace, ex = build_trace(
        program,
        schedule,
        strategy=strat,
        bounds=bounds.as_dict(),
        original_length=len(res.schedule),
        original_switches=context_switches(res.schedule),
    )
    path = trace_out or Path("traces") / f"{program.name.replace('/', '-')}.trace.json"
    trace.write(path)
    v = ex.violation or res.violation
    return CheckResult(
        program.name,
        "violation",
        v.name,
        v.message,
        strat,
        bounds.as_dict(),
        res.stats,
        "stopped at first violation",
        str(path),
        program.config,
        expected,
        violation_step=v.step,
        shrink=trace.shrink,
    )


@dataclass
class ReplayOutcome:
    trace: Trace
    execution: Execution
    reproduced: bool
    summary: str


def replay(path: Path, program_for: Any) -> ReplayOutcome:
    """Re-execute a trace file.  ``program_for(scenario, config)`` rebuilds the program."""
    from vcoresim.check.trace import TraceError

    trace = load_trace(path)
    program = program_for(trace.scenario, trace.config)
    probe = Execution(program)
    schedule = schedule_indices([a.name for a in probe.actors], trace, path)
    try:
        ex = run_schedule(program, schedule, record=True)
    except ReplayDivergence as e:
        raise TraceError(f"{path}: {e}") from None
    want = trace.violation["invariant"] if trace.violation else None
    got = ex.violation.name if ex.violation else None
    if want is not None and got == want:
        summary = f"REPRODUCED: {got} violated at step {ex.violation.step}: {ex.violation.message}"  # type: ignore[union-attr]
        ok = True
    elif want is None and got is None:
        summary = "REPRODUCED: the run ends without a violation, as recorded"
        ok = True
    else:
        summary = f"NOT REPRODUCED: the trace records {want or 'no violation'}, the replay gives {got or 'no violation'}"
        ok = False
    return ReplayOutcome(trace, ex, ok, summary)
