"""Reductions are safe: on small random programs each reduced search reaches
every final state the brute-force enumeration of all interleavings reaches
(the oracle and program generator of test_strategies)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given

from test_strategies import SOUNDNESS, Item, brute_force_finals, make_program, programs
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


@SOUNDNESS
@given(programs())
def test_symmetry_reaches_every_final_state_up_to_permutation(spec: list[tuple[Item, ...]]) -> None:
    items, n = spec[0], len(spec)
    prog = _symmetric_program(items, n)
    for dpor in (True, False):
        got = _finals_with(prog, dpor=dpor, cache=True)
        assert _canonical(got, n) == _canonical(brute_force_finals([items] * n), n)


def test_symmetry_reduces_states() -> None:
    items: tuple[Item, ...] = (("rmw", "x", 1), ("load", "y"), ("store", "y", 1))
    plain = exhaustive(make_program([items] * 3), Bounds(), dpor=False, cache=True)
    sym = exhaustive(_symmetric_program(items, 3), Bounds(), dpor=False, cache=True)
    assert plain.complete and sym.complete and sym.params.get("symmetry")
    assert sym.stats.states < plain.stats.states
