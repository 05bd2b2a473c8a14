"""Barrier mutation: which barrier of the model does each invariant need?

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

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcoresim.check.driver import CheckResult, check
from vcoresim.engine.memory import WeakExecution, with_memory_model
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
) -> MutationReport:
    """Check ``program`` (already under its memory model) as is, then once per barrier
    site removed; ``stop`` (Ctrl-C) leaves the remaining sites unchecked (``not_run``).
    Traces are named by their content in ``trace_dir``."""
    model = program.memory_model
    found = sites if sites is not None else discover_sites(program, seed=seed, max_steps=bounds.max_steps)
    baseline = check(program, strategy=strategy, bounds=bounds, seed=seed, trace_dir=trace_dir, stop=stop)
    mutants = []
    left: list[Site] = []
    for site in found:
        if stop is not None and stop():
            left.append(site)
            continue
        mutant = with_memory_model(program, model, frozenset({site.key}))
        res = check(mutant, strategy=strategy, bounds=bounds, seed=seed, trace_dir=trace_dir, stop=stop)
        mutants.append(Mutant(site, res))
    return MutationReport(program.name, model, baseline, mutants, DISCOVERY_EXECUTIONS if sites is None else 0, left)
