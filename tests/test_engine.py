"""The execution engine: fused steps, interrupts, nap and wake-up, saved frames,
wait timeouts, deadlock and liveness monitors."""

from __future__ import annotations

from typing import Any

import pytest

from vcoresim.engine.msr import MSR_DR, MSR_EE, MSR_HV, MSR_INTERRUPT, MSR_IR
from vcoresim.engine.ops import (
    TIMEOUT,
    Choose,
    Delay,
    IrqDisable,
    IrqEnable,
    Load,
    Nap,
    Note,
    ResumeFrame,
    SaveFrame,
    SendIPI,
    Store,
    WaitUntil,
    smp_mb,
)
from vcoresim.engine.runtime import GLOBAL, Execution, ModelError, stack_of
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.engine.strategies.sampling import random_walk
from vcoresim.engine.world import DONE, IRQ, NAP, Body, HwThread, Liveness, Program, World

MSR_HOST_NOIRQ = MSR_HV | MSR_IR | MSR_DR


def _drive(ex: Execution, order: list[str]) -> None:
    """Step the named actors in order; each must be enabled when its turn comes."""
    for name in order:
        a = ex.actor(name)
        assert a.idx in ex.enabled(), f"{name} not enabled at step {len(ex.schedule)}"
        ex.step(a.idx)


def _run_to_end(ex: Execution) -> None:
    """Run the lowest enabled actor until nothing is enabled (a fixed schedule)."""
    while ex.violation is None:
        en = ex.enabled()
        if not en:
            ex.finish(bounded=False)
            return
        ex.step(en[0])


def _hw(t: str, *, resume: bool = False) -> HwThread:
    """Interrupt wiring for thread ``t``: an IPI is pending while ``mfrr.t`` is set.
    Handlers acknowledge it and count themselves; the reset vector may return through
    the frame saved in ``pacar1.t``."""
    mfrr = f"mfrr.{t}"

    def handler(kind: str) -> Body:
        yield Store(mfrr, 0)
        n = yield Load("handled")
        yield Store("handled", n + 1)

    def reset(kind: str) -> Body:
        yield Store(mfrr, 0)
        woke = yield Load("woke")
        yield Store("woke", woke + 1)
        if resume:
            fid = yield Load(f"pacar1.{t}")
            yield ResumeFrame(fid)

    def stale() -> Body:
        yield Store("stale", 1)

    return HwThread(
        irq_locs=(mfrr,),
        pending=lambda mem: "ipi" if mem[mfrr] else None,
        wakeup=lambda mem: "ipi" if mem[mfrr] else None,
        vector=handler,
        reset_vector=reset,
        stale_frame=stale,
    )


def _world(w: World, *extra: str) -> None:
    for loc in ("mfrr.T", "handled", "woke", "stale", "x", *extra):
        w.loc(loc, 0)


# --------------------------------------------------------------- fused steps
def test_local_operations_are_fused_into_one_step() -> None:
    def body() -> Body:
        yield Note("start")
        yield Store("x", 1)
        yield smp_mb()
        yield Delay(100)
        yield Note("between")
        yield Store("x", 2)
        yield Note("end")

    def build(w: World) -> None:
        w.loc("x", 0)
        w.spawn("A", body())

    ex = Execution(Program("fuse", build), record=True)
    _run_to_end(ex)
    assert ex.steps == 2  # two visible stores; barrier, delay and notes ride along
    assert [o.op for o in ex.records[0].ops] == ["store x = 1", "smp_mb", "delay 100ns", "between"]
    assert ex.outcome == "done" and ex.actor("A").status == DONE


def test_yielding_a_non_operation_is_a_model_error() -> None:
    def body() -> Body:
        yield 42  # type: ignore[misc]

    def build(w: World) -> None:
        w.spawn("A", body())

    with pytest.raises(ModelError, match="not an operation"):
        Execution(Program("bad", build))


def test_choose_branches_are_all_explored() -> None:
    def body() -> Body:
        v = yield Choose((1, 2, 3), what="pick")
        yield Store("x", v)

    def build(w: World) -> None:
        w.loc("x", 0)
        w.loc("y", 0)
        w.spawn("A", body())
        w.spawn("B", (op for op in [Store("y", 1)]))

    seen: set[int] = set()

    class Rec(Execution):
        def finish(self, bounded: bool) -> None:
            super().finish(bounded)
            seen.add(self.mem["x"])

    from unittest import mock

    from vcoresim.engine.strategies import dpor as dpor_mod

    with mock.patch.object(dpor_mod, "Execution", Rec):
        res = exhaustive(Program("choose", build), Bounds())
    assert res.complete and seen == {1, 2, 3}


# ------------------------------------------------------------ interrupts
def _irq_program(*, disable_first: bool) -> Program:
    def thread() -> Body:
        if disable_first:
            yield IrqDisable()
        yield Store("x", 1)
        yield Store("x", 2)
        if disable_first:
            yield IrqEnable()
        yield Store("x", 3)

    def sender() -> Body:
        yield SendIPI("mfrr.T", 1, target="T")

    def build(w: World) -> None:
        _world(w)
        w.spawn("T", thread(), hw=_hw("T"), msr=MSR_HOST_NOIRQ | MSR_EE)
        w.spawn("S", sender())

    return Program("irq", build)


def test_interrupt_handler_runs_on_top_of_interrupted_code() -> None:
    ex = Execution(_irq_program(disable_first=False), record=True)
    _drive(ex, ["T", "S"])  # T stored x=1, then the IPI arrives
    t = ex.actor("T")
    assert ex.footprint(t.idx)[0] == ("mfrr.T",)  # next transition is taking the interrupt
    _drive(ex, ["T"])
    assert len(t.stack) == 2 and t.stack[-1].kind == IRQ and t.stack[-1].label == "ipi"
    assert t.msr == MSR_INTERRUPT  # EE off in the handler
    assert stack_of(t)[0] == "thread" and stack_of(t)[1] == "<ipi>"
    assert ex.records[-1].ops[0].op == "interrupt ipi"
    _drive(ex, ["T"] * 3)  # handler: ack, load and store the count
    assert ex.mem["handled"] == 1 and ex.mem["x"] == 1  # the interrupted store has not run yet
    assert len(t.stack) == 2 and t.op is not None and t.op.name == "rfid"
    _drive(ex, ["T"])  # rfid
    assert len(t.stack) == 1 and t.msr == MSR_HOST_NOIRQ | MSR_EE  # rfid restored SRR1
    _run_to_end(ex)
    assert ex.mem["x"] == 3 and ex.mem["handled"] == 1 and ex.outcome == "done"


def test_no_interrupt_while_ee_is_clear() -> None:
    ex = Execution(_irq_program(disable_first=True), record=True)
    _drive(ex, ["T", "T", "S"])  # T: hard_irq_disable, x=1; S: IPI pending
    t = ex.actor("T")
    assert not t.msr & MSR_EE
    _drive(ex, ["T"])  # runs its own code: x=2, not the handler
    assert ex.mem["x"] == 2 and len(t.stack) == 1 and ex.mem["handled"] == 0
    _drive(ex, ["T"])  # irq_enable: the pending IPI is taken right after
    assert t.msr & MSR_EE
    _drive(ex, ["T"])
    assert t.stack[-1].kind == IRQ
    _run_to_end(ex)
    assert ex.mem["handled"] == 1 and ex.mem["x"] == 3


def test_every_interleaving_handles_the_ipi_exactly_once() -> None:
    for disable_first in (False, True):
        res = exhaustive(_irq_program(disable_first=disable_first), Bounds())
        assert res.complete and res.violation is None


# -------------------------------------------------------------- nap / wake
def _nap_program(*, send: bool) -> Program:
    def thread() -> Body:
        yield Store("napping", 1)
        yield Nap()
        yield Store("x", 99)  # unreachable: a nap does not return here

    def sender() -> Body:
        yield WaitUntil(("napping",), lambda n: n == 1, what="napping")
        if send:
            yield SendIPI("mfrr.T", 1, target="T")

    def build(w: World) -> None:
        _world(w, "napping")
        w.spawn("T", thread(), hw=_hw("T"), msr=MSR_HOST_NOIRQ)
        w.spawn("S", sender())

    return Program("nap", build)


def test_ipi_wakes_a_napping_thread_at_its_reset_vector() -> None:
    ex = Execution(_nap_program(send=True), record=True)
    t = ex.actor("T")
    _drive(ex, ["T"])  # napping=1
    _drive(ex, ["T"])  # nap
    assert t.status == NAP and t.idx not in ex.enabled()
    _drive(ex, ["S", "S"])  # wait satisfied, IPI sent
    assert t.idx in ex.enabled()
    _drive(ex, ["T"])
    assert ex.records[-1].ops[0].op == "wake from nap (ipi)" and t.msr == MSR_INTERRUPT
    _run_to_end(ex)
    assert ex.mem["woke"] == 1 and ex.mem["x"] == 0 and ex.outcome == "done"


def test_a_thread_never_woken_is_a_deadlock() -> None:
    res = exhaustive(_nap_program(send=False), Bounds())
    assert res.violation is not None and res.violation.kind == "deadlock"
    assert "T at nap" in res.violation.message


# ---------------------------------------------------------- saved frames
def _frames_program() -> Program:
    def thread() -> Body:
        fid = yield SaveFrame()
        yield Store("pacar1.T", fid)
        yield Store("napping", 1)
        yield Nap()
        yield Store("resumed", 1)  # idle "returned": the saved frame continues here
        yield Store("napping", 2)
        yield Nap()  # PACAR1 still names the frame already resumed
        yield Store("x", 99)

    def sender() -> Body:
        yield WaitUntil(("napping",), lambda n: n == 1)
        yield SendIPI("mfrr.T", 1, target="T")
        yield WaitUntil(("napping",), lambda n: n == 2)
        yield SendIPI("mfrr.T", 1, target="T")

    def build(w: World) -> None:
        _world(w, "napping", "resumed", "pacar1.T")
        w.spawn("T", thread(), hw=_hw("T", resume=True), msr=MSR_HOST_NOIRQ)
        w.spawn("S", sender())

    return Program("frames", build)


def test_resume_frame_continues_once_then_runs_stale_frame() -> None:
    ex = Execution(_frames_program(), record=True)
    t = ex.actor("T")
    _drive(ex, ["T", "T", "T"])  # save frame + pacar1, napping=1, nap
    assert t.status == NAP and ex.frames[1][3] == "parked"
    _drive(ex, ["S", "S", "T"])  # IPI; wake at the reset vector
    _drive(ex, ["T"] * 5)  # ack, count the wake-up, load pacar1, resume_frame
    assert ex.mem["woke"] == 1 and ex.frames[1][3] == "resumed"
    assert t.msr == MSR_HOST_NOIRQ  # the saved frame's MSR, not the wake-up's
    _drive(ex, ["T"])
    assert ex.mem["resumed"] == 1
    _run_to_end(ex)
    assert ex.mem["woke"] == 2 and ex.mem["stale"] == 1  # the second resume ran stale_frame
    assert ex.mem["x"] == 0 and ex.outcome == "done"


# ------------------------------------------------------------- timeouts
def _timeout_program() -> Program:
    def waiter() -> Body:
        r = yield WaitUntil(("flag",), lambda f: f == 1, timeout=1_000, what="flag")
        yield Store("result", "timeout" if r is TIMEOUT else f"ok{r}")

    def setter() -> Body:
        yield Store("x", 1)
        do = yield Choose((True, False), what="set flag?")
        if do:
            yield Store("flag", 1)
        yield Store("x", 2)

    def build(w: World) -> None:
        _world(w, "flag", "result")
        w.spawn("W", waiter())
        w.spawn("S", setter())

    return Program("timeout", build)


def test_wait_times_out_only_when_nothing_else_can_move() -> None:
    ex = Execution(_timeout_program())
    w, s = ex.actor("W"), ex.actor("S")
    assert ex.enabled() == [s.idx] and ex.timeout_candidates() == [w.idx]
    _drive(ex, ["S"])
    ex.step(s.idx, 1)  # choose not to set the flag
    assert ex.enabled() == [s.idx]  # S can still move: no timeout yet
    _drive(ex, ["S"])
    assert s.status == DONE and ex.enabled() == [w.idx]  # quiescent: now W may time out
    assert ex.footprint(w.idx) == ((GLOBAL,), (GLOBAL,))
    _run_to_end(ex)
    assert ex.mem["result"] == "timeout" and ex.outcome == "done"


def test_timeout_path_is_explored_only_where_it_can_happen() -> None:
    results: set[Any] = set()

    class Rec(Execution):
        def finish(self, bounded: bool) -> None:
            super().finish(bounded)
            results.add((self.mem["flag"], self.mem["result"]))

    from unittest import mock

    from vcoresim.engine.strategies import dpor as dpor_mod

    with mock.patch.object(dpor_mod, "Execution", Rec):
        assert exhaustive(_timeout_program(), Bounds()).complete
    # flag set: the wait always succeeds; flag never set: it always times out
    assert results == {(1, "ok(1,)"), (0, "timeout")}


def test_wait_without_timeout_that_never_holds_is_a_deadlock() -> None:
    def build(w: World) -> None:
        w.loc("flag", 0)
        w.spawn("W", (op for op in [WaitUntil(("flag",), lambda f: f == 1)]))

    res = exhaustive(Program("stuck", build), Bounds())
    assert res.violation is not None and res.violation.name == "no-deadlock"
    assert res.stats.steps == 0  # a blocking wait costs no steps


# -------------------------------------------------------------- liveness
def _liveness_program(bound: int, *, ack: bool = True, noise_loc: str = "x") -> Program:
    def requester() -> Body:
        yield Store("req", 1)
        yield Store("x", 1)
        if ack:
            yield Store("ack", 1)

    def noise() -> Body:
        for i in range(3):
            yield Store(noise_loc, i + 10)

    def build(w: World) -> None:
        for loc in ("req", "ack", "x", "y"):
            w.loc(loc, 0)
        w.spawn("R", requester())
        w.spawn("N", noise())
        w.add_liveness(Liveness("ack-follows-req", "req is acked", ("req", "ack"), lambda ex: ex.mem["req"] == 1, lambda ex: ex.mem["ack"] == 1, bound))

    return Program("liveness", build)


def test_bounded_liveness_violated_when_other_steps_intervene() -> None:
    res = exhaustive(_liveness_program(2), Bounds())
    assert res.violation is not None and res.violation.kind == "liveness"
    assert "within 2 steps" in res.violation.message


def test_bounded_liveness_holds_with_a_large_enough_bound() -> None:
    res = exhaustive(_liveness_program(5), Bounds())
    assert res.complete and res.violation is None


def test_random_finds_liveness_violation_from_independent_steps() -> None:
    res = random_walk(_liveness_program(2, noise_loc="y"), Bounds(max_executions=500), seed=1)
    assert res.violation is not None and res.violation.name == "ack-follows-req"


@pytest.mark.xfail(
    strict=True,
    reason="engine bug: a step-bounded liveness property counts every actor's steps, but DPOR and sleep "
    "sets treat steps on unrelated locations as commuting, so the interleaving that delays the goal is pruned",
)
def test_exhaustive_finds_liveness_violation_from_independent_steps() -> None:
    res = exhaustive(_liveness_program(2, noise_loc="y"), Bounds())
    assert res.violation is not None and res.violation.name == "ack-follows-req"


def test_liveness_obligation_open_at_the_end_is_a_violation() -> None:
    res = exhaustive(_liveness_program(100, ack=False), Bounds())
    assert res.violation is not None and res.violation.name == "ack-follows-req"
    assert "still not reached" in res.violation.message
