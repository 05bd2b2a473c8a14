"""Sampling strategies: uniform random walks and PCT (probabilistic concurrency testing).

Both are deterministic for a given seed: one ``random.Random(seed)`` drives
every choice of every execution, in order.
"""

from __future__ import annotations

import random

from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, Stats
from vcoresim.engine.world import Program


def _sample(program: Program, bounds: Bounds, name: str, pick_factory, progress: Progress | None) -> Exploration:  # type: ignore[no-untyped-def]
    stats = Stats()
    budget = Budget(bounds)
    max_exec = bounds.max_executions if bounds.max_executions is not None else 1000
    complete = True
    while stats.executions < max_exec:
        if budget.exhausted(stats):
            complete = False
            break
        ex = Execution(program)
        pick = pick_factory(ex)
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


def random_walk(program: Program, bounds: Bounds, seed: int, progress: Progress | None = None) -> Exploration:
    """Each step: a uniformly random enabled actor, a uniformly random branch."""
    rng = random.Random(seed)

    def factory(ex: Execution):  # type: ignore[no-untyped-def]
        def pick(ex: Execution, en: list[int]) -> tuple[int, int]:
            idx = en[rng.randrange(len(en))] if len(en) > 1 else en[0]
            n = ex.alternatives(idx)
            return idx, (rng.randrange(n) if n > 1 else 0)

        return pick

    res = _sample(program, bounds, "random", factory, progress)
    res.params = {"seed": seed}
    return res


def pct(program: Program, bounds: Bounds, seed: int, depth: int = 3, progress: Progress | None = None) -> Exploration:
    """PCT (Burckhardt et al., ASPLOS 2010): random actor priorities, ``depth - 1``
    priority-change points; a bug of depth d is found with probability
    >= 1/(n * k^(d-1)) per execution.  ``k`` is estimated from the longest
    execution seen so far."""
    rng = random.Random(seed)
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

    res = _sample(program, bounds, "pct", factory, progress)
    res.params = {"seed": seed, "depth": depth}
    return res
