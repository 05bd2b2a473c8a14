"""The frontier search (``--workers``, ``--ray``): against an independent
brute-force enumeration, with many simulated workers finishing their batches
in random orders and tiny batches (so the visited set lags and work is handed
back all the time), and against the serial search on the built-in scenarios.

The oracle here is stronger than the final-state one of test_strategies: a
stateful search must reach every reachable *state* (invariants are checked
in each), so every memory valuation the brute force reaches must be reached,
within the step and preemption bounds when they bind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_strategies import LOCS, SOUNDNESS, Item, _flatten, _frozen, make_program, programs

from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies import frontier as frontier_mod
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.engine.strategies.frontier import Item as WorkItem
from vcoresim.engine.strategies.frontier import Visited, frontier_inline, make_entry
from vcoresim.examples import example_program

Mem = tuple[tuple[str, Any], ...]


def brute_force(spec: list[tuple[Item, ...]], max_steps: int | None = None, max_preemptions: int | None = None) -> tuple[set[Mem], set[Mem]]:
    """Every interleaving, by an interpreter of its own: (every memory valuation
    reached within the bounds, every final one).  A step is one instruction (as
    the engine's steps are: each is a visible operation); a preemption is a
    switch away from an actor that could have continued."""
    code = [[*_flatten(items), ("final",)] for items in spec]
    init = {loc: 0 for loc in (*LOCS, "L0", "L1")} | {f"r{i}": -1 for i in range(len(spec))}
    reached: set[Mem] = set()
    finals: set[Mem] = set()
    seen: set[Any] = set()

    def enabled(mem: dict[str, Any], pcs: tuple[int, ...]) -> list[int]:
        out = []
        for i, pc in enumerate(pcs):
            if pc < len(code[i]) and not (code[i][pc][0] == "lock" and mem[code[i][pc][1]]):
                out.append(i)
        return out

    def rec(mem: dict[str, Any], pcs: tuple[int, ...], accs: tuple[int, ...], prev: int, pre: int, depth: int) -> None:
        key = (_frozen(mem), pcs, accs, prev if max_preemptions is not None else None, pre, depth if max_steps is not None else None)
        if key in seen:
            return
        seen.add(key)
        reached.add(_frozen(mem))
        en = enabled(mem, pcs)
        if not en:
            finals.add(_frozen(mem))
            return
        if max_steps is not None and depth >= max_steps:
            return
        for i in en:
            p = pre + (1 if prev >= 0 and i != prev and prev in en else 0)
            if max_preemptions is not None and p > max_preemptions:
                continue
            ins = code[i][pcs[i]]
            kind = ins[0]
            m, acc = dict(mem), accs[i]
            if kind == "lock":
                m[ins[1]] = i + 1
            elif kind == "unlock":
                m[ins[1]] = 0
            elif kind == "load":
                acc = acc * 4 + m[ins[1]] + 1
            elif kind == "store":
                m[ins[1]] = acc + ins[2]
            elif kind == "rmw":
                old = m[ins[1]]
                m[ins[1]] = old + ins[2]
                acc = acc * 4 + old + 1
            else:
                m[f"r{i}"] = acc
            rec(m, pcs[:i] + (pcs[i] + 1,) + pcs[i + 1 :], accs[:i] + (acc,) + accs[i + 1 :], i, p, depth + 1)

    rec(init, (0,) * len(spec), (0,) * len(spec), -1, 0, 0)
    return reached, finals


@contextmanager
def recording() -> Iterator[tuple[set[Mem], set[Mem]]]:
    """Memory after every step the search runs (replays excluded) and of every final state."""
    reached: set[Mem] = set()
    finals: set[Mem] = set()

    class Recording(Execution):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, **k)
            reached.add(_frozen(self.mem))

        def step(self, idx: int, alt: int = 0) -> None:
            super().step(idx, alt)
            reached.add(_frozen(self.mem))

        def finish(self, bounded: bool) -> None:
            super().finish(bounded)
            if not bounded:
                finals.add(_frozen(self.mem))

    with mock.patch.object(frontier_mod, "Execution", Recording):
        yield reached, finals


def _search(spec: list[tuple[Item, ...]], bounds: Bounds, workers: int, seed: int, batch: int, split: int) -> tuple[set[Mem], set[Mem], Any]:
    prog = make_program(spec)
    with recording() as (reached, finals):
        res = frontier_inline(prog, bounds, workers=workers, seed=seed, batch_steps=batch, split_steps=split)
    assert res.violation is None and res.complete
    return reached, finals, res


SPLITS = st.tuples(st.integers(1, 4), st.integers(0, 10_000), st.integers(1, 40), st.integers(1, 8))


@SOUNDNESS
@given(programs(), SPLITS)
def test_frontier_reaches_every_state(spec: list[tuple[Item, ...]], split: tuple[int, int, int, int]) -> None:
    reached, finals, _ = _search(spec, Bounds(max_steps=100), *split)
    want_reached, want_finals = brute_force(spec)
    assert finals == want_finals
    assert reached == want_reached


@SOUNDNESS
@given(programs(), st.integers(0, 2), SPLITS)
def test_frontier_preemption_bound_is_exact(spec: list[tuple[Item, ...]], k: int, split: tuple[int, int, int, int]) -> None:
    reached, finals, _ = _search(spec, Bounds(max_steps=100, max_preemptions=k), *split)
    want_reached, want_finals = brute_force(spec, max_preemptions=k)
    assert finals == want_finals
    assert reached == want_reached


@SOUNDNESS
@given(programs(), st.integers(1, 8), SPLITS)
def test_frontier_step_bound(spec: list[tuple[Item, ...]], max_steps: int, split: tuple[int, int, int, int]) -> None:
    """Where the step bound binds, pruning must respect depth (the search restarts depth-aware)."""
    reached, finals, _ = _search(spec, Bounds(max_steps=max_steps), *split)
    want_reached, want_finals = brute_force(spec, max_steps=max_steps)
    assert finals == want_finals
    assert reached == want_reached


def test_frontier_really_splits_and_prunes() -> None:
    """The oracle tests mean something only if batches hand work back and the
    visited set and sleep sets prune."""
    spec: list[tuple[Item, ...]] = [(("store", "x", 1), ("load", "y")), (("store", "y", 1), ("load", "x")), (("rmw", "z", 1),)]
    _, _, res = _search(spec, Bounds(max_steps=100), 3, 7, 2, 1)
    assert res.params["work_items"] > 10 and res.stats.pruned > 0
    single = frontier_inline(make_program(spec), Bounds(max_steps=100))
    assert single.params["work_items"] == 1
    # Orders that are not equivalent but meet in one state (both store 1): the
    # visited set prunes what sleep sets alone re-explore.
    meet: list[tuple[Item, ...]] = [(("store", "x", 1), ("store", "y", 1))] * 2
    cached = frontier_inline(make_program(meet), Bounds(max_steps=100))
    tree = exhaustive(make_program(meet), Bounds(max_steps=100), dpor=False)
    assert cached.stats.states < tree.stats.states and cached.stats.steps < tree.stats.steps


def test_step_bound_restarts_depth_aware() -> None:
    spec: list[tuple[Item, ...]] = [(("store", "x", 1), ("load", "y"), ("store", "x", 2)), (("store", "y", 1), ("load", "x"))]
    _, _, res = _search(spec, Bounds(max_steps=3), 2, 1, 3, 1)
    assert res.stats.truncated > 0 and res.complete


def test_visited_entries_cover_by_every_dimension() -> None:
    v = Visited(depth_aware=True, bounded=False)
    assert v.add(1, make_entry(5, 0b01))
    assert v.covers(1, make_entry(6, 0b11)) and not v.covers(1, make_entry(4, 0b01)) and not v.covers(1, make_entry(6, 0b10))
    assert v.add(1, make_entry(4, 0b10))  # neither covers the other: both kept
    assert len(v.entries()) == 2
    assert v.add(1, make_entry(3, 0))  # covers both: replaces them
    assert v.entries() == [(1, make_entry(3, 0))]
    b = Visited(depth_aware=False, bounded=True)
    assert b.add(2, make_entry(9, 1)) and b.covers(2, make_entry(1, 2)) and not b.covers(2, make_entry(9, 0))


def test_item_json_round_trip() -> None:
    it = WorkItem(frontier_mod.encode([(0, 0), (2, 1)]), ((1, 0, (("x",), ())),), ((0, 0, ((), ("y",))),), ((2, 0),), 1, 2)
    assert WorkItem.from_json(it.to_json()) == it
    assert it.schedule() == [(0, 0), (2, 1)] and it.depth == 2


# ------------------------------------------------------- known answers
@pytest.mark.parametrize("name", ["lost-update", "peterson-broken", "lock-order", "peterson", "store-buffering"])
@pytest.mark.parametrize("workers", [1, 3])
def test_frontier_same_verdict_as_serial(name: str, workers: int) -> None:
    prog = example_program(name)
    serial = exhaustive(prog, Bounds())
    par = frontier_inline(prog, Bounds(), workers=workers, seed=workers, batch_steps=5, split_steps=2)
    assert (serial.violation is None) == (par.violation is None) and serial.complete == par.complete
    if serial.violation is not None:
        assert par.violation is not None and par.violation.name == serial.violation.name
        assert par.schedule is not None
        from vcoresim.engine.strategies.base import run_schedule

        ex = run_schedule(prog, par.schedule)
        assert ex.violation is not None and ex.violation.name == serial.violation.name


def test_frontier_budget_and_resume() -> None:
    """An execution budget ends the search with a checkpoint; resuming it finishes
    the job with the same verdict and no more than the states of one run."""
    prog = example_program("store-buffering")
    whole = frontier_inline(prog, Bounds())
    part = frontier_inline(prog, Bounds(max_executions=5), batch_steps=3, split_steps=3)
    assert not part.complete and part.checkpoint is not None and part.stats.executions == 5
    done = frontier_inline(prog, Bounds(), resume=part.checkpoint)
    assert done.complete and done.violation is None
    assert done.stats.states == whole.stats.states


# ------------------------------------------------ programs with loops
# Today's fingerprint (observation histories) seldom meets a state twice at two
# depths or with two sleep sets, so the tests above barely exercise pruning by
# depth and by sleep set.  These programs jump (spin loops, retries), so their
# states recur at many depths; the search runs with a key that merges them: the
# memory and each actor's loop position ``k``, which is exactly their state
# (every other local is dead at a yield).  The brute force interprets them on
# its own.
Op = tuple[Any, ...]
LOOP_LOCS = ("x", "y")


@st.composite
def loop_programs(draw: st.DrawFn) -> list[tuple[Op, ...]]:
    n_actors = draw(st.integers(2, 3))
    out = []
    for _ in range(n_actors):
        n = draw(st.integers(1, 3))
        loc = st.sampled_from(LOOP_LOCS)
        op = st.one_of(
            st.tuples(st.just("store"), loc, st.integers(0, 1)),
            st.tuples(st.just("inc"), loc),
            st.tuples(st.sampled_from(["jz", "jnz"]), loc, st.integers(0, n - 1)),
        )
        out.append(tuple(draw(st.lists(op, min_size=n, max_size=n))))
    return out


def make_loop_program(spec: list[tuple[Op, ...]]) -> Any:
    from vcoresim.engine.ops import RMW, Load, Store
    from vcoresim.engine.world import Body, Program, World

    def body(i: int, code: tuple[Op, ...]) -> Body:
        k = 0
        while k < len(code):
            ins = code[k]
            if ins[0] == "store":
                yield Store(ins[1], ins[2])
                k += 1
            elif ins[0] == "inc":
                yield RMW(ins[1], lambda v: (v + 1) % 3)
                k += 1
            else:
                v = yield Load(ins[1])
                k = ins[2] if (v == 0) == (ins[0] == "jz") else k + 1
        yield Store(f"r{i}", 1)

    def build(w: World) -> None:
        for loc in LOOP_LOCS:
            w.loc(loc, 0)
        for i, code in enumerate(spec):
            w.loc(f"r{i}", 0)
            w.spawn(f"P{i}", body(i, code))
        w.check_deadlock = False

    return Program("loops", build)


def loop_key(ex: Any, prev: int | None) -> int:
    """The exact state of a loop program: memory and each actor's position."""
    parts = []
    for a in ex.actors:
        g = a.stack[0].gen if a.stack else None
        frame = g.gi_frame if g is not None else None
        parts.append(None if frame is None else (frame.f_lasti, frame.f_locals["k"]))
    return hash((_frozen(ex.mem), tuple(parts), prev))


def brute_force_loops(spec: list[tuple[Op, ...]], max_steps: int, max_preemptions: int | None) -> tuple[set[Mem], set[Mem]]:
    """Breadth first over (memory, positions, last actor, preemptions): each is
    met first at its least depth, so what lies within the step bound is exact."""
    init = {loc: 0 for loc in LOOP_LOCS} | {f"r{i}": 0 for i in range(len(spec))}
    reached: set[Mem] = set()
    finals: set[Mem] = set()
    start = (_frozen(init), (0,) * len(spec), -1, 0)
    seen = {start}
    level = [start]
    for depth in range(max_steps + 1):
        nxt = []
        for mem_t, ks, prev, pre in level:
            reached.add(mem_t)
            en = [i for i, k in enumerate(ks) if k <= len(spec[i])]
            if not en:
                finals.add(mem_t)
                continue
            if depth == max_steps:
                continue
            for i in en:
                p = pre + (1 if prev >= 0 and i != prev and prev in en else 0)
                if max_preemptions is not None and p > max_preemptions:
                    continue
                m, k = dict(mem_t), ks[i]
                if k == len(spec[i]):
                    m[f"r{i}"] = 1
                    k += 1
                else:
                    ins = spec[i][k]
                    if ins[0] == "store":
                        m[ins[1]] = ins[2]
                        k += 1
                    elif ins[0] == "inc":
                        m[ins[1]] = (m[ins[1]] + 1) % 3
                        k += 1
                    else:
                        k = ins[2] if (m[ins[1]] == 0) == (ins[0] == "jz") else k + 1
                node = (_frozen(m), ks[:i] + (k,) + ks[i + 1 :], i if max_preemptions is not None else -2, p if max_preemptions is not None else 0)
                if node not in seen:
                    seen.add(node)
                    nxt.append(node)
        level = nxt
    return reached, finals


def _loop_search(spec: list[tuple[Op, ...]], bounds: Bounds, split: tuple[int, int, int, int]) -> tuple[set[Mem], set[Mem], Any]:
    prog = make_loop_program(spec)
    with recording() as (reached, finals), mock.patch.object(frontier_mod, "state_key", loop_key):
        res = frontier_inline(prog, bounds, workers=split[0], seed=split[1], batch_steps=split[2], split_steps=split[3])
    assert res.violation is None and res.complete
    return reached, finals, res


@SOUNDNESS
@given(loop_programs(), st.sampled_from([None, 3, 6, 10]), SPLITS)
def test_frontier_on_loops(spec: list[tuple[Op, ...]], max_steps: int | None, split: tuple[int, int, int, int]) -> None:
    reached, finals, _ = _loop_search(spec, Bounds(max_steps=max_steps or 200), split)
    assert (reached, finals) == brute_force_loops(spec, max_steps or 200, None)


@SOUNDNESS
@given(loop_programs(), st.integers(0, 2), st.sampled_from([None, 6]), SPLITS)
def test_frontier_on_loops_preemption_bound(spec: list[tuple[Op, ...]], k: int, max_steps: int | None, split: tuple[int, int, int, int]) -> None:
    reached, finals, _ = _loop_search(spec, Bounds(max_steps=max_steps or 200, max_preemptions=k), split)
    assert (reached, finals) == brute_force_loops(spec, max_steps or 200, k)


def test_loop_key_merges_states_at_different_depths() -> None:
    """The loop family does what it is for: a spin loop revisits a state, deeper."""
    spec: list[tuple[Op, ...]] = [(("jz", "x", 0),), (("store", "x", 1),)]
    _, _, res = _loop_search(spec, Bounds(max_steps=200), (1, 0, 1000, 1000))
    assert res.stats.pruned > 0 and res.stats.truncated == 0
    longer: list[tuple[Op, ...]] = [(("jz", "x", 0),), (("inc", "y"), ("inc", "y"), ("store", "x", 1))]
    _, _, cut = _loop_search(longer, Bounds(max_steps=3), (1, 0, 1000, 1000))
    assert cut.stats.truncated > 0 and cut.complete


def test_visited_entry_keeps_the_sleep_set() -> None:
    """Found by hypothesis with a visited set that ignored sleep sets: a state
    explored first with x's increment asleep was pruned when met again with
    nothing asleep, so a state only that increment leads to was never reached."""
    spec: list[tuple[Op, ...]] = [(("inc", "x"), ("inc", "y")), (("store", "x", 0),) * 3, (("inc", "x"), ("store", "x", 0))]
    reached, finals, _ = _loop_search(spec, Bounds(max_steps=200), (4, 3, 2, 1))
    assert (reached, finals) == brute_force_loops(spec, 200, None)


def test_binding_step_bound_prunes_by_depth() -> None:
    """Found by hypothesis without the depth-aware restart: a state first met
    deep (its subtree cut by the bound) pruned a shallower visit."""
    spec: list[tuple[Op, ...]] = [(("inc", "y"), ("inc", "x")), (("store", "y", 0), ("store", "x", 0)), (("inc", "y"), ("store", "x", 0), ("jz", "x", 0))]
    reached, finals, res = _loop_search(spec, Bounds(max_steps=6), (1, 0, 10_000, 10_000))
    assert res.stats.truncated > 0
    assert (reached, finals) == brute_force_loops(spec, 6, None)
