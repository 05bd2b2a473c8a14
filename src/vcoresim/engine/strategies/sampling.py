"""Sampling strategies: uniform random walks and PCT (probabilistic concurrency testing).

Both are deterministic for a given seed: one ``random.Random(seed)`` drives
every choice of every execution, in order.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, Stats
from vcoresim.engine.world import Program


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
    pick_factory,  # type: ignore[no-untyped-def]
    progress: Progress | None,
    *,
    stop: Callable[[], bool] | None = None,
    budget_executions: int | None = None,
    resume: dict[str, Any] | None = None,
    save: Callable[[], dict[str, Any]] | None = None,
) -> Exploration:
    """``bounds.max_executions``: the sample size (default 1000), counted with the
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
    res = Exploration(name, None, None, stats, complete, False)
    if not complete and save is not None:
        res.checkpoint = {"stats": stats.as_dict() | {"seconds": 0.0}, **save()}
    return res


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
    """Each step: a uniformly random enabled actor, a uniformly random branch."""
    rng = random.Random(seed)
    if resume is not None:
        set_rng_state(rng, resume["rng"])

    def factory(ex: Execution):  # type: ignore[no-untyped-def]
        def pick(ex: Execution, en: list[int]) -> tuple[int, int]:
            idx = en[rng.randrange(len(en))] if len(en) > 1 else en[0]
            n = ex.alternatives(idx)
            return idx, (rng.randrange(n) if n > 1 else 0)

        return pick

    res = _sample(program, bounds, "random", factory, progress, stop=stop, budget_executions=budget_executions, resume=resume, save=lambda: {"rng": rng_state(rng)})
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

    res = _sample(
        program, bounds, "pct", factory, progress, stop=stop, budget_executions=budget_executions, resume=resume, save=lambda: {"rng": rng_state(rng), "longest": longest[0]}
    )
    res.params = {"seed": seed, "depth": depth}
    return res
