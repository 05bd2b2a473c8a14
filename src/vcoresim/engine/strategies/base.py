"""What every strategy shares: bounds, statistics, the result of an exploration."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from vcoresim.engine.runtime import Execution, Violation
from vcoresim.engine.world import Program


@dataclass
class Bounds:
    """Limits of one exploration.  ``max_steps`` and ``max_preemptions`` shape the
    space that is covered; ``max_executions`` and ``max_seconds`` are budgets:
    running out of them before the space is covered makes the result incomplete."""

    max_steps: int = 2_000
    max_preemptions: int | None = None
    max_executions: int | None = None
    max_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Stats:
    executions: int = 0
    states: int = 0
    steps: int = 0
    seconds: float = 0.0
    truncated: int = 0  # executions cut by max_steps
    pruned: int = 0  # executions cut by sleep sets, the state cache or the preemption bound
    cycles: int = 0  # of those, cut by the cache at a state on their own path (the model can loop there)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        return d

    def add(self, part: Stats) -> None:
        """Accumulate another run's counts (not its seconds)."""
        self.executions += part.executions
        self.states += part.states
        self.steps += part.steps
        self.truncated += part.truncated
        self.pruned += part.pruned
        self.cycles += part.cycles


@dataclass
class Exploration:
    """The outcome of one strategy run."""

    strategy: str
    violation: Violation | None
    schedule: list[tuple[int, int]] | None  # the violating execution's schedule
    stats: Stats
    complete: bool  # the bounded space was covered (exhaustive) / all executions ran (sampling)
    exhaustive: bool
    params: dict[str, Any] = field(default_factory=dict)
    #: When a budget or Ctrl-C ended the search: the state to continue it from (JSON).
    checkpoint: dict[str, Any] | None = None
    #: A work item's search: backtrack points its races added to the prefix's nodes.
    prefix_backtracks: list[tuple[int, list[int]]] = field(default_factory=list)


Progress = Callable[[Stats], None]


class Budget:
    """Tracks wall-clock and execution budgets."""

    def __init__(self, bounds: Bounds) -> None:
        self.bounds = bounds
        self.start = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def exhausted(self, stats: Stats, start_executions: int = 0) -> bool:
        """``start_executions``: executions a resumed search had already run (the budget counts from the resume)."""
        b = self.bounds
        if b.max_executions is not None and stats.executions - start_executions >= b.max_executions:
            return True
        return b.max_seconds is not None and self.elapsed() >= b.max_seconds


def run_schedule(program: Program, schedule: list[tuple[int, int]], *, record: bool = False, strict: bool = True) -> Execution:
    """Re-execute ``schedule``.  ``strict`` (a replay): every entry must be an
    enabled actor and a branch its transition has (an integer from 0), and no
    entry may follow the violation; else ``ReplayDivergence`` says which step.
    Otherwise (the shrinker) entries that do not apply are skipped and the run
    stops at the violation."""
    ex = Execution(program, record=record)
    for n, (idx, alt) in enumerate(schedule):
        if ex.violation is not None:
            if strict:
                raise ReplayDivergence(n, _actor_name(ex, idx), f"comes after the violation at step {ex.violation.step} (a schedule ends there)")
            break
        if not _enabled_here(ex, idx):
            if strict:
                raise ReplayDivergence(n, _actor_name(ex, idx))
            continue
        if type(alt) is not int or not 0 <= alt < ex.alternatives(idx):
            if strict:
                n_alts = ex.alternatives(idx)
                raise ReplayDivergence(n, _actor_name(ex, idx), f"has no branch {alt!r:.20} there (its transition has {n_alts}: 0..{n_alts - 1})")
            continue
        ex.step(idx, alt)
    if ex.violation is None and not ex.enabled():
        ex.finish(bounded=False)
    return ex


def _actor_name(ex: Execution, idx: int) -> str:
    return ex.actors[idx].name if isinstance(idx, int) and 0 <= idx < len(ex.actors) else str(idx)


def _enabled_here(ex: Execution, idx: int) -> bool:
    """``idx in ex.enabled()``, without computing every actor's enabledness (replays
    and the shrinker's thousands of candidates spent a third of their time there)."""
    if not 0 <= idx < len(ex.actors):
        return False
    if ex.is_enabled(ex.actors[idx]):
        return True
    return idx in ex.timeout_candidates() and not any(ex.is_enabled(b) for b in ex.actors)


class ReplayDivergence(Exception):
    def __init__(self, step: int, actor: str, why: str | None = None) -> None:
        what = why or "has no enabled transition there"
        super().__init__(f"step {step}: actor {actor} {what}; the trace does not match this model")
        self.step = step
        self.actor = actor
