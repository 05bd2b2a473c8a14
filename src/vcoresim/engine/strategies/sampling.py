"""Sampling strategies: uniform random walks, PCT (probabilistic concurrency
testing) and a portfolio of both taking turns.

Each is deterministic for a given seed: one ``random.Random`` per sampler,
seeded from it, drives every choice of every execution, in order.  Walks
keep the step bound.  PCT walks keep the preemption bound too (a switch away
from an actor that could go on counts), so what they find lies in the space
the bounds describe; uniform walks ignore it, as they always have (a cheap
bug-finding heuristic: a violation they find is a real execution).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, Stats
from vcoresim.engine.world import Program

Factory = Callable[[Execution], Callable[[Execution, list[int]], tuple[int, int]]]


def rng_state(rng: random.Random) -> list[Any]:
    """A ``random.Random`` state as JSON (for checkpoints)."""
    version, internal, gauss = rng.getstate()
    return [version, list(internal), gauss]


def set_rng_state(rng: random.Random, state: list[Any]) -> None:
    version, internal, gauss = state
    rng.setstate((version, tuple(internal), gauss))


def _sample(
    program: Program,
    bounds: Bounds,
    name: str,
    factories: list[Factory],
    progress: Progress | None,
    *,
    unbounded: tuple[bool, ...] = (),
    first: Factory | None = None,
    stop: Callable[[], bool] | None = None,
    budget_executions: int | None = None,
    resume: dict[str, Any] | None = None,
    save: Callable[[], dict[str, Any]] | None = None,
) -> Exploration:
    """Executions to the end, each picking its steps with the next factory's
    picker in turn (round robin; ``first``, if given, picks the first
    execution's alone); ``unbounded[i]``: factory i's walks ignore the
    preemption bound.

    ``bounds.max_executions``: the sample size (default 1000), counted with the
    executions a resumed run had done; ``budget_executions``: how many this call
    may run; ``stop`` (Ctrl-C) and ``bounds.max_seconds`` also cut it short.  A cut
    sample has ``complete = False`` and, with ``save``, a checkpoint from which
    ``resume`` continues the same sample (same draws, same statistics)."""
    stats = Stats(**resume["stats"]) if resume is not None else Stats()
    start = stats.executions
    budget = Budget(bounds)
    max_exec = bounds.max_executions if bounds.max_executions is not None else 1000
    complete = True
    while stats.executions < max_exec:
        if budget.exhausted(stats, start) or (budget_executions is not None and stats.executions - start >= budget_executions) or (stop is not None and stop()):
            complete = False
            break
        ex = Execution(program)
        if first is not None and stats.executions == 0:
            turn, pick = -1, first(ex)
        else:
            turn = (stats.executions - (first is not None)) % len(factories)
            pick = factories[turn](ex)
        bound = None if 0 <= turn < len(unbounded) and unbounded[turn] else bounds.max_preemptions
        prev, preemptions = -1, 0
        while ex.violation is None:
            en = ex.enabled()
            if not en:
                ex.finish(bounded=False)
                break
            if len(ex.schedule) >= bounds.max_steps:
                ex.finish(bounded=True)
                stats.truncated += 1
                break
            idx, alt = pick(ex, en)
            if bound is not None and idx != prev and prev in en:
                # A preemption (the previous actor could go on): within the bound only.
                if preemptions >= bound:
                    idx, alt = pick(ex, [prev])
                else:
                    preemptions += 1
            prev = idx
            ex.step(idx, alt)
        stats.executions += 1
        stats.steps += ex.steps
        stats.states += ex.steps
        if progress is not None and stats.executions % 64 == 0:
            stats.seconds = budget.elapsed()
            progress(stats)
        if ex.violation is not None:
            stats.seconds = budget.elapsed()
            return Exploration(name, ex.violation, list(ex.schedule), stats, False, False)
    stats.seconds = budget.elapsed()
    res = Exploration(name, None, None, stats, complete, False)
    if not complete and save is not None:
        res.checkpoint = {"stats": stats.as_dict() | {"seconds": 0.0}, **save()}
    return res


def _uniform(rng: random.Random) -> Factory:
    """Each step: a uniformly random enabled actor, a uniformly random branch."""

    def factory(ex: Execution):  # type: ignore[no-untyped-def]
        def pick(ex: Execution, en: list[int]) -> tuple[int, int]:
            idx = en[rng.randrange(len(en))] if len(en) > 1 else en[0]
            n = ex.alternatives(idx)
            return idx, (rng.randrange(n) if n > 1 else 0)

        return pick

    return factory


def _pct(rng: random.Random, depth: int, longest: list[int]) -> Factory:
    """PCT's picker: random priorities, ``depth - 1`` priority-change points;
    ``k`` is estimated from the longest execution seen so far (``longest[0]``)."""

    def factory(ex: Execution):  # type: ignore[no-untyped-def]
        n = len(ex.actors)
        prio = list(range(depth, depth + n))
        rng.shuffle(prio)
        k = max(longest[0], 2)
        changes = sorted(rng.sample(range(1, k), min(depth - 1, k - 1)))
        change_at = {step: depth - 1 - i for i, step in enumerate(changes)}

        def pick(ex: Execution, en: list[int]) -> tuple[int, int]:
            best = max(en, key=lambda i: prio[i])
            low = change_at.get(len(ex.schedule))
            if low is not None:
                prio[best] = low
                best = max(en, key=lambda i: prio[i])
            longest[0] = max(longest[0], len(ex.schedule) + 1)
            alts = ex.alternatives(best)
            return best, (rng.randrange(alts) if alts > 1 else 0)

        return pick

    return factory


def _canonical() -> Factory:
    """No choice at all: the running actor goes on while it can, then the
    lowest-numbered enabled one, first branch (DPOR's first execution)."""

    def factory(ex: Execution):  # type: ignore[no-untyped-def]
        last = [-1]

        def pick(ex: Execution, en: list[int]) -> tuple[int, int]:
            q = last[0] if last[0] in en else en[0]
            last[0] = q
            return q, 0

        return pick

    return factory


def random_walk(
    program: Program,
    bounds: Bounds,
    seed: int,
    progress: Progress | None = None,
    *,
    stop: Callable[[], bool] | None = None,
    budget_executions: int | None = None,
    resume: dict[str, Any] | None = None,
) -> Exploration:
    """Each step: a uniformly random enabled actor, a uniformly random branch
    (the preemption bound is not applied)."""
    rng = random.Random(seed)
    if resume is not None:
        set_rng_state(rng, resume["rng"])
    res = _sample(
        program, bounds, "random", [_uniform(rng)], progress, unbounded=(True,), stop=stop, budget_executions=budget_executions, resume=resume, save=lambda: {"rng": rng_state(rng)}
    )
    res.params = {"seed": seed}
    return res


def pct(
    program: Program,
    bounds: Bounds,
    seed: int,
    depth: int = 3,
    progress: Progress | None = None,
    *,
    stop: Callable[[], bool] | None = None,
    budget_executions: int | None = None,
    resume: dict[str, Any] | None = None,
) -> Exploration:
    """PCT (Burckhardt et al., ASPLOS 2010): random actor priorities, ``depth - 1``
    priority-change points; a bug of depth d is found with probability
    >= 1/(n * k^(d-1)) per execution.  ``k`` is estimated from the longest
    execution seen so far."""
    rng = random.Random(seed)
    longest = [64]
    if resume is not None:
        set_rng_state(rng, resume["rng"])
        longest[0] = int(resume["longest"])
    res = _sample(
        program,
        bounds,
        "pct",
        [_pct(rng, depth, longest)],
        progress,
        stop=stop,
        budget_executions=budget_executions,
        resume=resume,
        save=lambda: {"rng": rng_state(rng), "longest": longest[0]},
    )
    res.params = {"seed": seed, "depth": depth}
    return res


def portfolio(
    program: Program,
    bounds: Bounds,
    seed: int,
    progress: Progress | None = None,
    *,
    stop: Callable[[], bool] | None = None,
    budget_executions: int | None = None,
    resume: dict[str, Any] | None = None,
) -> Exploration:
    """One walk without any choice (the running actor goes on while it can:
    DPOR's first execution, which finds what needs no preemption at all),
    then walks that take turns between PCT (depth 3) and uniform random
    choices: PCT finds bugs that need a few well-placed preemptions (a stray
    IPI landing in a window), uniform walks those that need many small
    interleavings; taking turns costs at most twice the better one.

    Both take ``seed``.  The uniform walks are ``random_walk``'s (``auto``'s
    random phase before PCT joined it) and, like them, ignore the preemption
    bound: a violation they find is a real execution, outside the bound or
    not.  The PCT walks keep it: unbounded, they find violations beyond the
    bounds of patched variants that still await analysis
    (docs/exploration.md, "Findings").  A cut sample's checkpoint holds both
    random streams (``rng``: PCT's, ``uniform``: the walks') and PCT's ``longest``."""
    pct_rng, walk_rng = random.Random(seed), random.Random(seed)
    longest = [64]
    if resume is not None:
        set_rng_state(pct_rng, resume["rng"])
        set_rng_state(walk_rng, resume["uniform"])
        longest[0] = int(resume["longest"])
    res = _sample(
        program,
        bounds,
        "portfolio",
        [_pct(pct_rng, 3, longest), _uniform(walk_rng)],
        progress,
        unbounded=(False, True),
        first=_canonical(),
        stop=stop,
        budget_executions=budget_executions,
        resume=resume,
        save=lambda: {"rng": rng_state(pct_rng), "uniform": rng_state(walk_rng), "longest": longest[0]},
    )
    res.params = {"seed": seed, "samplers": ["canonical (first walk)", "pct(depth 3, within the preemption bound)", "random"]}
    return res
