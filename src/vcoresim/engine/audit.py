"""Check the assumptions the state cache rests on, on a model's own states.

The cache identifies states by fingerprint (engine/fingerprint.py), which is
sound if model code is deterministic given the values sent into it and if
the fingerprint leaves out nothing that decides the future.  Neither can be
proved for arbitrary Python, so ``audit`` tests both on random executions:

* **determinism**: the same schedule run twice gives the same fingerprints
  and the same frame histories, step by step;
* **no merge of different states**: whenever two different schedules reach
  the same fingerprint, the same random continuation is run from both, in
  lockstep: at every step the two executions must agree on the enabled
  actors, their pending operations and footprints, the violation, and the
  fingerprint.  (Equal futures are what equal fingerprints promise.)

It is a test, not a proof: it finds a fingerprint that forgets something
only where the walks go.  ``tests/test_reductions.py`` runs it on every
built-in scenario.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from vcoresim.engine.fingerprint import Encoder, _Opaque
from vcoresim.engine.runtime import Execution
from vcoresim.engine.world import DONE, Program


@dataclass
class AuditReport:
    states: int = 0
    merges_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _pick(ex: Execution, rng: random.Random) -> tuple[int, int] | None:
    en = ex.enabled()
    if not en or ex.violation is not None:
        return None
    q = rng.choice(en)
    return q, rng.randrange(ex.alternatives(q))


def _signature(ex: Execution) -> Any:
    """What the next step can see: enabled actors, alternatives, pending operations and footprints."""
    en = ex.enabled()
    acts = []
    for a in ex.actors:
        op = a.stack[-1].op if a.stack else None
        try:
            pending = Encoder(ex).op(op)  # saved-frame ids renamed, as the fingerprint does
        except _Opaque:
            pending = op.describe() if op is not None else None
        acts.append((a.status, a.msr, pending if a.status != DONE else None, ex.footprint(a.idx, pending=True) if a.status != DONE else None))
    return (tuple(en), tuple(ex.alternatives(q) for q in en), tuple(acts), ex.violation.name if ex.violation else None)


def _run(program: Program, schedule: list[tuple[int, int]]) -> Execution:
    ex = Execution(program, history=True)
    for q, alt in schedule:
        ex.step(q, alt)
    return ex


def audit(program: Program, *, walks: int = 20, max_steps: int = 300, continuations: int = 3, seed: int = 0) -> AuditReport:
    """Random walks over ``program``; see the module docstring."""
    rng = random.Random(seed)
    report = AuditReport()
    first: dict[int, list[tuple[int, int]]] = {}
    for _ in range(walks):
        ex = Execution(program, history=True)
        twin = Execution(program, history=True)
        sched: list[tuple[int, int]] = []
        for _ in range(max_steps):
            t = _pick(ex, rng)
            if t is None:
                break
            ex.step(*t)
            twin.step(*t)
            sched.append(t)
            fp = ex.fingerprint()
            report.states += 1
            if fp != twin.fingerprint() or [[fr.hist for fr in a.stack] for a in ex.actors] != [[fr.hist for fr in a.stack] for a in twin.actors]:
                report.problems.append(f"not deterministic: the same schedule gave different fingerprints or histories at step {len(sched)}: {sched}")
                return report
            other = first.get(fp)
            if other is None:
                first[fp] = list(sched)
            elif other != sched and report.merges_checked < walks * 5:
                report.merges_checked += 1
                _lockstep(program, other, list(sched), rng, continuations, max_steps, report)
                if report.problems:
                    return report
    return report


def _lockstep(program: Program, a: list[tuple[int, int]], b: list[tuple[int, int]], rng: random.Random, continuations: int, max_steps: int, report: AuditReport) -> None:
    for _ in range(continuations):
        ea, eb = _run(program, a), _run(program, b)
        for k in range(max_steps):
            sa, sb = _signature(ea), _signature(eb)
            if sa != sb or ea.fingerprint() != eb.fingerprint():
                report.problems.append(f"equal fingerprints, different futures: after {a} and {b}, {k} steps of the same continuation differ: {sa} vs {sb}")
                return
            t = _pick(ea, rng)
            if t is None:
                break
            ea.step(*t)
            eb.step(*t)
