"""The host kernel around KVM: scheduler, wait queues, idle loop, IPI handler, signals.

Only what the vcore protocol touches is modelled.  Tasks switch at
``schedule()`` (when they sleep or at a preemption point), never in the
middle of a critical section; ``schedule()`` picks any runnable task (a
nondeterministic choice when several are runnable).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vcoresim.engine.msr import MSR_DR, MSR_IR
from vcoresim.engine.ops import (
    Choose,
    ContextSwitch,
    IrqDisable,
    IrqEnable,
    Load,
    LoadN,
    MtMsr,
    Note,
    SendIPI,
    SpinLock,
    SpinUnlock,
    Store,
    StoreN,
    smp_mb,
)
from vcoresim.engine.world import Body
from vcoresim.kvm.idle import host_idle
from vcoresim.kvm.state import IPI_PRIORITY, MFRR_NONE, TASK_DEAD, TASK_INTERRUPTIBLE, TASK_RUNNING, Task, mfrr, rq, task

if TYPE_CHECKING:
    from vcoresim.kvm.context import Kvm


def try_to_wake_up(k: Kvm, p: Task) -> Body:
    """Make a sleeping task runnable on its CPU; kick that CPU if it is idle."""
    yield SpinLock(rq(p.cpu, "lock"))
    state = yield Load(task(p.name, "state"))
    woke = state not in (TASK_RUNNING, TASK_DEAD)
    curr = yield Load(rq(p.cpu, "curr"))
    if woke:
        yield Store(task(p.name, "state"), TASK_RUNNING)
        queue = yield Load(rq(p.cpu, "queue"))
        # ttwu_runnable(): a task still running (it set its state but has not
        # called schedule() yet) is on the run queue already: not queued twice.
        if p.name not in queue and curr != p.name:
            yield Store(rq(p.cpu, "queue"), (*queue, p.name))
    yield SpinUnlock(rq(p.cpu, "lock"))
    if woke and curr == k.idle_task[p.cpu].name:
        yield from smp_send_reschedule(k, p.cpu)
    return woke


def try_to_wake_up_many(k: Kvm, cpu: int, tasks: list[Task]) -> Body:
    """Wake several sleeping tasks of one CPU's run queue under one hold of its lock."""
    yield SpinLock(rq(cpu, "lock"))
    states = yield LoadN(*(task(p.name, "state") for p in tasks))
    woken = [p.name for p, state in zip(tasks, states, strict=True) if state not in (TASK_RUNNING, TASK_DEAD)]
    queue, curr = yield LoadN(rq(cpu, "queue"), rq(cpu, "curr"))
    if woken:
        updates: dict[str, object] = {task(name, "state"): TASK_RUNNING for name in woken}
        updates[rq(cpu, "queue")] = (*queue, *(n for n in woken if n not in queue and n != curr))  # ttwu_runnable()
        yield StoreN(updates)
    yield SpinUnlock(rq(cpu, "lock"))
    if woken and curr == k.idle_task[cpu].name:
        yield from smp_send_reschedule(k, cpu)


def wake_up(k: Kvm, p: Task) -> Body:
    """``wake_up(&vcpu->arch.cpu_run)``: the queue holds just that vCPU's task."""
    yield from try_to_wake_up(k, p)


def send_signal(k: Kvm, p: Task) -> Body:
    """``signal_wake_up``: flag the task, wake it if it sleeps interruptibly."""
    yield Store(task(p.name, "sigpending"), 1)
    yield SpinLock(rq(p.cpu, "lock"))
    state = yield Load(task(p.name, "state"))
    yield SpinUnlock(rq(p.cpu, "lock"))
    if state == TASK_INTERRUPTIBLE:
        yield from try_to_wake_up(k, p)


def smp_send_reschedule(k: Kvm, cpu: int) -> Body:
    """An IPI through XICS (``icp_native_cause_ipi``): raises the target's MFRR."""
    yield SendIPI(mfrr(cpu), IPI_PRIORITY, f"cpu{cpu}")


def set_current_state(k: Kvm, p: Task, state: str) -> Body:
    # smp_store_mb(): the store, then a full barrier, so the waker's view of the
    # state and the sleeper's later loads are ordered (under a weak model a
    # plain store let a waker enqueue a task still running on its own CPU).
    yield Store(task(p.name, "state"), state)
    yield smp_mb()


def schedule(k: Kvm, cpu: int, prev: Task) -> Body:
    """Give up the CPU if ``prev`` is no longer runnable, or let another runnable task in."""
    yield IrqDisable()
    yield SpinLock(rq(cpu, "lock"))
    state, sig, queue = yield LoadN(task(prev.name, "state"), task(prev.name, "sigpending"), rq(cpu, "queue"))
    if state == TASK_INTERRUPTIBLE and sig:
        # signal_pending_state(): an interruptible sleeper with a signal stays runnable
        state = TASK_RUNNING
        yield Store(task(prev.name, "state"), TASK_RUNNING)
    candidates = list(queue)
    if state == TASK_RUNNING and not prev.is_idle:
        candidates.append(prev.name)  # prev may keep the CPU
    if not candidates:
        nxt_name = k.idle_task[cpu].name
    elif len(candidates) == 1 or k.fifo_scheduler:
        nxt_name = candidates[0]  # the head of the run queue (prev, still runnable, queues behind)
    else:
        nxt_name = yield Choose(tuple(candidates), what="pick next task")
    new_queue = tuple(n for n in queue if n != nxt_name)
    if state == TASK_RUNNING and not prev.is_idle and nxt_name != prev.name:
        new_queue = (*new_queue, prev.name)
    if new_queue != queue:
        yield Store(rq(cpu, "queue"), new_queue)
    if nxt_name != prev.name:
        yield Store(rq(cpu, "curr"), nxt_name)
    yield SpinUnlock(rq(cpu, "lock"))
    if nxt_name != prev.name:
        yield ContextSwitch(prev, k.tasks[nxt_name])
    yield IrqEnable()


def cond_resched(k: Kvm, cpu: int, prev: Task) -> Body:
    """A preemption point: another runnable task may take the CPU here."""
    queue = yield Load(rq(cpu, "queue"))
    if queue:
        yield from schedule(k, cpu, prev)


def do_exit(k: Kvm, cpu: int, prev: Task) -> Body:
    """``do_task_dead()``: ``set_special_state(TASK_DEAD)``, then the last schedule.

    The state is stored under the lock the waker holds (``pi_lock`` in the
    kernel; this model's ``try_to_wake_up`` takes the run-queue lock), so a
    wake-up that read the old sleeping state cannot store TASK_RUNNING over
    TASK_DEAD and bring the exited task back (before v4.17 do_task_dead()
    took and dropped ``pi_lock`` before the store, to the same effect).
    Without it the exploration resurrected a dead vCPU task, whose body then
    returned on its CPU.
    """
    yield SpinLock(rq(cpu, "lock"))
    yield Store(task(prev.name, "state"), TASK_DEAD)
    yield SpinUnlock(rq(cpu, "lock"))
    yield from schedule(k, cpu, prev)


def cpu_idle(k: Kvm, cpu: int) -> Body:
    """The idle task of an online CPU: run queued tasks, else nap (``power7_idle``)."""
    idle = k.idle_task[cpu]
    while True:
        # Test for work with interrupts hard-disabled, so that a wake-up IPI
        # arriving after the test stays pending and stops the nap.
        yield IrqDisable()
        queue = yield Load(rq(cpu, "queue"))
        if queue:
            yield from schedule(k, cpu, idle)
            continue
        yield from host_idle(k, cpu)
        # Woken (the wake-up path returned through the idle frame): let the
        # interrupt that woke us be taken, as local_irq_enable() does.
        yield IrqEnable()


def xics_ipi_action(k: Kvm, cpu: int) -> Body:
    """Host external-interrupt handler for an IPI: turn the MMU on, accept, clear, EOI.

    Runs on top of the interrupted code; returning (``rfid``) restores its MSR.
    """
    yield MtMsr(set_bits=MSR_IR | MSR_DR, what="exception prologue: MMU on")
    pending = yield Load(mfrr(cpu))
    if pending != MFRR_NONE:
        yield Store(mfrr(cpu), MFRR_NONE)  # icp_native_flush_ipi; the reschedule itself is done by the flag
    yield Note("EOI (write XIRR)")

