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

from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, Stats
from vcoresim.engine.world import Program

Factory = Callable[[Execution], Callable[[Execution, list[int]], tuple[int, int]]]


def _sample(program: Program, bounds: Bounds, name: str, factories: list[Factory], progress: Progress | None, unbounded: tuple[bool, ...] = (), first: Factory | None = None) -> Exploration:
    """Executions to the end, each picking its steps with the next factory's
    picker in turn (round robin; ``first``, if given, picks the first
    execution's alone); ``unbounded[i]``: factory i's walks ignore the
    preemption bound."""
    stats = Stats()
    budget = Budget(bounds)
    max_exec = bounds.max_executions if bounds.max_executions is not None else 1000
    complete = True
    while stats.executions < max_exec:
        if budget.exhausted(stats):
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
    return Exploration(name, None, None, stats, complete, False)


def _uniform(rng: random.Random) -> Factory:
    """Each step: a uniformly random enabled actor, a uniformly random branch."""

    def factory(ex: Execution):  # type: ignore[no-untyped-def]
        def pick(ex: Execution, en: list[int]) -> tuple[int, int]:
            idx = en[rng.randrange(len(en))] if len(en) > 1 else en[0]
            n = ex.alternatives(idx)
            return idx, (rng.randrange(n) if n > 1 else 0)

        return pick

    return factory


def _pct(rng: random.Random, depth: int) -> Factory:
    """PCT's picker: random priorities, ``depth - 1`` priority-change points;
    ``k`` is estimated from the longest execution seen so far."""
    longest = [64]

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


def random_walk(program: Program, bounds: Bounds, seed: int, progress: Progress | None = None) -> Exploration:
    """Each step: a uniformly random enabled actor, a uniformly random branch
    (the preemption bound is not applied)."""
    res = _sample(program, bounds, "random", [_uniform(random.Random(seed))], progress, unbounded=(True,))
    res.params = {"seed": seed}
    return res


def pct(program: Program, bounds: Bounds, seed: int, depth: int = 3, progress: Progress | None = None) -> Exploration:
    """PCT (Burckhardt et al., ASPLOS 2010): random actor priorities, ``depth - 1``
    priority-change points; a bug of depth d is found with probability
    >= 1/(n * k^(d-1)) per execution.  ``k`` is estimated from the longest
    execution seen so far."""
    res = _sample(program, bounds, "pct", [_pct(random.Random(seed), depth)], progress)
    res.params = {"seed": seed, "depth": depth}
    return res


def portfolio(program: Program, bounds: Bounds, seed: int, progress: Progress | None = None) -> Exploration:
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
    (docs/exploration.md, "Findings")."""
    factories = [_pct(random.Random(seed), 3), _uniform(random.Random(seed))]
    res = _sample(program, bounds, "portfolio", factories, progress, unbounded=(False, True), first=_canonical())
    res.params = {"seed": seed, "samplers": ["canonical (first walk)", "pct(depth 3, within the preemption bound)", "random"]}
    return res
