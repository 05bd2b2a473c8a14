"""Lazy propagation under ``power`` against the unreduced model.

``WeakExecution.lazy`` propagates nothing to a thread that is not looking (a
napping thread whose wake-up is not enabled, a finished thread without
hardware); a full barrier of another thread catches such a thread up as part
of its own step (docs/exploration.md, "Weak memory").  Small generated
programs with napping hardware threads woken by IPIs, finished threads and
full barriers: DPOR and the state-cache search over the lazy model reach
exactly the terminal memories of an unreduced search over the eager model
(every write reaches every thread, in every order, as separate steps), and
the footprints meet the rules DPOR relies on, transition pair by pair."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

from test_memory_models import _independence_violations, _walk_states
from test_power_dpor import EveryOrder, raw_state
from vcoresim.engine import ops as O
from vcoresim.engine.memory import WeakExecution, with_memory_model
from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.engine.world import Body, HwThread, Invariant, Program, World

_KINDS = ("store", "store", "load", "smp_mb", "smp_wmb", "none")


def _instr(rng: random.Random, t: int, k: int) -> tuple[str, str, Any]:
    kind = rng.choice(_KINDS)
    loc = rng.choice(("x", "y"))
    return (kind, loc, t * 10 + k + 1)


def _run(ins: list[tuple[str, str, Any]], me: str) -> Body:
    for i, (kind, loc, val) in enumerate(ins):
        if kind == "store":
            yield O.Store(loc, val)
        elif kind == "load":
            v = yield O.Load(loc)
            yield O.Store(f"r.{me}.{i}", v)
        elif kind in ("smp_mb", "smp_wmb"):
            yield O.Barrier(kind)


def _generated(rng: random.Random) -> Program:
    """A writer (no hardware) that stores, maybe fences and may send one IPI;
    another thread without hardware; a hardware thread that stores, naps, and
    on waking loads x and y; sometimes a second napper nobody wakes."""
    first, second_loc = rng.choice((("x", "y"), ("y", "x")))
    writer = [("store", first, 1), (rng.choice(("none", "smp_mb", "smp_wmb")), "", 0), ("store", second_loc, 2)]
    other = [_instr(rng, 1, k) for k in range(rng.choice((0, 1)))]
    before = [_instr(rng, 2, k) for k in range(rng.choice((0, 1)))]
    ipi = rng.random() < 0.8
    second = rng.random() < 0.4

    def build(w: World) -> None:
        locs = ["x", "y", "mfrr.N", "mfrr.M"]
        for name, ins in (("W", writer), ("O", other), ("N", before)):
            locs += [f"r.{name}.{i}" for i in range(len(ins))]
        locs += ["r.N.wx", "r.N.wy", "r.M.wx"]
        for loc in locs:
            w.loc(loc, -1 if loc.startswith("r.") else 0)
        w.uncached = ("mfrr.",)  # the XICS: cache-inhibited, as in the KVM model

        def hw(me: str) -> HwThread:
            def woken(_kind: str) -> Body:
                vx = yield O.Load("x")
                yield O.Store(f"r.{me}.wx", vx)
                if me == "N":
                    vy = yield O.Load("y")
                    yield O.Store(f"r.{me}.wy", vy)

            def stale() -> Body:
                yield O.WaitUntil((f"mfrr.{me}",), lambda _v: False)

            def never(_k: str) -> Body:
                yield O.Note("no interrupt handler")

            wake = lambda m, me=me: "external" if m[f"mfrr.{me}"] else None  # noqa: E731
            return HwThread((f"mfrr.{me}",), lambda _m: None, wake, never, woken, stale)

        def napper(me: str, ins: list[tuple[str, str, Any]]) -> Body:
            yield from _run(ins, me)
            yield O.Nap()

        def source() -> Body:
            yield from _run(writer, "W")
            if ipi:
                yield O.SendIPI("mfrr.N", 1, "N")

        w.spawn("W", source())
        w.spawn("O", _run(other, "O"))
        w.spawn("N", napper("N", before), daemon=True, hw=hw("N"))
        if second:
            w.spawn("M", napper("M", []), daemon=True, hw=hw("M"))
        w.litmus_regs = {}  # type: ignore[attr-defined]  # (raw_state and the checks below read it)

    return with_memory_model(Program("lazy-generated", build), "power")


def _terminal(ex: Execution) -> Any:
    """The memory at a state with nothing enabled (no timeouts here), else None."""
    if ex.enabled():
        return None
    assert not any(ex.buf) and not any(ex.pend)  # type: ignore[attr-defined]
    return tuple(sorted((k, repr(v)) for k, v in ex.mem.items()))


def unreduced_terminals(prog: Program, max_states: int = 400_000) -> set[Any]:
    """Every schedule of the eager model (no lazy propagation: every write reaches
    every thread as separate steps, in every order), merged on raw states."""
    prog = dataclasses.replace(prog, execution=EveryOrder)
    seen: set[Any] = set()
    out: set[Any] = set()
    stack: list[list[tuple[int, int]]] = [[]]
    while stack:
        sched = stack.pop()
        ex = Execution(prog, history=True)
        for q, alt in sched:
            ex.step(q, alt)
        key = (raw_state(ex), tuple(sorted(ex.mem.items())))
        if key in seen:
            continue
        seen.add(key)
        assert len(seen) < max_states, "unreduced search too large for a test"
        en = ex.enabled()
        if not en:
            out.add(_terminal(ex))
            continue
        for q in en:
            for alt in range(ex.alternatives(q)):
                stack.append([*sched, (q, alt)])
    return out


def reduced_terminals(prog: Program, *, cache: bool, max_executions: int | None = None) -> tuple[set[Any], bool]:
    """Terminal memories the search reaches, and whether it completed."""
    found: set[Any] = set()

    def build(w: World) -> None:
        prog.build(w)

        def record(ex: Execution) -> str | None:
            t = _terminal(ex)
            if t is not None:
                found.add(t)
            return None

        w.invariants = [Invariant("record", "", (), record)]

    res = exhaustive(dataclasses.replace(prog, build=build), Bounds(max_steps=2_000, max_executions=max_executions), dpor=True, cache=cache)
    assert res.violation is None
    return found, res.complete


def _programs(seed: int, n: int) -> list[Program]:
    rng = random.Random(f"power-lazy-{seed}")
    return [_generated(rng) for _ in range(n)]


def test_lazy_model_propagates_nothing_to_a_thread_that_is_not_looking() -> None:
    """A napping thread with no wake-up pending and a finished thread have no
    propagation step; a full barrier of the writer catches the napper up."""
    def build(w: World) -> None:
        w.loc("x", 0)
        w.loc("mfrr.N", 0)
        w.uncached = ("mfrr.",)
        wake = lambda m: "external" if m["mfrr.N"] else None  # noqa: E731
        hw = HwThread(("mfrr.N",), lambda _m: None, wake, lambda _k: iter(()), lambda _k: iter(()), lambda: iter(()))

        def writer() -> Body:
            yield O.Store("x", 1)
            yield O.Barrier("smp_mb")
            yield O.Store("x", 2)

        def napper() -> Body:
            yield O.Nap()

        w.spawn("W", writer())
        w.spawn("N", napper(), daemon=True, hw=hw)

    prog = with_memory_model(Program("lazy-shape", build), "power")
    ex = Execution(prog)
    assert isinstance(ex, WeakExecution)
    names = [a.name for a in ex.actors]
    ex.step(names.index("N"))  # naps: no wake-up enabled
    ex.step(names.index("W"))  # x = 1 into the buffer
    ex.step(names.index("W~sb"))  # committed: lags behind at N
    assert ex.lag[1] == {"x": 0}
    assert not ex.is_enabled(ex.actors[names.index("N~prop")])  # N is not looking
    ex.step(names.index("W"))  # smp_mb: enabled without waiting for N, catches N up
    assert ex.lag[1] == {}
    ex.step(names.index("W"))
    ex.step(names.index("W~sb"))  # x = 2: W is done, N lags again
    assert ex.lag[1] == {"x": 1} and ex.enabled() == []  # nothing propagates to N


@pytest.mark.slow  # ~15 CPU s a seed (the eager unreduced search); the default run has the two tests around it
@pytest.mark.parametrize("seed", range(6))
def test_lazy_searches_reach_every_terminal_memory_of_the_eager_unreduced_search(seed: int) -> None:
    """The state-cache search must complete and match; stateless DPOR (which
    re-explores orders of propagation steps, eager or lazy, and does not finish
    some of these in a test's budget) must match where it completes, reach
    nothing the eager model cannot where it does not, and complete on some."""
    completed = 0
    for prog in _programs(seed, 4):
        full = unreduced_terminals(prog)
        assert full and None not in full
        cached, complete = reduced_terminals(prog, cache=True)
        assert complete and cached == full, "state cache"
        found, complete = reduced_terminals(prog, cache=False, max_executions=1_500)
        assert found <= full, "DPOR"
        if complete:
            completed += 1
            assert found == full, "DPOR"
    assert completed


@pytest.mark.parametrize("seed", [0, *(pytest.param(s, marks=pytest.mark.slow) for s in range(1, 4))])
def test_lazy_footprints_commute_and_keep_their_footprints(seed: int) -> None:
    """Rules 1-3 of docs/exploration.md ("Weak memory") on the states of random
    walks through programs with naps, IPIs and finished threads."""
    rng = random.Random(f"power-lazy-indep-{seed}")
    for prog in _programs(seed, 3):
        for sched in _walk_states(prog, rng, 3):
            bad = _independence_violations(prog, sched)
            assert not bad, bad[0]
