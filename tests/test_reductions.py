"""Reductions are safe: on small random programs each reduced search reaches
every final state the brute-force enumeration of all interleavings reaches
(the oracle and program generator of test_strategies)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_strategies import LOCS, SOUNDNESS, Item, brute_force_finals, make_program, programs
from vcoresim.engine.ops import RMW, IrqDisable, IrqEnable, Load, Nap, ResumeFrame, SaveFrame, SendIPI, SpinLock, SpinUnlock, Store, WaitUntil
from vcoresim.engine.runtime import Execution
from vcoresim.engine.world import Body, Program, World
from vcoresim.engine.strategies import dpor as dpor_mod
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.dpor import HappensBefore, exhaustive
from vcoresim.examples import example_program


def _finals_with(program, **kw):  # type: ignore[no-untyped-def]
    from test_strategies import recording_finals

    with recording_finals() as finals:
        res = exhaustive(program, Bounds(max_steps=100), **kw)
    assert res.violation is None and res.complete
    return finals


@SOUNDNESS
@given(programs())
def test_source_set_dpor_reaches_every_final_state(spec: list[tuple[Item, ...]]) -> None:
    prog = make_program(spec)
    assert _finals_with(prog, dpor=True, source_sets=True) == brute_force_finals(spec)


def test_source_sets_race_behind_a_sleeping_actor() -> None:
    spec: list[tuple[Item, ...]] = [(("store", "x", 1),), (("load", "y"), ("load", "x")), (("load", "x"),)]
    assert _finals_with(make_program(spec), dpor=True, source_sets=True) == brute_force_finals(spec)


def test_source_sets_explore_no_more_than_fg() -> None:
    for name in ("store-buffering", "peterson", "lost-update"):
        fg = exhaustive(example_program(name), Bounds(), dpor=True)
        src = exhaustive(example_program(name), Bounds(), dpor=True, source_sets=True)
        assert (fg.violation is None) == (src.violation is None)
        if fg.complete and src.complete:
            assert src.stats.executions <= fg.stats.executions


def test_happens_before_truncate_equals_rebuild() -> None:
    """Backtracking truncates the vector clocks instead of replaying them: after
    any sequence of pushes and truncations the structure equals a fresh rebuild."""
    rng = random.Random(5)
    locs = ["a", "b", "c", dpor_mod.GLOBAL]
    for _ in range(200):
        hb = HappensBefore(3)
        path: list[tuple[int, tuple[tuple[str, ...], tuple[str, ...]]]] = []
        for _ in range(30):
            if path and rng.random() < 0.3:
                n = rng.randrange(len(path))
                hb.truncate(n)
                del path[n:]
                continue
            reads = tuple(rng.sample(locs[:3], rng.randrange(3)))
            writes = tuple(rng.sample(locs if rng.random() < 0.1 else locs[:3], rng.randrange(2)))
            proc = rng.randrange(3)
            hb.push(proc, (reads, writes))
            path.append((proc, (reads, writes)))
        fresh = HappensBefore(3)
        for proc, fp in path:
            fresh.push(proc, fp)
        for attr in ("clock", "step_proc", "step_lidx", "step_fp", "proc_steps", "last_write", "step_vc", "global_steps"):
            assert getattr(hb, attr) == getattr(fresh, attr), attr
        assert {k: v for k, v in hb.reads_since.items() if v} == {k: v for k, v in fresh.reads_since.items() if v}


# ------------------------------------------------------------------ symmetry
def _symmetric_program(items: tuple[Item, ...], n: int) -> Any:
    """n actors running the same items; each owns its register r{i}; locks hold owner ids."""
    prog = make_program([items] * n)
    build = prog.build

    def build_sym(w: Any) -> None:
        build(w)
        w.declare_symmetric([f"P{i}" for i in range(n)], [[f"r{i}"] for i in range(n)], owner_locs=["L0", "L1"])

    return type(prog)(prog.name, build_sym)


def _canonical(finals: set[Any], n: int) -> set[Any]:
    """Final memories up to a permutation of the actors (registers and lock owners renamed)."""
    import itertools

    out = set()
    for f in finals:
        m = dict(f)
        best = None
        for perm in itertools.permutations(range(n)):  # actor i takes the place of perm[i]
            g = dict(m)
            for i in range(n):
                g[f"r{perm[i]}"] = m[f"r{i}"]
            for lock in ("L0", "L1"):
                if m[lock]:
                    g[lock] = perm[m[lock] - 1] + 1
            key = tuple(sorted(g.items()))
            best = key if best is None or key < best else best
        out.add(best)
    return out


def _symmetry_matches_brute_force(spec: list[tuple[Item, ...]]) -> None:
    items, n = spec[0], len(spec)
    prog = _symmetric_program(items, n)
    for dpor in (True, False):
        got = _finals_with(prog, dpor=dpor, cache=True)
        assert _canonical(got, n) == _canonical(brute_force_finals([items] * n), n)


# A symmetric program of n copies costs the brute force n! orders of every
# interleaving: 15 examples by default (about 20 s), the full 60 under -m slow.
@settings(SOUNDNESS, max_examples=15)
@given(programs())
def test_symmetry_reaches_every_final_state_up_to_permutation(spec: list[tuple[Item, ...]]) -> None:
    _symmetry_matches_brute_force(spec)


@pytest.mark.slow
@SOUNDNESS
@given(programs())
def test_symmetry_reaches_every_final_state_up_to_permutation_60(spec: list[tuple[Item, ...]]) -> None:
    _symmetry_matches_brute_force(spec)


def test_symmetry_reduces_states() -> None:
    items: tuple[Item, ...] = (("rmw", "x", 1), ("load", "y"), ("store", "y", 1))
    plain = exhaustive(make_program([items] * 3), Bounds(), dpor=False, cache=True)
    sym = exhaustive(_symmetric_program(items, 3), Bounds(), dpor=False, cache=True)
    assert plain.complete and sym.complete and sym.params.get("symmetry")
    assert sym.stats.states < plain.stats.states


# ----------------------------------------------- state identity and stateful DPOR
def test_stateful_dpor_race_below_a_cached_state() -> None:
    """Hypothesis's minimal case for DPOR with the cache: the third actor's load
    and store race with the locked loads only in the subtree below a state the
    search had met before.  Without the cached state's summary in the race
    analysis (stateful DPOR), some final states are never reached."""
    spec: list[tuple[Item, ...]] = [(("locked", "L0", (("load", "x"),)),), (("locked", "L0", (("load", "x"),)),), (("load", "x"), ("store", "x", 1))]
    assert _finals_with(make_program(spec), dpor=True, cache=True) == brute_force_finals(spec)


def _run_looping(items: tuple[Item, ...], acc: int) -> Any:
    """As test_strategies' items, run with ``for`` loops (the iterator lives on the
    generator's value stack, which the fingerprint reads) and a dead local."""
    for it in items:
        stale = acc  # dead after the next statement: the fingerprint may forget it
        acc = stale
        kind = it[0]
        if kind == "load":
            v = yield Load(it[1])
            acc = acc * 4 + v + 1
        elif kind == "store":
            yield Store(it[1], acc + it[2])
        elif kind == "rmw":
            old = yield RMW(it[1], lambda v, d=it[2]: v + d)
            acc = acc * 4 + old + 1
        elif kind == "repeat":
            for _ in range(it[1]):
                acc = yield from _run_looping(it[2], acc)
        else:
            yield SpinLock(it[1])
            acc = yield from _run_looping(it[2], acc)
            yield SpinUnlock(it[1])
    return acc


def _looping_program(spec: list[tuple[Item, ...]]) -> Program:
    def body(i: int, items: tuple[Item, ...]) -> Body:
        acc = yield from _run_looping(items, 0)
        yield Store(f"r{i}", acc)

    def build(w: World) -> None:
        for loc in (*LOCS, "L0", "L1"):
            w.loc(loc, 0)
        for i, items in enumerate(spec):
            w.loc(f"r{i}", -1)
            w.spawn(f"P{i}", body(i, items))
        w.check_deadlock = False

    return Program("looping", build)


def _unrolled(items: tuple[Item, ...]) -> tuple[Item, ...]:
    out: list[Item] = []
    for it in items:
        if it[0] == "repeat":
            out += list(_unrolled(it[2])) * it[1]
        elif it[0] == "locked":
            out.append(("locked", it[1], _unrolled(it[2])))
        else:
            out.append(it)
    return tuple(out)


@st.composite
def looping_programs(draw: st.DrawFn) -> list[tuple[Item, ...]]:
    """test_strategies' programs, some items wrapped in a loop that runs them twice."""
    spec = draw(programs())
    out = []
    for items in spec:
        if len(items) <= 2 and draw(st.booleans()):
            items = (("repeat", 2, items),)
        out.append(items)
    return out


@SOUNDNESS
@given(looping_programs())
def test_snapshot_identity_reaches_every_final_state(spec: list[tuple[Item, ...]]) -> None:
    """The fingerprint reads generator frames (code position, live locals, loop
    iterators): with it the cached searches, DPOR or not, reach every final state."""
    prog = _looping_program(spec)
    want = brute_force_finals([_unrolled(items) for items in spec])
    assert _finals_with(prog, dpor=True, cache=True) == want
    assert _finals_with(prog, dpor=False, cache=True) == want


def test_snapshots_are_used() -> None:
    """The loops' frames are identified by snapshot, not by history (else the test above tests less)."""
    from vcoresim.engine import fingerprint

    assert fingerprint.SNAPSHOTS
    prog = _looping_program([(("repeat", 2, (("load", "x"),)),), (("store", "x", 1),)])
    ex = Execution(prog, history=True)
    ex.step(0, 0)
    body = fingerprint.Encoder(ex).frame(ex.actors[0].stack[0])[3]
    assert body[0] != fingerprint._HIST


def _napper() -> Program:
    """A thread that naps in a loop, saving its frame each time (as the idle
    code saves PACAR1), and an IPI source that wakes it forever."""
    from vcoresim.engine.world import HwThread

    def napper() -> Body:
        yield IrqDisable()
        while True:
            frame = yield SaveFrame()
            yield Store("saved", frame)
            yield Nap()
            yield IrqEnable()  # the pending IPI is taken here
            yield IrqDisable()

    def handler() -> Body:
        yield Store("mfrr", 0)

    def reset_vector(_kind: str) -> Body:
        frame = yield Load("saved")
        yield ResumeFrame(frame)

    def stale() -> Body:
        yield WaitUntil(("mfrr",), lambda _v: False)

    def source() -> Body:
        while True:
            yield WaitUntil(("mfrr",), lambda v: v == 0)
            yield SendIPI("mfrr", 1, "P")

    hw = HwThread(("mfrr",), lambda m: "external" if m["mfrr"] else None, lambda m: "external" if m["mfrr"] else None, lambda _k: handler(), reset_vector, stale)

    def build(w: World) -> None:
        w.loc("mfrr", 0)
        w.loc("saved", 0)
        w.spawn("P", napper(), daemon=True, hw=hw)
        w.spawn("S", source(), daemon=True)

    return Program("napper", build)


def test_fingerprint_forgets_a_nap_wake_cycle() -> None:
    """Woken, resumed through its saved frame, interrupt taken, napping again:
    the same state as before the wake-up, though a new frame was saved (its id
    in memory differs) and the thread's history grew."""
    from vcoresim.engine.world import NAP

    prog = _napper()
    ex = Execution(prog, history=True)
    p, src = ex.actors
    while p.status != NAP:
        ex.step(0)
    napping = {ex.fingerprint()}  # P naps, S waits for the IPI to be taken
    for _ in range(4):
        ex.step(1)  # S: the wait passes
        ex.step(1)  # S: the IPI
        ex.step(0)  # P wakes up and returns through its saved frame ...
        while p.status != NAP:
            ex.step(0)  # ... takes the interrupt, saves a new frame and naps
        napping.add(ex.fingerprint())
    assert len(ex.frames) == 5 and ex.mem["saved"] == 5  # a new frame each time: the raw ids grew
    assert len(napping) == 1


def test_fingerprints_are_the_same_in_every_process() -> None:
    """Stable 64-bit ints (engine/stable.py): a search split over processes can share them."""
    import subprocess
    import sys

    code = (
        "import sys; sys.path.insert(0, 'tests')\n"
        "from test_reductions import _napper\n"
        "from vcoresim.engine.runtime import Execution\n"
        "ex = Execution(_napper(), history=True)\n"
        "out = []\n"
        "for k in range(12):\n"
        "    ex.step(ex.enabled()[k % len(ex.enabled())]); out.append(ex.fingerprint())\n"
        "print(out)\n"
    )
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**__import__("os").environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")}
    assert len(runs) == 1 and all(0 <= int(x) < 1 << 64 for x in runs.pop().strip()[1:-1].split(","))


def test_pending_locs_cover_what_pending_reads() -> None:
    """``HwThread.pending_locs(msr)`` is a footprint the race analysis and the
    sleep sets trust: changing any other interrupt line must not change what
    ``pending`` returns under that MSR.  Checked on the states of random walks
    through the P8 stray-IPI model (threads in the host and in the guest),
    flipping each line left out; and a running thread's step leaves the HDEC
    out of its reads in the host, keeps it in the guest."""
    from vcoresim.engine.msr import MSR_EE, MSR_HV
    from vcoresim.engine.world import RUN
    from vcoresim.scenarios.registry import get_scenario

    prog = get_scenario("stray-ipi@p8-fixed").make({})
    host = guest = 0
    for seed in range(6):
        ex = Execution(prog)
        rng = random.Random(seed)
        for _ in range(400):
            for a in ex.actors:
                hw = a.hw
                if hw is None or hw.pending_locs is None or a.status != RUN:
                    continue
                declared = hw.pending_locs(a.msr)
                want = hw.pending(ex.mem)
                for loc in hw.irq_locs:
                    if loc in declared:
                        continue
                    old = ex.mem[loc]
                    for v in (0, 1, 0xFF, None):
                        ex.mem[loc] = v
                        assert hw.pending(ex.mem) == want, (a.name, hex(a.msr), loc, v)
                    ex.mem[loc] = old
                if a.msr & MSR_EE and type(a.op) is Load:
                    hdec_read = any(loc.endswith("hdec_expired") for loc in ex.footprint(a.idx)[0])
                    assert hdec_read == (not a.msr & MSR_HV)
                    host += not hdec_read
                    guest += hdec_read
            en = ex.enabled()
            if not en or ex.violation is not None:
                break
            q = rng.choice(en)
            ex.step(q, rng.randrange(ex.alternatives(q)))
    assert host > 0 and guest > 0


@pytest.mark.slow
def test_pending_locs_keep_the_unreduced_finals() -> None:
    """``stray-ipi@fixed`` (no preemption bound): stateless DPOR and the cached
    search with the refined footprints reach the final states and violations
    of the unreduced search (every transition and branch at every state, no
    sleep sets: every pair dependent; the fingerprint merges equal states)."""
    from unittest import mock

    from test_state_cache import _finals_and_violations
    from vcoresim.scenarios.registry import get_scenario

    sc = get_scenario("stray-ipi@fixed")
    prog = sc.make({})
    bounds = Bounds(sc.bounds.max_steps)
    assert sc.bounds.max_preemptions is None
    reduced = _finals_and_violations(prog, bounds, cache=False)
    cached = _finals_and_violations(prog, bounds, cache=True)
    full_search = dpor_mod.exhaustive
    every_order = mock.patch.object(dpor_mod, "dependent", lambda a, b: True)
    with every_order, mock.patch.object(dpor_mod, "exhaustive", lambda p, b, dpor, cache: full_search(p, b, dpor=False, cache=True)):
        full = _finals_and_violations(prog, bounds, cache=True)
    assert reduced == full and cached == full and full[0]
