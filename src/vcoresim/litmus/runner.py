"""Run a litmus test under a memory model: is its ``exists`` clause reachable?

Each thread ``Pn`` becomes an actor whose operations are the engine's (Store,
Load, Barrier, SpinLock...), so the litmus test exercises exactly the
semantics the KVM model runs under.  The clause is checked as an invariant in
the final states (every thread done, every store buffer drained and, under
power, every write propagated): exhaustive DPOR covers every final state, so
"no violation, complete" means **Never** and a violation means **Sometimes**.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vcoresim.engine import ops as O
from vcoresim.engine.memory import MODELS, with_memory_model
from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.engine.world import DONE, Body, Invariant, Program, World
from vcoresim.litmus.parser import Instr, Litmus


@dataclass
class Outcome:
    model: str
    verdict: str  # Never | Sometimes | Unknown (budget ran out)
    executions: int
    states: int
    seconds: float
    witness: list[tuple[str, int]] | None  # the schedule (actor name, branch) reaching the clause


def _thread(ins: list[Instr], tid: int, regs: dict[tuple[int, str], int]) -> Body:
    def value(v: Any) -> Any:
        return regs.get((tid, v), 0) if isinstance(v, str) else v

    for i in ins:
        op = i.op
        if op == "store":
            yield O.Store(i.args[0], value(i.args[1]))
        elif op == "load":
            regs[(tid, i.args[1])] = yield O.Load(i.args[0])
        elif op == "release":
            yield from O.smp_store_release(i.args[0], value(i.args[1]))
        elif op == "acquire":
            regs[(tid, i.args[1])] = yield from O.smp_load_acquire(i.args[0])
        elif op == "barrier":
            yield O.Barrier(i.args[0])
        elif op == "lock":
            yield O.SpinLock(i.args[0])
        elif op == "unlock":
            yield O.SpinUnlock(i.args[0])


def _settled(ex: Execution, n: int) -> bool:
    if any(a.status != DONE for a in ex.actors[:n]):
        return False
    if any(getattr(ex, "buf", ())) or any(getattr(ex, "lag", ())):
        return False
    return True


def program(lit: Litmus) -> Program:
    """The litmus test as a program under SC (wrap with ``with_memory_model``)."""
    n = len(lit.threads)

    def build(w: World) -> None:
        for loc in lit.locations:
            w.loc(loc, lit.init.get(loc, 0))
        regs: dict[tuple[int, str], int] = {}
        w.litmus_regs = regs  # type: ignore[attr-defined]  # read by tests that collect final states
        for tid, ins in enumerate(lit.threads):
            w.spawn(f"P{tid}", _thread(ins, tid, regs))

        def check(ex: Execution) -> str | None:
            if _settled(ex, n) and lit.cond.holds(regs, ex.mem):
                shown = ", ".join(f"{t}:{r}={v}" for (t, r), v in sorted(regs.items()))
                return f"exists ({lit.cond.text}) holds: {shown}; " + ", ".join(f"{x}={ex.mem[x]}" for x in lit.locations)
            return None

        w.add_invariant(Invariant("exists", "the litmus test's exists clause", (), check))
        w.check_deadlock = False

    return Program(f"litmus/{lit.name}", build, {"litmus": lit.path})


def run(lit: Litmus, model: str, *, max_seconds: float | None = None, stop: Any = None) -> Outcome:
    """``stop`` (Ctrl-C) ends the search early, as a budget does: verdict ``Unknown``."""
    prog = with_memory_model(program(lit), model)
    res = exhaustive(prog, Bounds(max_steps=10_000, max_seconds=max_seconds), dpor=True, stop=stop)
    if res.violation is not None:
        verdict = "Sometimes"
    elif res.complete:
        verdict = "Never"
    else:
        verdict = "Unknown"
    names = [a.name for a in Execution(prog).actors]
    witness = [(names[i], alt) for i, alt in res.schedule] if res.schedule else None
    return Outcome(model, verdict, res.stats.executions, res.stats.states, res.stats.seconds, witness)


def expected_for(lit: Litmus, model: str) -> str | None:
    """What the file expects of ``model``: its "Expected:" entry, else "Result:" for power
    (the kernel's Result lines are the LKMM's; power is vcoresim's closest model)."""
    if model in lit.expected:
        return lit.expected[model]
    if model == "power" and lit.result is not None:
        return lit.result
    return None


def shipped() -> list[Path]:
    """The litmus files shipped with vcoresim (package data)."""
    root = resources.files("vcoresim.litmus") / "tests"
    return sorted((Path(str(e)) for e in root.iterdir() if e.name.endswith(".litmus")), key=lambda p: p.name)


__all__ = ["MODELS", "Outcome", "expected_for", "program", "run", "shipped"]
