"""Small models with known answers: they prove the engine finds what it should.

| model | property | known answer under SC |
| --- | --- | --- |
| ``peterson`` | mutual exclusion | holds |
| ``peterson-broken`` | mutual exclusion (turn written before flag... in the wrong order) | violation |
| ``lost-update`` | counter == number of increments | violation |
| ``lock-order`` | no deadlock (ABBA locking) | violation (deadlock) |
| ``store-buffering`` | not (r1 == 0 and r2 == 0) | holds |
"""

from __future__ import annotations

from collections.abc import Callable

from vcoresim.engine.ops import Load, SpinLock, SpinUnlock, Store, WaitUntil, smp_mb
from vcoresim.engine.runtime import Execution
from vcoresim.engine.world import Body, Invariant, Program, World


def _mutex_invariant(w: World) -> None:
    def check(ex: Execution) -> str | None:
        if ex.mem["cs.0"] and ex.mem["cs.1"]:
            return "both processes are in the critical section"
        return None

    w.add_invariant(Invariant("mutual-exclusion", "at most one process is in its critical section", ("cs.0", "cs.1"), check))


def _peterson(broken: bool) -> Callable[[World], None]:
    def build(w: World) -> None:
        for name in ("flag.0", "flag.1", "turn", "cs.0", "cs.1"):
            w.loc(name, 0)

        def proc(me: int) -> Body:
            other = 1 - me
            if broken:  # gives way first, then raises its flag: the classic mistake
                yield Store("turn", other)
                yield Store(f"flag.{me}", 1)
            else:
                yield Store(f"flag.{me}", 1)
                yield Store("turn", other)
            yield WaitUntil((f"flag.{other}", "turn"), lambda f, t: f == 0 or t == me, what="flag[other] == 0 || turn == me")
            yield Store(f"cs.{me}", 1)
            yield Store(f"cs.{me}", 0)
            yield Store(f"flag.{me}", 0)

        w.spawn("P0", proc(0))
        w.spawn("P1", proc(1))
        _mutex_invariant(w)

    return build


def _lost_update(w: World) -> None:
    w.loc("counter", 0)
    w.loc("finished", 0)
    n = 2

    def inc() -> Body:
        v = yield Load("counter")
        yield Store("counter", v + 1)
        done = yield Load("finished")
        yield Store("finished", done + 1)

    for i in range(n):
        w.spawn(f"P{i}", inc())

    def check(ex: Execution) -> str | None:
        if ex.mem["finished"] == n and ex.mem["counter"] != n:
            return f"counter is {ex.mem['counter']} after {n} increments"
        return None

    w.add_invariant(Invariant("no-lost-update", "after every increment finished, counter equals their number", ("counter", "finished"), check))


def _lock_order(w: World) -> None:
    w.loc("lock.A", 0)
    w.loc("lock.B", 0)

    def proc(first: str, second: str) -> Body:
        yield SpinLock(first)
        yield SpinLock(second)
        yield SpinUnlock(second)
        yield SpinUnlock(first)

    w.spawn("P0", proc("lock.A", "lock.B"))
    w.spawn("P1", proc("lock.B", "lock.A"))


def _store_buffering(w: World) -> None:
    for name in ("x", "y", "r0", "r1", "done"):
        w.loc(name, 0)

    def proc(mine: str, theirs: str, reg: str) -> Body:
        yield Store(mine, 1)
        yield smp_mb()
        v = yield Load(theirs)
        yield Store(reg, v)
        d = yield Load("done")
        yield Store("done", d + 1)

    w.spawn("P0", proc("x", "y", "r0"))
    w.spawn("P1", proc("y", "x", "r1"))

    def check(ex: Execution) -> str | None:
        m = ex.mem
        if m["done"] == 2 and m["r0"] == 0 and m["r1"] == 0:
            return "both loads returned 0 (store buffering)"
        return None

    w.add_invariant(Invariant("sb-forbidden", "r0 == 0 && r1 == 0 is unreachable", ("done", "r0", "r1"), check))


EXAMPLES: dict[str, tuple[Callable[[World], None], str, str]] = {
    "peterson": (_peterson(False), "holds", "Peterson's lock: mutual exclusion"),
    "peterson-broken": (_peterson(True), "violation", "Peterson's lock with turn written before flag"),
    "lost-update": (_lost_update, "violation", "two unlocked increments of a shared counter"),
    "lock-order": (_lock_order, "violation", "two locks taken in opposite orders (ABBA)"),
    "store-buffering": (_store_buffering, "holds", "SB litmus shape with smp_mb on both sides"),
}


def example_program(name: str) -> Program:
    build, _expected, _desc = EXAMPLES[name]
    return Program(f"example/{name}", build, {"model": f"example:{name}"})
