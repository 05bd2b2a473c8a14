"""``check``: run a strategy over a program, shrink what it finds, write the trace."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcoresim.check.trace import Trace, build_trace, context_switches, load_trace, schedule_indices, shrink
from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, ReplayDivergence, Stats, run_schedule
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.engine.strategies.sampling import pct, random_walk
from vcoresim.engine.world import Program

Stop = Callable[[], bool] | None

STRATEGIES = ("auto", "exhaustive", "dfs", "random", "pct")
#: Executions of the random phase of ``auto``.
AUTO_RANDOM_EXECUTIONS = 200
#: Steps per random walk of ``auto``'s random phase (at most the step bound).  The
#: phase is a cheap bug-finding heuristic, not coverage: walks that run this long
#: are mostly guests ceding and idling round a loop (the KVM scenarios' 4000-step
#: walks were half the phase's cost and found nothing the short ones miss); the
#: exhaustive phases keep the full step bound.
AUTO_RANDOM_MAX_STEPS = 500
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
    checkpoint: str | None = None  # written when a budget or Ctrl-C ended the search early

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
            **({"checkpoint": self.checkpoint} if self.checkpoint else {}),
        }


def _add(total: Stats, part: Stats) -> None:
    total.add(part)


def use_cache(program: Program, bounds: Bounds, cache: bool | None, workers: int = 1, ray: str | None = None) -> bool:
    """Whether a search keeps the state cache.  ``None`` (the default): yes for
    a serial search without a preemption bound under sequential consistency,
    where the cache and stateful DPOR measured faster (benchmarks/README.md);
    a bounded search revisits few states (its cache key includes who ran last),
    so the cache costs more than it saves there."""
    if cache is not None:
        return cache
    return bounds.max_preemptions is None and workers <= 1 and ray is None and program.execution is None and not program.removed_barriers


def _search(program: Program, bounds: Bounds, *, dpor: bool, cache: bool | None, progress: Progress | None, resume: dict[str, Any] | None, stop: Stop, workers: int, ray: str | None = None) -> Exploration:
    """One exhaustive search: serial (resumable), split across ``workers`` processes, or on Ray."""
    cache = use_cache(program, bounds, cache, workers, ray)
    if ray is not None:
        from vcoresim.check.ray_backend import partitioned_ray

        return partitioned_ray(ray, program.name, program.config, bounds, progress=progress, stop=stop)
    if workers > 1:
        from vcoresim.check.parallel import parallel_exhaustive

        return parallel_exhaustive(program, bounds, workers, progress=progress, stop=stop)
    return exhaustive(program, bounds, dpor=dpor, cache=cache, progress=progress, resume=resume, stop=stop)


def auto(
    program: Program,
    bounds: Bounds,
    seed: int,
    *,
    cache: bool | None = None,
    progress: Progress | None = None,
    resume: dict[str, Any] | None = None,
    stop: Stop = None,
    workers: int = 1,
    ray: str | None = None,
) -> Exploration:
    """The default: a seeded random phase finds shallow bugs fast; then DPOR with
    iterative preemption bounding (0, 1, ... up to ``max_preemptions``; unbounded
    last when no bound is given) covers the space.  The verdict covers the last
    bound completed.  ``max_executions`` applies to each phase; ``max_seconds``
    to the whole.  ``resume``: continue from an ``auto`` checkpoint state."""
    budget = Budget(bounds)
    total = Stats()
    phases: list[dict[str, Any]] = []
    limits: list[int | None] = list(range(0, bounds.max_preemptions + 1)) if bounds.max_preemptions is not None else [0, 1, None]
    first = 0
    search_state: dict[str, Any] | None = None
    if resume is not None:
        total = Stats(**resume["total"])
        phases = list(resume["phases"])
        first = resume["phase"]
        search_state = resume["search"]
    else:
        walk = min(bounds.max_steps, AUTO_RANDOM_MAX_STEPS)
        rnd = random_walk(program, Bounds(walk, None, AUTO_RANDOM_EXECUTIONS, bounds.max_seconds), seed, progress=progress)
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
    res: Exploration | None = None
    checkpoint: dict[str, Any] | None = None
    for n, limit in enumerate(limits[first:], start=first):
        left = None if bounds.max_seconds is None else max(bounds.max_seconds - budget.elapsed(), 0.001)
        before = Stats(**total.as_dict())
        res = _search(program, Bounds(bounds.max_steps, limit, bounds.max_executions, left), dpor=True, cache=cache, progress=progress, resume=search_state, stop=stop, workers=workers, ray=ray)
        search_state = None
        _add(total, res.stats)
        phases.append({"phase": "exhaustive", "max_preemptions": limit, "executions": res.stats.executions, "complete": res.complete, "state_cache": bool(res.params.get("state_cache"))})
        if res.checkpoint is not None:
            checkpoint = {"kind": "auto", "phase": n, "phases": phases[:-1], "total": before.as_dict() | {"seconds": 0.0}, "search": res.checkpoint}
        if res.violation is not None or not res.complete:
            break
        if stop is not None and stop() and n + 1 < len(limits):
            # Interrupted between phases: the next one starts from its root.
            res = Exploration("auto", None, None, total, False, True)
            checkpoint = {"kind": "auto", "phase": n + 1, "phases": phases, "total": total.as_dict() | {"seconds": 0.0}, "search": None}
            break
    assert res is not None
    total.seconds = budget.elapsed()
    params = {"seed": seed, "phases": phases, "dpor": True, "sleep_sets": True, "state_cache": any(p.get("state_cache") for p in phases)}
    if workers > 1:
        params["workers"] = workers
    if ray is not None:
        params["ray"] = ray
    out = Exploration("auto", res.violation, res.schedule, total, res.complete, True, params)
    out.checkpoint = checkpoint
    return out


def explore(
    program: Program,
    strategy: str,
    bounds: Bounds,
    seed: int,
    *,
    pct_depth: int = 3,
    cache: bool | None = None,
    progress: Progress | None = None,
    resume: dict[str, Any] | None = None,
    stop: Stop = None,
    workers: int = 1,
    ray: str | None = None,
) -> Exploration:
    if strategy == "auto":
        return auto(program, bounds, seed, cache=cache, progress=progress, resume=resume, stop=stop, workers=workers, ray=ray)
    if strategy in ("exhaustive", "dfs"):
        if workers > 1 and strategy == "dfs":
            raise ValueError("--workers: the dfs strategy runs in one process")
        res = _search(program, bounds, dpor=strategy == "exhaustive", cache=cache, progress=progress, resume=resume["search"] if resume else None, stop=stop, workers=workers, ray=ray)
        if res.checkpoint is not None:
            res.checkpoint = {"kind": strategy, "search": res.checkpoint}
        if workers > 1:
            res.params["workers"] = workers
        return res
    if resume is not None:
        raise ValueError(f"--resume: the {strategy} strategy has no checkpoint to resume")
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
    cache: bool | None = None,
    trace_out: Path | None = None,
    do_shrink: bool = True,
    expected: str | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    stop: Stop = None,
    resume: dict[str, Any] | None = None,
    checkpoint_out: Path | None = None,
    ray: str | None = None,
) -> CheckResult:
    """``cache``: the state cache (None: on for the searches without a
    preemption bound, see ``use_cache``); ``resume``: the ``state`` of a
    checkpoint document; ``checkpoint_out``:
    where to write one if a budget or ``stop`` (Ctrl-C) ends the search early."""
    bounds = bounds or Bounds()
    res = explore(program, strategy, bounds, seed, pct_depth=pct_depth, cache=cache, progress=progress, resume=resume, stop=stop, workers=workers, ray=ray)
    strat = {"name": strategy, **res.params}
    if strategy in ("random", "pct", "auto"):
        strat["seed"] = seed
    checkpoint: str | None = None
    if res.violation is None and res.checkpoint is not None and checkpoint_out is not None:
        from vcoresim.check.checkpoint import write_checkpoint

        cp = checkpoint_out
        write_checkpoint(
            cp,
            {"scenario": program.name, "config": program.config, "strategy": {"name": strategy, "seed": seed, "cache": cache, "pct_depth": pct_depth}, "bounds": bounds.as_dict(), "state": res.checkpoint},
        )
        checkpoint = str(cp)
    if res.violation is None:
        if res.complete:
            verdict, coverage = "holds", ("complete" if res.exhaustive else "sampled")
        else:
            verdict, coverage = "incomplete", "partial"
        out = CheckResult(program.name, verdict, None, None, strat, {**bounds.as_dict(), **program.model_bounds}, res.stats, coverage, None, program.config, expected)
        out.checkpoint = checkpoint
        return out
    assert res.schedule is not None
    schedule = shrink(program, res.schedule, res.violation) if do_shrink else res.schedule
    trace, ex = build_trace(
        program,
        schedule,
        strategy=strat,
        bounds={**bounds.as_dict(), **program.model_bounds},
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
        {**bounds.as_dict(), **program.model_bounds},
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
