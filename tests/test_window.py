"""The timing window of a counterexample (simulate/window.py): the costs are the timed
driver's, a race that needs no slow thread says so, one that needs a stall names the
thread, the place and the amount, and the checker carries the window into the
verdict, the JSON result and the trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vcoresim.check.driver import check
from vcoresim.engine import ops as O
from vcoresim.engine.ops import Load, Store, smp_mb
from vcoresim.engine.runtime import Execution
from vcoresim.engine.world import Body, Invariant, Program, World
from vcoresim.scenarios.registry import get_scenario
from vcoresim.simulate.timed import TimedDriver, Timing, simulate
from vcoresim.simulate.window import MIN_NS, op_cost, timing_window


def test_op_cost_is_what_the_timed_driver_charges(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[O.Op, Any, int]] = []
    orig = TimedDriver._on_op

    def clock(d: TimedDriver, a: Any) -> int:
        return d._clock if d._priming is None else d._priming.get(a.idx, 0)

    def spy(self: TimedDriver, a: Any, op: O.Op, value: Any) -> None:
        before = clock(self, a)
        orig(self, a, op, value)
        seen.append((op, value, clock(self, a) - before))

    monkeypatch.setattr(TimedDriver, "_on_op", spy)
    simulate(get_scenario("smt-vcore").make({}), duration_ns=300_000, seed=1)
    tm = Timing()
    kinds = set()
    for op, value, charged in seen:
        if op.__class__ is O.Delay:  # charged before the step (the actor is not ready until it ends)
            continue
        assert op_cost(tm, op, value) == charged, op
        kinds.add(op.__class__)
    assert {O.Load, O.Store, O.SpinLock, O.Barrier, O.SendIPI, O.Nap, O.Note, O.WaitUntil} <= kinds


def _flag_then_done(w: World) -> None:
    """P0 publishes flag then done; P1 reads flag, runs three barriers, reads done."""
    for name in ("flag", "done", "seen"):
        w.loc(name, 0)

    def writer() -> Body:
        yield Store("flag", 1)
        yield Store("done", 1)

    def reader() -> Body:
        f = yield Load("flag")
        for _ in range(3):
            yield smp_mb()
        d = yield Load("done")
        yield Store("seen", (f, d))

    w.spawn("P0", writer())
    w.spawn("P1", reader())

    def bad(ex: Execution) -> str | None:
        return "flag seen without done" if ex.mem["seen"] == (1, 0) and ex.mem["done"] == 0 else None

    w.add_invariant(Invariant("flag-implies-done", "a reader that sees flag sees done", ("seen", "done"), bad))


def test_a_race_that_needs_a_stall_names_thread_place_and_amount() -> None:
    prog = Program("example/flag-then-done", _flag_then_done, {"model": "test"})
    schedule = [(0, 0)] + [(1, 0)] * 6  # P0 stores flag; P1 runs to the violation
    w = timing_window(prog, schedule)
    (stall,) = w.stalls
    # P1's load of flag (1 ns), three barriers (30 ns), the load of done (1 ns) and
    # the store (1 ns) fit between P0's two stores, which normally take 1 ns.
    assert stall.actor == "P0" and stall.ns >= 3 * Timing().barrier_ns and stall.normal_ns == Timing().mem_ns
    assert stall.first_step == 0 and "store flag = 1" in stall.first and "store done = 1" in stall.last
    assert w.summary().startswith("P0 must stall >= ") and "normal cost 1 ns" in w.summary()
    assert w.as_dict()["needs"][0]["kind"] == "stall"


def test_a_race_at_normal_speed_says_so() -> None:
    sc = get_scenario("example/lost-update")
    res = check(sc.make({}), strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed)
    assert res.verdict == "violation" and res.window is not None
    assert res.window["needs"] == [] or all(n["kind"] != "stall" for n in res.window["needs"])
    assert res.window["summary"].startswith("reached at normal speed") and f"{MIN_NS} ns" in res.window["summary"]


def test_the_window_reaches_the_json_result_and_the_trace(tmp_path: Path) -> None:
    sc = get_scenario("stray-ipi@guard-only")
    res = check(sc.make({}), strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, trace_out=tmp_path / "t.json")
    assert res.verdict == "violation" and res.window is not None
    assert res.as_dict()["window"] == res.window
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["window"]["summary"] == res.window["summary"]
    # R3: the woken thread must be slow between publishing IN_NAP and napping.
    (stall,) = [n for n in res.window["needs"] if n["kind"] == "stall"]
    assert "IN_NAP" in stall["first"] or "hwthread_state" in stall["first"]


def test_no_window_without_a_violation() -> None:
    sc = get_scenario("example/peterson")
    res = check(sc.make({}), strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed)
    assert res.verdict == "holds" and res.window is None and "window" not in res.as_dict()


def test_r1_window_in_the_verdict_text_and_the_html_page(tmp_path: Path) -> None:
    """R1 needs no fast thread but a long fault: the stalled thread must be held
    past the grab's timeout (1 ms); the verdict paragraph and the replay's HTML
    page say so."""
    from vcoresim.check.driver import replay
    from vcoresim.report.html import page_data
    from vcoresim.report.verdict import verdict_text
    from vcoresim.scenarios.registry import program_for

    sc = get_scenario("stray-ipi@grab-timeout")
    res = check(sc.make({}), strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, trace_out=tmp_path / "t.json")
    (fault,) = [n for n in res.window["needs"] if n["kind"] == "fault"]
    assert fault["actor"] == "cpu1" and fault["ns"] >= 1_000_000
    assert "timing window: cpu1: the injected fault must hold it >= 1.00 ms" in verdict_text(res)
    out = replay(tmp_path / "t.json", program_for)
    assert out.reproduced and page_data(out)["window"]["needs"][0]["text"] == fault["text"]
