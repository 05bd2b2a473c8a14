"""Mutation analysis: which change to the model would the scenario notice?

``check --mutate`` (:func:`mutate`): the scenario is checked once as it is,
noting every site of a store, barrier, load and IPI it executes, then once
per *mutant* of those sites (``engine/mutants.py``: drop a store, drop a
barrier, swap a store with the next operation, invert a loaded flag, skip an
IPI).  A mutant the check catches is *killed* (with the invariant and a
trace that replays it), as is one whose executions no longer end within
``max_steps`` where every execution of the scenario did (its verdict turns
from ``holds`` to ``bounded``: a livelock the check shows; one such execution
of its exhaustive search within a per-mutant budget is enough, since the
mutant's complete check runs the same search further); one it does not
notice *survived*: the scenario does not check that line.  The kill rate is
killed / (mutants - equivalent ones).

``check --barrier-mutations`` (:func:`mutate_barriers`, below) is the older,
barrier-only form, under a weak memory model:

The barrier *sites* a scenario executes are discovered by running it (seeded
random walks, every site seen is kept): a site is the model function that
yields the barrier, the barrier kind and its source line; sites of one kind in
one function are numbered in source order (``kvmppc_grab_hwthread:smp_mb#1``).
Then the scenario is checked once per site with that one barrier turned into
a no-op (``Program.removed_barriers``; the runtime swaps the op for a note, so
the trace shows it), under the chosen memory model.  A removal that breaks an
invariant leaves a trace that ``vcoresim replay`` reproduces: the trace's
config names the memory model and the removed site.
"""

from __future__ import annotations

import fnmatch
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcoresim.check.driver import CheckResult, check
from vcoresim.engine.mutants import KINDS, SiteInfo, discovering, mutants_of, mutated
from vcoresim.engine.mutants import Mutant as OperationMutant
from vcoresim.engine.mutants import Site as MutationSite
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.world import Program

#: Random walks used to discover barrier sites.
DISCOVERY_EXECUTIONS = 100


@dataclass(frozen=True)
class Site:
    function: str
    kind: str
    line: int
    ordinal: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.function, self.kind, self.line)

    @property
    def label(self) -> str:
        return f"{self.function}:{self.kind}#{self.ordinal}"


@dataclass
class Mutant:
    site: Site
    result: CheckResult


@dataclass
class MutationReport:
    scenario: str
    model: str
    baseline: CheckResult
    mutants: list[Mutant]
    discovery_executions: int
    #: Sites an interruption (Ctrl-C) left unchecked.
    not_run: list[Site] = field(default_factory=list)

    @property
    def breaking(self) -> list[Mutant]:
        return [m for m in self.mutants if m.result.verdict == "violation"]

    def as_dict(self, *, timing: bool = True) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "memory_model": self.model,
            "discovery_executions": self.discovery_executions,
            "baseline": self.baseline.as_dict(timing=timing),
            "mutants": [{"site": m.site.label, "function": m.site.function, "kind": m.site.kind, "line": m.site.line, **m.result.as_dict(timing=timing)} for m in self.mutants],
            "breaking": [m.site.label for m in self.breaking],
            **({"not_run": [s.label for s in self.not_run], "interrupted": True} if self.not_run else {}),
        }


def discover_sites(program: Program, *, executions: int = DISCOVERY_EXECUTIONS, seed: int = 0, max_steps: int = 4000) -> list[Site]:
    """Barrier sites seen in ``executions`` seeded random walks of ``program``."""
    from vcoresim.engine.memory import WeakExecution  # weak memory loads only for barrier mutations

    rng = random.Random(seed)
    seen: set[tuple[str, str, int]] = set()
    for _ in range(executions):
        ex = WeakExecution(program, sites=seen)
        while ex.violation is None and len(ex.schedule) < max_steps:
            en = ex.enabled()
            if not en:
                break
            idx = en[rng.randrange(len(en))]
            n = ex.alternatives(idx)
            ex.step(idx, rng.randrange(n) if n > 1 else 0)
    sites: list[Site] = []
    for func, kind in sorted({(f, k) for f, k, _ in seen}):
        lines = sorted(line for f, k, line in seen if (f, k) == (func, kind))
        sites.extend(Site(func, kind, line, i + 1) for i, line in enumerate(lines))
    return sites


def mutate_barriers(
    program: Program,
    *,
    strategy: str,
    bounds: Bounds,
    seed: int,
    trace_dir: Path,
    sites: list[Site] | None = None,
    stop: Callable[[], bool] | None = None,
    progress: Any = None,
) -> MutationReport:
    """Check ``program`` (already under its memory model) as is, then once per barrier
    site removed; ``stop`` (Ctrl-C) leaves the remaining sites unchecked (``not_run``).
    Traces are named by their content in ``trace_dir``."""
    from vcoresim.engine.memory import with_memory_model

    model = program.memory_model
    if progress is not None:
        progress.start(f"{program.name}: discovering barrier sites")
    found = sites if sites is not None else discover_sites(program, seed=seed, max_steps=bounds.max_steps)
    if progress is not None:
        progress.start(f"{program.name}: no barrier removed", 1, len(found) + 1)
    baseline = check(program, strategy=strategy, bounds=bounds, seed=seed, trace_dir=trace_dir, stop=stop, progress=progress)
    mutants = []
    left: list[Site] = []
    for k, site in enumerate(found, start=2):
        if stop is not None and stop():
            left.append(site)
            continue
        if progress is not None:
            progress.start(f"without {site.label}", k, len(found) + 1)
        mutant = with_memory_model(program, model, frozenset({site.key}))
        res = check(mutant, strategy=strategy, bounds=bounds, seed=seed, trace_dir=trace_dir, stop=stop, progress=progress)
        mutants.append(Mutant(site, res))
    return MutationReport(program.name, model, baseline, mutants, DISCOVERY_EXECUTIONS if sites is None else 0, left)


# ------------------------------------------------------------ operation mutation
#: Default budget of each mutant's check, in executions (deterministic, unlike seconds).
MUTANT_EXECUTIONS = 1000


@dataclass
class MutantOutcome:
    """One mutant's check: ``killed`` (an invariant or liveness property caught
    it, or its executions no longer end within ``max_steps`` where the
    scenario's all do), ``crashed`` (the model's own consistency checks did),
    ``survived`` (nothing noticed, within ``result``'s coverage), or
    ``equivalent`` (cannot change behaviour: a barrier under ``sc``; not run)."""

    mutant: OperationMutant
    status: str
    result: CheckResult | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def caught_by(self) -> str | None:
        """The invariant, ``max_steps`` (executions that no longer end) or ``model error``."""
        if self.status == "crashed":
            return "model error"
        if self.status != "killed" or self.result is None:
            return None
        return self.result.invariant if self.result.verdict == "violation" else "max_steps"

    def as_dict(self, *, timing: bool = True) -> dict[str, Any]:
        r = self.result
        return {
            **self.mutant.as_dict(),
            "status": self.status,
            "caught_by": self.caught_by,
            "invariant": r.invariant if r is not None else None,
            "message": r.message if r is not None else self.error,
            "verdict": r.verdict if r is not None else None,
            "coverage": r.coverage if r is not None else None,
            "executions": r.stats.executions if r is not None else 0,
            "trace": r.trace if r is not None else None,
            "seconds": round(self.seconds, 3) if timing else None,
        }


@dataclass
class MutationRun:
    scenario: str
    model: str
    baseline: CheckResult
    sites: int
    outcomes: list[MutantOutcome]
    kinds: tuple[str, ...]
    budget: dict[str, Any]
    #: Mutants an interruption (Ctrl-C) left unchecked.
    not_run: int = 0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def relevant(self) -> int:
        """Mutants that could be killed (not equivalent)."""
        return len(self.outcomes) - self.count("equivalent")

    @property
    def kill_rate(self) -> float | None:
        n = self.relevant
        return None if n == 0 else (self.count("killed") + self.count("crashed")) / n

    def summary(self) -> str:
        if self.baseline.verdict == "violation":
            return f"not run: {self.scenario} already violates {self.baseline.invariant} (mutation analysis needs a scenario that holds)"
        rate = self.kill_rate
        survived_complete = sum(1 for o in self.outcomes if o.status == "survived" and o.result is not None and o.result.verdict == "holds")
        parts = [
            f"{self.count('killed') + self.count('crashed')} of {self.relevant} mutants killed" + ("" if rate is None else f" ({100 * rate:.0f}%)"),
            f"{self.count('survived')} survived ({survived_complete} in a complete check, {self.count('survived') - survived_complete} within the budget)",
        ]
        by_steps = sum(1 for o in self.outcomes if o.caught_by == "max_steps")
        if by_steps or self.count("crashed"):
            how = [f"{by_steps} by executions that no longer end within max_steps"] if by_steps else []
            how += [f"{self.count('crashed')} by a model error"] if self.count("crashed") else []
            parts.insert(1, "of the kills " + " and ".join(how))
        if self.count("equivalent"):
            parts.append(f"{self.count('equivalent')} equivalent under {self.model} (not run)")
        if self.not_run:
            parts.append(f"interrupted: {self.not_run} mutants not checked")
        return "; ".join(parts)

    def as_dict(self, *, timing: bool = True) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "memory_model": self.model,
            "baseline": self.baseline.as_dict(timing=timing),
            "sites": self.sites,
            "mutations": list(self.kinds),
            "budget": self.budget,
            "mutants": len(self.outcomes),
            "killed": self.count("killed") + self.count("crashed"),
            "killed_by_model_error": self.count("crashed"),
            "killed_by_max_steps": sum(1 for o in self.outcomes if o.caught_by == "max_steps"),
            "survived": self.count("survived"),
            "equivalent": self.count("equivalent"),
            "not_run": self.not_run,
            "kill_rate": None if self.kill_rate is None else round(self.kill_rate, 4),
            "summary": self.summary(),
            "outcomes": [o.as_dict(timing=timing) for o in self.outcomes],
        }


def select_mutants(mutants: list[OperationMutant], pattern: str | None) -> list[OperationMutant]:
    """``--sites``: mutants whose label, function or file:line matches ``pattern``
    (a shell-style pattern; a plain word matches as a substring), comma-separated alternatives."""
    if not pattern:
        return mutants
    pats = [p.strip() for p in pattern.split(",") if p.strip()]

    def hit(m: OperationMutant) -> bool:
        keys = (m.label, m.site.function, m.site.where, m.site.file, f"{m.site.name}:{m.site.line}", m.kind)
        for p in pats:
            if any(ch in p for ch in "*?["):
                if any(fnmatch.fnmatchcase(k, p) for k in keys):
                    return True
            elif any(p in k for k in keys):
                return True
        return False

    return [m for m in mutants if hit(m)]


#: What the worker processes of a parallel mutation run share (set before the fork).
_JOB: dict[str, Any] = {}


def _exhaustive_cut(res: CheckResult) -> int:
    """Executions of the exhaustive search (``auto``'s DPOR phases, or the
    ``exhaustive`` strategy) cut at max_steps; sampling phases not counted."""
    phases = res.strategy.get("phases")
    if phases is not None:
        return sum(int(p.get("truncated", 0)) for p in phases if p.get("phase") == "exhaustive")
    return res.stats.truncated if res.strategy.get("name") == "exhaustive" else 0


def _run_mutant(m: OperationMutant) -> MutantOutcome:
    job = _JOB
    program: Program = job["program"]
    if m.kind == "drop-barrier" and program.memory_model == "sc":
        return MutantOutcome(m, "equivalent")
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", f"{m.kind}-{m.site.name}-{m.site.line}")
    trace_dir = job["trace_dir"]
    out = None if trace_dir is None else trace_dir / f"{job['stem']}.{program.memory_model}" / f"{name}.trace.json"
    t = time.perf_counter()
    try:
        res = check(mutated(program, m), strategy=job["strategy"], bounds=job["bounds"], seed=job["seed"], trace_out=out, trace_dir=None, progress=job["progress"])
    except Exception as e:  # noqa: BLE001 - a mutant may break the model's own assumptions
        return MutantOutcome(m, "crashed", None, f"{type(e).__name__}: {e}", time.perf_counter() - t)
    # A mutant whose executions no longer end within max_steps, where every
    # execution of the scenario itself did (a baseline that holds, none cut),
    # is noticed: the verdict changes from holds to bounded (a livelock).  One
    # execution of the exhaustive search cut is enough, even when the
    # per-mutant budget ran out: the mutant's complete check explores that
    # execution (the budget only stops the same search earlier), so it cannot
    # say holds either.  A cut in a sampling phase is not: its random walks
    # ignore the preemption bound the complete check keeps.
    looped = res.verdict == "bounded" or _exhaustive_cut(res) > 0
    killed = res.verdict == "violation" or (looped and job["baseline_ends"])
    return MutantOutcome(m, "killed" if killed else "survived", res, None, time.perf_counter() - t)


def mutate(
    program: Program,
    *,
    strategy: str,
    bounds: Bounds,
    mutant_bounds: Bounds,
    seed: int,
    trace_dir: Path | None,
    kinds: tuple[str, ...] = KINDS,
    sites: str | None = None,
    progress: Any = None,
    workers: int = 1,
    stop: Callable[[], bool] | None = None,
) -> MutationRun:
    """Check ``program`` (discovering the sites it executes), then once per mutant
    of those sites with ``mutant_bounds`` (a per-mutant budget).  ``progress``:
    a display with ``start(item, k, n)`` (and the check driver's ``phase``).
    ``workers``: mutants checked in that many processes (same results, in order).
    ``stop`` (Ctrl-C): the mutants not checked yet are left out (``not_run``)."""
    found: dict[MutationSite, SiteInfo] = {}
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", program.name)
    if progress is not None:
        progress.start(f"{program.name}: baseline, discovering sites")
    baseline = check(discovering(program, found), strategy=strategy, bounds=bounds, seed=seed, trace_out=None if trace_dir is None else trace_dir / f"{stem}.baseline.trace.json", trace_dir=None, progress=progress)
    budget = {k: v for k, v in mutant_bounds.as_dict().items() if k in ("max_executions", "max_seconds")}
    run = MutationRun(program.name, program.memory_model, baseline, len(found), [], tuple(kinds), budget)
    if baseline.verdict == "violation":
        return run
    chosen = select_mutants(mutants_of(found, tuple(kinds)), sites)
    _JOB.clear()
    _JOB.update(
        program=program, strategy=strategy, bounds=mutant_bounds, seed=seed, trace_dir=trace_dir, stem=stem,
        progress=progress if workers <= 1 else None, baseline_ends=baseline.verdict == "holds" and baseline.cut == 0,
    )
    try:
        if workers <= 1:
            for k, m in enumerate(chosen, start=1):
                if stop is not None and stop():
                    run.not_run = len(chosen) - k + 1
                    break
                if progress is not None:
                    progress.start(m.label, k, len(chosen))
                run.outcomes.append(_run_mutant(m))
        else:
            import multiprocessing as mp

            from vcoresim.check.parallel import worker_signals

            with mp.get_context("fork").Pool(workers, initializer=worker_signals) as pool:
                for k, outcome in enumerate(pool.imap(_run_mutant, chosen, chunksize=1), start=1):
                    if stop is not None and stop():
                        run.not_run = len(chosen) - k + 1
                        break
                    run.outcomes.append(outcome)
                    if progress is not None:
                        killed = sum(o.status in ("killed", "crashed") for o in run.outcomes)
                        progress.start(f"{outcome.mutant.label}: {outcome.status}", k, len(chosen))
                        progress.show(f"{killed} of {k} killed, {workers} processes")
    finally:
        _JOB.clear()
    return run
