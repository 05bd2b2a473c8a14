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


#: What each verdict means (README "Verdicts and exit codes"): only ``holds`` is a
#: proof within the stated bounds; ``bounded``, ``sampled`` and ``incomplete`` found
#: nothing but did not cover the bounded space.
VERDICTS = ("holds", "violation", "bounded", "sampled", "incomplete")
#: Exit codes: 0 proof within the bounds, 1 violation (or an unexpected verdict),
#: 3 inconclusive (2 is bad input, from the CLI).
EXIT_CODES = {"holds": 0, "violation": 1, "bounded": 3, "sampled": 3, "incomplete": 3}


@dataclass
class CheckResult:
    """The outcome of one check: verdict, what it covered, the counterexample.

    ``verdict`` is one of :data:`VERDICTS`; ``coverage`` says what was covered
    (``complete``, ``bounded``, ``sampled``, ``partial`` or ``stopped at first
    violation``); ``cut`` counts the executions of the covering search that the
    step bound cut short.  ``trace`` is the trace file's path when one was
    written; ``counterexample`` the trace itself (a :class:`Trace`).
    """

    scenario: str
    verdict: str
    invariant: str | None
    message: str | None
    strategy: dict[str, Any]
    bounds: dict[str, Any]
    stats: Stats
    coverage: str
    trace: str | None
    config: dict[str, Any]
    expected: str | None = None
    violation_step: int | None = None
    shrink: dict[str, Any] = field(default_factory=dict)
    checkpoint: str | None = None  # written when a budget or Ctrl-C ended the search early
    expected_invariant: str | None = None
    #: Executions of the search the verdict rests on that ``max_steps`` cut short.
    cut: int = 0
    #: Executions of that search (the last exhaustive phase, for ``auto``).
    cut_of: int = 0
    counterexample: Trace | None = None
    #: Extra sections of the result (unreached code, ...): name -> JSON-able value.
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def memory_model(self) -> str:
        return str(self.config.get("memory_model", "sc"))

    @property
    def expectation_met(self) -> bool | None:
        """True: the verdict (and invariant) is the one the scenario expects, or it
        expects nothing; False: the verdict contradicts it; None: an inconclusive
        verdict (bounded, sampled, incomplete) cannot tell."""
        if self.expected is None:
            return True
        if self.verdict == "violation":
            return self.expected == "violation" and (self.expected_invariant is None or self.invariant == self.expected_invariant)
        if self.verdict == "holds":
            return self.expected == "holds"
        return None

    @property
    def as_expected(self) -> bool:
        return self.expectation_met is True

    @property
    def exit_code(self) -> int:
        """0 holds, 1 violation or a verdict that contradicts the scenario's
        expectation, 3 inconclusive (bounded, sampled, incomplete)."""
        if self.expectation_met is False:
            return 1
        return EXIT_CODES[self.verdict]

    @property
    def summary(self) -> str:
        """The verdict as one sentence that says exactly what was covered."""
        s = self.stats
        if self.verdict == "violation":
            where = f"at step {self.violation_step}" if self.violation_step else "in the initial state"
            return f"violation of {self.invariant} {where}: {self.message}"
        if self.verdict == "holds":
            return f"holds: every execution within the bounds explored ({s.executions:,} executions, none cut at max_steps)"
        if self.verdict == "bounded":
            of = f" of {self.cut_of:,}" if self.cut_of else ""
            return (
                f"bounded: no violation, but {self.cut:,}{of} {_plural(self.cut_of or self.cut, 'execution')} cut at "
                f"max_steps={self.bounds.get('max_steps')} (not a proof: raise max_steps)"
            )
        if self.verdict == "sampled":
            cut = f", {s.truncated:,} cut at max_steps={self.bounds.get('max_steps')}" if s.truncated else ""
            return f"no violation found in {s.executions:,} samples ({self.strategy.get('name')}{cut}; sampling is not a proof)"
        return f"incomplete: a budget ran out after {s.executions:,} executions, no violation found so far (not a proof)"

    def expectation(self) -> str | None:
        """``holds, as found`` / ``violation of X: UNEXPECTED`` / ``...: not decided
        by an inconclusive run``, or None when nothing is expected."""
        if self.expected is None:
            return None
        want = self.expected + (f" of {self.expected_invariant}" if self.expected == "violation" and self.expected_invariant else "")
        met = self.expectation_met
        if met is None:
            return f"{want}: not decided by an inconclusive run"
        return f"{want}, as found" if met else f"{want}: UNEXPECTED"

    def as_dict(self, *, timing: bool = True) -> dict[str, Any]:
        stats = self.stats.as_dict()
        if not timing:
            stats["seconds"] = None
        return {
            "scenario": self.scenario,
            "verdict": self.verdict,
            "summary": self.summary,
            "expected": self.expected,
            "expected_invariant": self.expected_invariant,
            "as_expected": self.as_expected,
            "expectation_met": self.expectation_met,
            "memory_model": self.memory_model,
            "invariant": self.invariant,
            "message": self.message,
            "violation_step": self.violation_step,
            "coverage": self.coverage,
            "cut_at_max_steps": self.cut,
            "cut_of": self.cut_of,
            "strategy": self.strategy,
            "bounds": self.bounds,
            "config": self.config,
            "stats": stats,
            "shrink": self.shrink,
            "trace": self.trace,
            **({"checkpoint": self.checkpoint} if self.checkpoint else {}),
            **self.extra,
        }


def announce(progress: Progress | None, phase: str, total: int | None = None) -> None:
    """Tell a progress display which phase starts (``random walks``, ``DPOR,
    preemption bound 1``) and how many executions it will run, when known.  A
    display that wants this has a ``phase(name, total)`` method; a plain
    callable of ``Stats`` is fine too."""
    hook = getattr(progress, "phase", None)
    if hook is not None:
        hook(phase, total)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _add(total: Stats, part: Stats) -> None:
    total.add(part)


def _search(program: Program, bounds: Bounds, *, dpor: bool, cache: bool, progress: Progress | None, resume: dict[str, Any] | None, stop: Stop, workers: int, ray: str | None = None) -> Exploration:
    """One exhaustive search: serial (resumable), split across ``workers`` processes, or on Ray."""
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
    cache: bool = False,
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
    limits: list[int | None] = list(range(bounds.max_preemptions + 1)) if bounds.max_preemptions is not None else [0, 1, None]
    first = 0
    search_state: dict[str, Any] | None = None
    if resume is not None:
        total = Stats(**resume["total"])
        phases = list(resume["phases"])
        first = resume["phase"]
        search_state = resume["search"]
    else:
        walk = min(bounds.max_steps, AUTO_RANDOM_MAX_STEPS)
        announce(progress, "random walks (auto)", AUTO_RANDOM_EXECUTIONS)
        rnd = random_walk(program, Bounds(walk, None, AUTO_RANDOM_EXECUTIONS, bounds.max_seconds), seed, progress=progress)
        _add(total, rnd.stats)
        phases.append({"phase": "random", "executions": rnd.stats.executions, "truncated": rnd.stats.truncated})
        if rnd.violation is not None:
            total.seconds = budget.elapsed()
            return Exploration("auto", rnd.violation, rnd.schedule, total, False, False, {"seed": seed, "phases": phases})
        if program.memory_model != "sc":
            left = None if bounds.max_seconds is None else max(bounds.max_seconds - budget.elapsed(), 0.001)
            announce(progress, "PCT", AUTO_PCT_EXECUTIONS)
            ph = pct(program, Bounds(bounds.max_steps, None, AUTO_PCT_EXECUTIONS, left), seed, depth=3, progress=progress)
            _add(total, ph.stats)
            phases.append({"phase": "pct", "executions": ph.stats.executions, "truncated": ph.stats.truncated})
            if ph.violation is not None:
                total.seconds = budget.elapsed()
                return Exploration("auto", ph.violation, ph.schedule, total, False, False, {"seed": seed, "phases": phases})
    res: Exploration | None = None
    checkpoint: dict[str, Any] | None = None
    for n, limit in enumerate(limits[first:], start=first):
        left = None if bounds.max_seconds is None else max(bounds.max_seconds - budget.elapsed(), 0.001)
        before = Stats(**total.as_dict())
        announce(progress, f"DPOR, preemption bound {'none' if limit is None else limit} (bound {n + 1} of {len(limits)})", bounds.max_executions)
        res = _search(program, Bounds(bounds.max_steps, limit, bounds.max_executions, left), dpor=True, cache=cache, progress=progress, resume=search_state, stop=stop, workers=workers, ray=ray)
        search_state = None
        _add(total, res.stats)
        phases.append({"phase": "exhaustive", "max_preemptions": limit, "executions": res.stats.executions, "truncated": res.stats.truncated, "complete": res.complete})
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
    params = {"seed": seed, "phases": phases, "dpor": True, "sleep_sets": True, "state_cache": cache}
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
    cache: bool = False,
    progress: Progress | None = None,
    resume: dict[str, Any] | None = None,
    stop: Stop = None,
    workers: int = 1,
    ray: str | None = None,
) -> Exploration:
    if strategy == "auto":
        return auto(program, bounds, seed, cache=cache, progress=progress, resume=resume, stop=stop, workers=workers, ray=ray)
    if strategy in ("exhaustive", "dfs"):
        announce(progress, "DPOR" if strategy == "exhaustive" else "DFS + sleep sets", bounds.max_executions)
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
    announce(progress, "random walks" if strategy == "random" else "PCT", bounds.max_executions or 1000)
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
    expected_invariant: str | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    stop: Stop = None,
    resume: dict[str, Any] | None = None,
    checkpoint_out: Path | None = None,
    ray: str | None = None,
    coverage: bool = False,
) -> CheckResult:
    """Explore ``program`` and return its verdict (see :class:`CheckResult`).

    ``trace_out``: where to write the counterexample (no file when None; the
    trace is in ``CheckResult.counterexample`` either way).  ``expected`` /
    ``expected_invariant``: what the scenario expects (``CheckResult.as_expected``).
    ``resume``: the ``state`` of a checkpoint document; ``checkpoint_out``:
    where to write one if a budget or ``stop`` (Ctrl-C) ends the search early.
    ``coverage``: record the model code the executions reach and, when no
    violation stops the check, report what they never reached and which
    monitors were vacuous (``extra["unreached"]``, see ``check/unreached.py``;
    not with ``workers``/``ray``)."""
    bounds = bounds or Bounds()
    cov = None
    record_coverage = coverage  # (the name is reused below for what was covered)
    if record_coverage and workers == 1 and ray is None:
        from vcoresim.engine.coverage import Coverage, covering

        cov = Coverage()
        program = covering(program, cov)
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
    model_bounds = {**bounds.as_dict(), **program.model_bounds}
    if res.violation is None:
        cut, of = _cut(res)
        if not res.complete:
            verdict, coverage = "incomplete", "partial"
        elif not res.exhaustive:
            verdict, coverage = "sampled", "sampled"
        elif cut:
            verdict, coverage = "bounded", "bounded"
        else:
            verdict, coverage = "holds", "complete"
        out = CheckResult(program.name, verdict, None, None, strat, model_bounds, res.stats, coverage, None, program.config, expected, cut=cut, cut_of=of)
        out.expected_invariant = expected_invariant
        out.checkpoint = checkpoint
        if cov is not None:
            from vcoresim.check.unreached import analyse

            out.extra["unreached"] = analyse(cov).as_dict()
        elif record_coverage:
            out.extra["unreached"] = None  # not recorded across worker processes
        return out
    assert res.schedule is not None
    schedule = shrink(program, res.schedule, res.violation) if do_shrink else res.schedule
    trace, ex = build_trace(
        program,
        schedule,
        strategy=strat,
        bounds=model_bounds,
        original_length=len(res.schedule),
        original_switches=context_switches(res.schedule),
    )
    trace.shrink["shrunk"] = do_shrink
    path: str | None = None
    if trace_out is not None:
        trace.write(trace_out)
        path = str(trace_out)
    v = ex.violation or res.violation
    return CheckResult(
        program.name,
        "violation",
        v.name,
        v.message,
        strat,
        model_bounds,
        res.stats,
        "stopped at first violation",
        path,
        program.config,
        expected,
        violation_step=v.step,
        shrink=trace.shrink,
        expected_invariant=expected_invariant,
        counterexample=trace,
    )


def _cut(res: Exploration) -> tuple[int, int]:
    """(executions cut at max_steps, executions) of the search the verdict rests on:
    the last exhaustive phase of ``auto`` (its random phase is a heuristic, not coverage)."""
    phases = res.params.get("phases")
    if phases:
        last = [p for p in phases if p.get("phase") == "exhaustive"]
        if last:
            return int(last[-1].get("truncated", 0)), int(last[-1].get("executions", 0))
    return res.stats.truncated, res.stats.executions


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
