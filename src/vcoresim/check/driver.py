"""``check``: run a strategy over a program, shrink what it finds, write the trace."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcoresim.check.trace import Trace, build_trace, config_difference, context_switches, jsonable, load_trace, schedule_indices, shrink
from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, ReplayDivergence, Stats, run_schedule
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.engine.strategies.sampling import pct, portfolio, random_walk
from vcoresim.engine.world import Program
from vcoresim.files import excerpt, show_path

Stop = Callable[[], bool] | None
#: A context in which a further Ctrl-C is noted, not raised (the CLI's ``INTERRUPT.shield``).
Shield = Callable[[], AbstractContextManager[Any]] | None

STRATEGIES = ("auto", "exhaustive", "dfs", "random", "pct")
#: Executions of the first (sampling) phase of ``auto``: PCT and uniform random
#: walks taking turns (``sampling.portfolio``).
AUTO_RANDOM_EXECUTIONS = 200
#: Steps per random walk of ``auto``'s random phase (at most the step bound).  The
#: phase is a cheap bug-finding heuristic, not coverage: walks that run this long
#: are mostly guests ceding and idling round a loop (the KVM scenarios' 4000-step
#: walks were half the phase's cost and found nothing the short ones miss); the
#: exhaustive phases keep the full step bound.
AUTO_RANDOM_MAX_STEPS = 500
#: Steps shrinking a counterexample may replay at least (or a quarter as many as
#: the search ran, if more): ``trace.shrink``'s budget.  A short trace is shrunk
#: to the end within it; a long one from a short search is not worth more.  (Half
#: the search's steps shrank no built-in counterexample further than a quarter.)
SHRINK_STEPS = 2_000
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
EXIT_CODES = {"holds": 0, "violation": 1, "bounded": 3, "sampled": 3, "incomplete": 3, "not run": 3}


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
    interrupted: bool = False  # Ctrl-C / SIGTERM ended the search before its bounds were covered
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
    #: The delays the counterexample needs (simulate/window.py), for a violation.
    window: dict[str, Any] | None = None

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
            loops = (
                f"; {s.cycles:,} {_plural(s.cycles, 'execution')} came back to a state on their own path, so the model can "
                "run forever there (safety holds in every state; only a liveness property checks progress)"
                if s.cycles
                else ""
            )
            if self.strategy.get("preemption_bound_cut") and not self.strategy.get("bounded_por"):
                # Plain DPOR's backtrack points assume every schedule is allowed;
                # cutting schedules at a preemption bound can drop the one a race
                # needed.  BPOR's rule (--exact-bound, opt-in) does not.
                return (
                    f"holds: every execution DPOR explores within the bounds ({s.executions:,} executions, none cut at "
                    "max_steps); DPOR cut schedules at the preemption bound, where its reduction is a heuristic that can "
                    f"miss executions within the bound (--exact-bound or --workers 2 make the bound exact){loops}"
                )
            return f"holds: every execution within the bounds explored ({s.executions:,} executions, none cut at max_steps){loops}"
        if self.verdict == "bounded":
            of = f" of {self.cut_of:,}" if self.cut_of else ""
            return (
                f"bounded: no violation, but {self.cut:,}{of} {_plural(self.cut_of or self.cut, 'execution')} cut at "
                f"max_steps={self.bounds.get('max_steps')} (not a proof: raise max_steps)"
            )
        if self.verdict == "sampled":
            cut = f", {s.truncated:,} cut at max_steps={self.bounds.get('max_steps')}" if s.truncated else ""
            return f"no violation found in {s.executions:,} samples ({self.strategy.get('name')}{cut}; sampling is not a proof)"
        if self.verdict == "not run":
            return "not run: the run was interrupted before this scenario"
        why = "interrupted (Ctrl-C or SIGTERM)" if self.interrupted else "a budget ran out"
        return f"incomplete: {why} after {s.executions:,} executions, no violation found so far (not a proof)"

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
            "strategy": self.strategy if timing else {k: v for k, v in self.strategy.items() if k not in _TIMED_PARAMS},
            "bounds": self.bounds,
            "config": self.config,
            "stats": stats,
            "shrink": self.shrink,
            "trace": self.trace,
            **({"checkpoint": self.checkpoint} if self.checkpoint else {}),
            **({"window": self.window} if self.window is not None else {}),
            **({"interrupted": True} if self.interrupted else {}),
            **self.extra,
        }


#: Strategy parameters measured in time (left out of ``--reproducible`` output).
_TIMED_PARAMS = frozenset({"worker_busy", "worker_cpu_s"})


def not_run(scenario: str, config: dict[str, Any], expected: str | None = None) -> CheckResult:
    """A scenario an interrupted multi-scenario run did not get to."""
    return CheckResult(scenario, "not run", None, None, {}, {}, Stats(), "not run", None, config, expected, interrupted=True)


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


def use_cache(program: Program, bounds: Bounds, cache: bool | None, workers: int = 1, ray: str | None = None) -> bool:
    """Whether a search keeps the state cache.  ``None`` (the default): yes for
    a serial search without a preemption bound under sequential consistency,
    where the cache and stateful DPOR measured faster (benchmarks/README.md);
    a bounded search revisits few states (its cache key includes who ran last),
    so the cache costs more than it saves there."""
    if cache is not None:
        return cache
    return bounds.max_preemptions is None and workers <= 1 and ray is None and _plain_sc(program) and not program.removed_barriers


def _plain_sc(program: Program) -> bool:
    """The sequentially consistent execution, or it with coverage recording
    (check/unreached.py; recording changes no state): not a weak model's, not a mutant's."""
    cls = program.execution
    if cls is None:
        return True
    from vcoresim.engine.coverage import _Recording
    from vcoresim.engine.runtime import Execution

    return issubclass(cls, _Recording) and cls.__mro__[1:3] == (_Recording, Execution)


def _search(program: Program, bounds: Bounds, *, dpor: bool, cache: bool | None, progress: Progress | None, resume: dict[str, Any] | None, stop: Stop, workers: int, ray: str | None = None, shield: Shield = None, bounded_por: bool = False) -> Exploration:
    """One exhaustive search: serial DPOR (resumable), or the frontier search
    on ``workers`` processes or on Ray (check/parallel.py; a checkpoint of it
    resumes it, in one process unless workers are given)."""
    cache = use_cache(program, bounds, cache, workers, ray)
    if ray is not None or workers > 1 or (resume is not None and resume.get("kind") == "parallel"):
        from vcoresim.check.parallel import parallel_search

        return parallel_search(program, bounds, workers, ray=ray, progress=progress, stop=stop, resume=resume, shield=shield)
    return exhaustive(program, bounds, dpor=dpor, cache=cache, progress=progress, resume=resume, stop=stop, bounded_por=bounded_por)


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
    shield: Shield = None,
    bounded_por: bool = False,
) -> Exploration:
    """The default: a seeded sampling phase (one walk without choice, then PCT
    and uniform random walks taking turns; under a weak memory model, a PCT
    phase after it) finds shallow bugs fast; then DPOR with iterative
    preemption bounding (0, 1, ... up to ``max_preemptions``; unbounded last
    when no bound is given) covers the space, or, with ``workers``/``ray``,
    one frontier search at the bound.  The verdict covers the last bound
    completed.

    Budgets are totals over the phases: ``max_executions`` counts every
    execution of every phase (it caps the sampling phase too) and
    ``max_seconds`` the whole run.  A budget or ``stop`` (Ctrl-C) that ends a
    phase leaves a checkpoint of it, sampling phases included (their random
    streams' state), so ``resume`` continues to the statistics of an
    uninterrupted run."""
    budget = Budget(bounds)
    total = Stats()
    phases: list[dict[str, Any]] = []
    limits: list[int | None] = list(range(bounds.max_preemptions + 1)) if bounds.max_preemptions is not None else [0, 1, None]
    frontier = workers > 1 or ray is not None or bool(resume and resume.get("search") and resume["search"].get("kind") == "parallel")
    if frontier:
        # The frontier search's preemption bound is exact, not a heuristic, so a
        # bounded phase covers part of the next one's states: run the last only.
        limits = [bounds.max_preemptions]
    first = 0
    search_state: dict[str, Any] | None = None
    sample_state: dict[str, Any] | None = None
    if resume is not None:
        total = Stats(**resume["total"])
        phases = list(resume["phases"])
        first = resume["phase"]
        search_state = resume["search"]
        sample_state = resume.get("sample")
        if frontier:
            first = 0  # one phase, at the bound (an earlier serial run's later phases are in it)
    start = total.executions
    res2: Exploration | None = None

    def execs_left() -> int | None:
        return None if bounds.max_executions is None else bounds.max_executions - (total.executions - start)

    def secs_left() -> float | None:
        return None if bounds.max_seconds is None else max(bounds.max_seconds - budget.elapsed(), 0.001)

    def params() -> dict[str, Any]:
        out = {"seed": seed, "phases": phases, "dpor": True, "sleep_sets": True, "state_cache": any(p.get("state_cache") for p in phases)}
        last = next((p for p in reversed(phases) if p["phase"] == "exhaustive"), None)
        if last is not None and last.get("preemption_bound_cut"):  # the verdict covers the last phase
            out["preemption_bound_cut"] = True
            if last.get("bounded_por"):
                out["bounded_por"] = True
        if last is not None and last.get("sleep_sets") is False:
            out["sleep_sets"] = False
        if workers > 1:
            out["workers"] = workers
        if ray is not None:
            out["ray"] = ray
        if res2 is not None and res2.params.get("search") == "frontier":  # the exhaustive phases ran the frontier search
            out.update({k: v for k, v in res2.params.items() if k not in ("work_items", "redundant_states", "worker_busy", "worker_cpu_s", "preemption_bound_cut")})
        return out

    def cut(phase: int, totals: Stats, search: dict[str, Any] | None = None, sample: dict[str, Any] | None = None) -> Exploration:
        total.seconds = budget.elapsed()
        out = Exploration("auto", None, None, total, False, True, params())
        out.checkpoint = {"kind": "auto", "phase": phase, "phases": list(phases), "total": totals.as_dict() | {"seconds": 0.0}, "search": search}
        if sample is not None:
            out.checkpoint["sample"] = sample
        return out

    sampling = [("sampling", AUTO_RANDOM_EXECUTIONS)] + ([("pct", AUTO_PCT_EXECUTIONS)] if program.memory_model != "sc" else [])
    if resume is None or sample_state is not None:
        todo = sampling if sample_state is None else sampling[[n for n, _ in sampling].index(sample_state["phase"]) :]
        for name, size in todo:
            state = sample_state["state"] if sample_state is not None and sample_state["phase"] == name else None
            left = execs_left()
            if (left is not None and left <= 0) or (stop is not None and stop()):
                return cut(first, total, sample={"phase": name, "state": state})
            announce(progress, "PCT and random walks (auto)" if name == "sampling" else "PCT", size)
            if name == "sampling":
                walk = min(bounds.max_steps, AUTO_RANDOM_MAX_STEPS)
                res = portfolio(program, Bounds(walk, bounds.max_preemptions, size, secs_left()), seed, progress=progress, stop=stop, budget_executions=left, resume=state)
            else:
                res = pct(program, Bounds(bounds.max_steps, None, size, secs_left()), seed, depth=3, progress=progress, stop=stop, budget_executions=left, resume=state)
            _add(total, _minus(res.stats, Stats(**state["stats"]) if state is not None else Stats()))
            if res.violation is not None:
                phases.append({"phase": name, "executions": res.stats.executions, "truncated": res.stats.truncated})
                total.seconds = budget.elapsed()
                return Exploration("auto", res.violation, res.schedule, total, False, False, {"seed": seed, "phases": phases})
            if not res.complete:
                return cut(first, total, sample={"phase": name, "state": res.checkpoint})
            phases.append({"phase": name, "executions": res.stats.executions})
    checkpoint: dict[str, Any] | None = None
    for n, limit in enumerate(limits[first:], start=first):
        left = execs_left()
        if (left is not None and left <= 0) or (stop is not None and stop()):
            return cut(n, total, search=search_state)
        before = Stats(**total.as_dict())
        search = "frontier search" if frontier else "DPOR"
        announce(progress, f"{search}, preemption bound {'none' if limit is None else limit} (bound {n + 1} of {len(limits)})", left)
        res2 = _search(program, Bounds(bounds.max_steps, limit, left, secs_left()), dpor=True, cache=cache, progress=progress, resume=search_state, stop=stop, workers=workers, ray=ray, shield=shield, bounded_por=bounded_por)
        search_state = None
        _add(total, res2.stats)
        phases.append({"phase": "exhaustive", "max_preemptions": limit, "executions": res2.stats.executions, "truncated": res2.stats.truncated, "complete": res2.complete, "state_cache": bool(res2.params.get("state_cache"))})
        if res2.params.get("preemption_bound_cut"):  # (DPOR's bound only: the frontier search's is exact)
            phases[-1]["preemption_bound_cut"] = True
            if res2.params.get("bounded_por"):
                phases[-1]["bounded_por"] = True
        if res2.params.get("sleep_sets") is False:
            phases[-1]["sleep_sets"] = False
        if res2.violation is not None:
            break
        if not res2.complete:
            if res2.checkpoint is not None:
                checkpoint = {"kind": "auto", "phase": n, "phases": phases[:-1], "total": before.as_dict() | {"seconds": 0.0}, "search": res2.checkpoint}
            break
    assert res2 is not None
    total.seconds = budget.elapsed()
    out = Exploration("auto", res2.violation, res2.schedule, total, res2.complete, True, params())
    out.checkpoint = checkpoint
    return out


def _minus(a: Stats, b: Stats) -> Stats:
    return Stats(a.executions - b.executions, a.states - b.states, a.steps - b.steps, 0.0, a.truncated - b.truncated, a.pruned - b.pruned, a.cycles - b.cycles)


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
    shield: Shield = None,
    bounded_por: bool = False,
) -> Exploration:
    if strategy == "auto":
        return auto(program, bounds, seed, cache=cache, progress=progress, resume=resume, stop=stop, workers=workers, ray=ray, shield=shield, bounded_por=bounded_por)
    if strategy in ("exhaustive", "dfs"):
        announce(progress, "frontier search" if (workers > 1 or ray is not None) else "DPOR" if strategy == "exhaustive" else "DFS + sleep sets", bounds.max_executions)
        res = _search(program, bounds, dpor=strategy == "exhaustive", cache=cache, progress=progress, resume=resume["search"] if resume else None, stop=stop, workers=workers, ray=ray, shield=shield, bounded_por=bounded_por)
        if res.checkpoint is not None:
            res.checkpoint = {"kind": strategy, "search": res.checkpoint}
        return res
    if resume is not None:
        raise ValueError(f"--resume: the {strategy} strategy has no checkpoint to resume")
    announce(progress, "random walks" if strategy == "random" else "PCT", bounds.max_executions or 1000)
    if strategy == "random":
        return random_walk(program, bounds, seed, progress=progress, stop=stop)
    if strategy == "pct":
        return pct(program, bounds, seed, depth=pct_depth, progress=progress, stop=stop)
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
    trace_dir: Path | None = Path("traces"),
    do_shrink: bool = True,
    full_shrink: bool = False,
    expected: str | None = None,
    expected_invariant: str | None = None,
    progress: Progress | None = None,
    workers: int = 1,
    stop: Stop = None,
    resume: dict[str, Any] | None = None,
    checkpoint_out: Path | None = None,
    checkpoint_dir: Path | None = None,
    ray: str | None = None,
    shield: Callable[[], AbstractContextManager[Any]] | None = None,
    coverage: bool = False,
    bounded_por: bool = False,
) -> CheckResult:
    """Explore ``program``; shrink what it finds and return its verdict (see
    :class:`CheckResult`).

    ``cache``: the state cache (None: on for the searches without a
    preemption bound, see ``use_cache``).

    ``trace_out``: the trace file (default ``trace_dir/<scenario>.<memory
    model>.<digest>.trace.json``, named by its content, written atomically; no
    file when ``trace_dir`` is None too: the trace is in
    ``CheckResult.counterexample`` either way).  ``expected`` /
    ``expected_invariant``: what the scenario expects
    (``CheckResult.as_expected``).  ``resume``: the ``state`` of a checkpoint
    document; ``checkpoint_out`` / ``checkpoint_dir``: where to write one if a
    budget or ``stop`` (Ctrl-C) ends the search early (in a folder: named by
    its content).  ``stop`` also cuts shrinking short, as does
    ``bounds.max_seconds``, which covers the whole check, shrinking included
    (``stats.seconds`` too).  A second Ctrl-C (``KeyboardInterrupt``) while
    shrinking writes the trace shrunk so far; in the search, it ends the check
    as interrupted with the statistics last reported (no checkpoint).
    Shrinking spends at most a quarter of the search's steps (at least
    ``SHRINK_STEPS``) unless ``full_shrink`` (swarm: it folds runs by where
    the shrunk trace fails).  ``shield``: a context in which the results are written (the CLI's: a
    further Ctrl-C there is noted, not raised).  ``coverage``: record the
    model code the executions reach and, when no violation stops the check,
    report what they never reached and which monitors were vacuous
    (``extra["unreached"]``, see ``check/unreached.py``; not with
    ``workers``/``ray``)."""
    bounds = bounds or Bounds()
    guard = shield if shield is not None else nullcontext
    clock = Budget(bounds)
    seen = [Stats()]
    cov = None
    record_coverage = coverage  # (the name is reused below for what was covered)
    if record_coverage and workers == 1 and ray is None:
        from vcoresim.engine.coverage import Coverage, covering

        cov = Coverage()
        program = covering(program, cov)
    report = _Remember(progress, seen)
    all_bounds = {**bounds.as_dict(), **program.model_bounds}
    try:
        res = explore(program, strategy, bounds, seed, pct_depth=pct_depth, cache=cache, progress=report, resume=resume, stop=stop, workers=workers, ray=ray, shield=shield, bounded_por=bounded_por)
    except KeyboardInterrupt:
        st = seen[0]
        st.seconds = clock.elapsed()
        out = CheckResult(program.name, "incomplete", None, None, {"name": strategy}, all_bounds, st, "partial", None, program.config, expected, interrupted=True)
        out.expected_invariant = expected_invariant
        return out
    strat = {"name": strategy, **res.params}
    if strategy in ("random", "pct", "auto"):
        strat["seed"] = seed
    interrupted = stop is not None and stop()
    checkpoint: str | None = None
    if res.violation is None and res.checkpoint is not None and (checkpoint_out is not None or checkpoint_dir is not None):
        from vcoresim.check.checkpoint import default_checkpoint_path, write_checkpoint

        st = {"name": strategy, "seed": seed, "cache": cache, "pct_depth": pct_depth, "workers": max(workers, 1)}
        doc = {"scenario": program.name, "config": jsonable(program.config), "strategy": st, "bounds": bounds.as_dict(), "state": res.checkpoint}
        path = checkpoint_out if checkpoint_out is not None else default_checkpoint_path(doc, checkpoint_dir or Path("checkpoints"))
        with guard():
            checkpoint = str(write_checkpoint(path, doc))
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
        res.stats.seconds = clock.elapsed()
        out = CheckResult(program.name, verdict, None, None, strat, all_bounds, res.stats, coverage, None, program.config, expected, cut=cut, cut_of=of)
        out.expected_invariant = expected_invariant
        out.checkpoint = checkpoint
        out.interrupted = interrupted and not res.complete
        if cov is not None:
            from vcoresim.check.unreached import analyse

            out.extra["unreached"] = analyse(cov).as_dict()
        elif record_coverage:
            out.extra["unreached"] = None  # not recorded across worker processes
        return out
    assert res.schedule is not None
    stopped: list[str] = []
    deadline = None if bounds.max_seconds is None else clock.start + bounds.max_seconds
    shrink_steps = None if full_shrink else max(res.stats.steps // 4, SHRINK_STEPS)
    schedule = shrink(program, res.schedule, res.violation, deadline=deadline, stop=stop, cut=stopped, budget=shrink_steps) if do_shrink else res.schedule
    from vcoresim.simulate.window import timing_window  # only a violation has a window

    window = timing_window(program, schedule).as_dict()
    path: str | None = None
    with guard():
        trace, ex = build_trace(
            program,
            schedule,
            strategy=strat,
            bounds=all_bounds,
            original_length=len(res.schedule),
            original_switches=context_switches(res.schedule),
        )
        trace.window = window
        trace.shrink["shrunk"] = do_shrink
        if stopped:
            trace.shrink["stopped"] = stopped[0]  # "budget" or "interrupted": shrunk as far as it got
        if trace_out is not None or trace_dir is not None:
            text = trace.to_json()  # once: it names the file and is its content
            path = str(trace.write(trace_out if trace_out is not None else trace.default_path(trace_dir, text), text=text))
    v = ex.violation or res.violation
    res.stats.seconds = clock.elapsed()
    return CheckResult(
        program.name,
        "violation",
        v.name,
        v.message,
        strat,
        all_bounds,
        res.stats,
        "stopped at first violation",
        path,
        program.config,
        expected,
        violation_step=v.step,
        shrink=trace.shrink,
        window=window,
        expected_invariant=expected_invariant,
        counterexample=trace,
    )


class _Remember:
    """A progress callback that remembers the last statistics (what an
    interrupted search reports) and passes the phase hook through."""

    def __init__(self, progress: Progress | None, seen: list[Stats]) -> None:
        self.progress, self.seen = progress, seen

    def __call__(self, st: Stats) -> None:
        self.seen[0] = Stats(**st.as_dict())
        if self.progress is not None:
            self.progress(st)

    def phase(self, name: str, total: int | None) -> None:
        announce(self.progress, name, total)


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
    #: The delays the replayed counterexample needs (simulate/window.py); None without a violation.
    window: dict[str, Any] | None = None


def replay(path: Path, program_for: Any) -> ReplayOutcome:
    """Re-execute a trace file.  ``program_for(scenario, config)`` rebuilds the program.

    The trace's config is used as written: a field the rebuilt program does
    not have as written (an edited ``patches`` list that ``kernel`` does not
    give, a setting the scenario does not take) is an error naming it.  Every
    schedule entry must be an enabled actor with a branch its transition has,
    and none may follow the violation.  ``REPRODUCED`` only when the replay
    violates the same property at the same step as recorded."""
    from vcoresim.check.trace import TraceError

    trace = load_trace(path)
    program = program_for(trace.scenario, trace.config)
    src = show_path(path)
    if program.name != trace.scenario:
        raise TraceError(f"{src}: field 'scenario': {excerpt(trace.scenario)}, but its config builds {excerpt(program.name)}")
    diff = config_difference(trace.config, jsonable(program.config))
    if diff is not None:
        raise TraceError(f"{src}: field {diff}")
    probe = Execution(program)
    schedule = schedule_indices([a.name for a in probe.actors], trace, path)
    try:
        ex = run_schedule(program, schedule, record=True)
    except ReplayDivergence as e:
        raise TraceError(f"{src}: {e}") from None
    want = trace.violation
    got = ex.violation
    if want is not None and got is not None and (got.name, got.kind, got.step) == (want["invariant"], want["kind"], want["step"]):
        summary = f"REPRODUCED: {got.name} violated at step {got.step}: {got.message}"
        ok = True
    elif want is None and got is None:
        summary = "REPRODUCED: the run ends without a violation, as recorded"
        ok = True
    else:
        rec = f"{want['invariant']} at step {want['step']}" if want is not None else "no violation"
        rep = f"{got.name} at step {got.step}" if got is not None else "no violation"
        summary = f"NOT REPRODUCED: the trace records {rec}, the replay gives {rep}"
        ok = False
    from vcoresim.simulate.window import timing_window

    window = timing_window(program, [(i, alt) for i, alt in ex.schedule]).as_dict() if ex.violation is not None else None
    return ReplayOutcome(trace, ex, ok, summary, window)
