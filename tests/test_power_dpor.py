"""DPOR and the state cache against an unreduced search under ``power``.

The unreduced search (``unreduced_finals``) takes every enabled transition and
every branch at every state, with no sleep sets, no race analysis and no
footprints; it merges two paths only when they reach the same *raw* state
(``raw_state``: every field of the weak execution spelled out, not the
fingerprint the state cache uses).  DPOR (stateless, sleep sets) and the
state-cache search must reach exactly its final states, on every shipped
litmus test and on generated small ones.  The large shipped tests run under
``-m slow``; the default run covers the small ones and the generated ones."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from vcoresim.engine.fingerprint import state_fingerprint
from vcoresim.engine.memory import WeakExecution, with_memory_model
from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.engine.world import DONE, Invariant, Program, World
from vcoresim.litmus.parser import Instr, Litmus, parse
from vcoresim.litmus.runner import final_registers, shipped
from vcoresim.litmus.runner import program as litmus_program

# Shipped tests whose three searches take well under a second together (the
# default run); the others run under -m slow (IRIW+mbs, Z6.1 and 3.LB for minutes).
SMALL = {"LB+acquire", "LB+ctrl+data", "LB+mbs", "MP", "MP+release+acquire", "MP+wmb", "MP+wmb+addr", "MP+wmb+ctrl", "R+mbs", "S+wmb+acquire", "SB", "SB+locks", "SB+mbs"}


def _final(ex: Execution, n: int) -> Any:
    """The final state (memory, registers) if every thread is done and the memory
    system has settled, else None."""
    if any(a.status != DONE for a in ex.actors[:n]) or (isinstance(ex, WeakExecution) and not ex.settled()):
        return None
    return (tuple(sorted(ex.mem.items())), tuple(sorted(final_registers(ex, ex.world.litmus_regs).items())))  # type: ignore[attr-defined]


def _snap(ex: WeakExecution, s: tuple[int, dict[str, int]] | None) -> Any:
    """A view snapshot as the coherence index it names per location (clocks are
    only compared with commit times, so two snapshots naming the same indices are
    the same)."""
    return None if s is None else tuple((x, ex._need(s, x)) for x in sorted(ex.co))


def raw_state(ex: Execution) -> Any:
    """Everything that decides the future of a litmus execution, field by field:
    the generic state (stacks, locals, memory), the registers, and under a weak
    model every buffer, coherence order, per-write requirement, propagation lag,
    floor, barrier view, pending load and recorded satisfaction."""
    regs = tuple(sorted((k, repr(v)) for k, v in ex.world.litmus_regs.items()))  # type: ignore[attr-defined]
    base = (state_fingerprint(ex), regs, tuple(a.status for a in ex.actors))
    if not isinstance(ex, WeakExecution) or not ex.weak:
        return base
    bufs = tuple(tuple((e[1], repr(e[2]), e[3], repr(e[4:])) for e in b) for b in ex.buf)
    co = tuple((x, tuple(map(repr, v)), tuple(_snap(ex, r) for r in ex.req[x])) for x, v in sorted(ex.co.items()))
    lag = tuple(tuple(sorted(d.items())) for d in ex.lag)
    floor = tuple(tuple(sorted(d.items())) for d in ex.floor)
    fb = tuple(_snap(ex, s) for s in ex.fb)
    bview = tuple(_snap(ex, s) for s in ex.bview)
    pend = tuple(tuple(sorted(d.items())) for d in ex.pend)
    lval = tuple(tuple(sorted((t, repr(v)) for t, v in d.items())) for d in ex.lval)
    sat = tuple(tuple(sorted((t, _snap(ex, s)) for t, s in d.items())) for d in ex.sat)
    return (base, bufs, co, lag, floor, fb, bview, pend, lval, sat)


class EveryOrder(WeakExecution):
    """The weak execution without the canonical order of propagation to finished
    threads and lazy propagation (``WeakExecution.lazy``): every write reaches
    every thread, in every order."""

    lazy = False


def unreduced_finals(prog: Program, n: int, max_states: int = 2_000_000) -> set[Any]:
    """Final states of every schedule (every actor, every branch, everywhere; writes
    reach finished threads in every order), paths merged only on identical raw states."""
    if prog.execution is WeakExecution:
        prog = dataclasses.replace(prog, execution=EveryOrder)
    seen: set[Any] = set()
    finals: set[Any] = set()
    stack: list[list[tuple[int, int]]] = [[]]
    while stack:
        sched = stack.pop()
        ex = Execution(prog, history=True)  # the history: what each actor observed
        for q, alt in sched:
            ex.step(q, alt)
        assert ex.violation is None
        key = raw_state(ex)
        if key in seen:
            continue
        seen.add(key)
        assert len(seen) < max_states, "unreduced search too large for a test"
        en = ex.enabled()
        if not en:
            f = _final(ex, n)
            assert f is not None, f"stuck: {sched}"
            finals.add(f)
            continue
        for q in en:
            for alt in range(ex.alternatives(q)):
                stack.append([*sched, (q, alt)])
    return finals


def _program(lit: Litmus, model: str, finals: set[Any]) -> Program:
    """The test's program with its condition replaced by a recorder of final states."""
    base = litmus_program(lit)
    n = len(lit.threads)

    def build(w: World) -> None:
        base.build(w)

        def record(ex: Execution) -> str | None:
            f = _final(ex, n)
            if f is not None:
                finals.add(f)
            return None

        w.invariants = [Invariant("record", "", (), record)]

    return with_memory_model(Program(base.name, build, base.config), model)


def reduced_finals(lit: Litmus, model: str, *, dpor: bool, cache: bool) -> set[Any]:
    finals: set[Any] = set()
    prog = _program(lit, model, finals)
    res = exhaustive(prog, Bounds(max_steps=10_000), dpor=dpor, cache=cache)
    assert res.complete and res.violation is None
    return finals


def _check(lit: Litmus, model: str = "power") -> None:
    full = unreduced_finals(_program(lit, model, set()), len(lit.threads))
    assert full
    assert reduced_finals(lit, model, dpor=True, cache=False) == full, f"{lit.name}: DPOR"
    assert reduced_finals(lit, model, dpor=True, cache=True) == full, f"{lit.name}: state cache"


_SHIPPED = {p.stem: p for p in shipped()}


@pytest.mark.parametrize("name", [n if n in SMALL else pytest.param(n, marks=pytest.mark.slow) for n in sorted(_SHIPPED)])
def test_reduced_searches_reach_every_final_state_of_the_unreduced_search_on_shipped_tests(name: str) -> None:
    _check(parse(_SHIPPED[name].read_text()))


def _generated(rng: random.Random, sizes: tuple[int, ...] = (2,)) -> Litmus:
    """A small random test: 2 (or 3) threads of 2 or 3 accesses, barriers,
    release/acquire, late loads, on two locations."""
    kinds = ["store", "store", "load", "load", "smp_mb", "smp_wmb", "smp_rmb", "release", "acquire"]
    threads = []
    for t in range(rng.choice(sizes)):
        ins = []
        for k in range(rng.choice((2, 3))):
            kind = rng.choice(kinds)
            loc = rng.choice(("x", "y"))
            if kind in ("store", "release"):
                ins.append(Instr(kind, (loc, t * 10 + k + 1), 0))
            elif kind in ("load", "acquire"):
                ins.append(Instr(kind, (loc, f"r{k}"), 0))
            else:
                ins.append(Instr("barrier", (kind,), 0))
        threads.append(ins)
    lit = parse("C generated\n{}\nP0(int *x) { WRITE_ONCE(*x, 1); }\nexists (x=1)\n")
    lit.threads = threads
    return lit


@pytest.mark.parametrize("seed", [0, *(pytest.param(s, marks=pytest.mark.slow) for s in range(1, 10))])
def test_reduced_searches_reach_every_final_state_of_the_unreduced_search_on_generated_tests(seed: int) -> None:
    rng = random.Random(f"power-dpor-{seed}")
    for _ in range(8):
        _check(_generated(rng))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_reduced_searches_on_generated_three_thread_tests(seed: int) -> None:
    rng = random.Random(f"power-dpor-3-{seed}")
    for _ in range(10):
        _check(_generated(rng, (2, 3)))
