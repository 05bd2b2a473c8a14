"""The guest-entry path of Book3S HV on POWER9, 4.12 and 4.13 shape (seed 004).

The runner task R (QEMU's vCPU thread) on CPU P checks for signals and
reschedule requests, starts the vcore and enters the guest.  Before seed 004
(``entry-irq-hard-disable``) the last checks run with interrupts on and the
hard-disable comes late, in ``__kvmppc_vcore_entry``: a signal whose IPI is
taken in that window is noticed only after the guest has run a whole
timeslice.  After it, R soft- and hard-disables first, checks
``lazy_irq_pending()`` / ``need_resched()`` / the signals, keeps interrupts
off until the guest, and the exit returns the trap to C, which records it in
``irq_happened`` for ``local_irq_enable`` to replay.

Modelled: the PACA's lazy interrupt state (``soft_enabled``,
``irq_happened``, the masked-interrupt path and the replay), MSR EE / RI /
IR / DR, the signal sender (``signal_wake_up`` + ``kick_process``), a remote
reschedule request (``resched_curr``), the guest's timeslice (HDEC loaded
from the host DEC: the guest runs until the HDEC expires, which in checking
happens only when nothing else can move), exits on host IPIs, HDEC and
hcalls, and for radix guests the TLB-flush cross-call
(``radix_flush_cpu`` → ``smp_call_function_single``) and exits taken with
the MMU on.  Step labels (C1, C6′, X2 ...) follow
shared/reference/signal-entry-race.md §2.

Approximations (also in docs/scenarios.md): one vCPU per vcore (POWER9 runs
one thread per vcore); the host IPI is an interrupt-controller IPI (trap
0x500), not a same-core doorbell, and a soft-masked one is latched in
``irq_happened`` and consumed (the kernel leaves an external source asserted
and returns with EE=0: either way it is replayed, never lost);
``host_ipi`` filtering of exits is not modelled (every IPI is the host's);
non-maskable interrupts are delivered only while the CPU runs with the MMU
on (real-mode windows with RI=0 are unrecoverable in both kernels by design).

Durations (``Delay``, timeouts; instant in checking, see engine/timing.py)
are the same in both kernels: each guest round runs until the HDEC fires at
the host's next tick (``Timing.host_tick_ns``, ticks at fixed phase) unless
an interrupt exits it first; ``kvmppc_start_thread`` and what follows up to
``__kvmppc_vcore_entry`` cost ``Timing.entry_path_ns``; QEMU spends a
``workload.userspace`` draw between ``KVM_RUN`` calls.  An open-ended
workload (``workload.open_ended``, as ``vcoresim simulate`` runs it) has
unbounded guest rounds, and its signal source is QEMU kicking its vCPU
thread once per ``KVM_RUN``, an exponential time of mean
``faults.mean_interval_us`` after the thread made its vCPU runnable (the kick
races with guest entry; see docs/simulate.md).
"""

from __future__ import annotations

from typing import Any

from vcoresim.engine.msr import MSR_DR, MSR_EE, MSR_HV, MSR_IR, MSR_KERNEL, MSR_PR, MSR_RI
from vcoresim.engine.ops import (
    TIMEOUT,
    Choose,
    Delay,
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
    WaitUntil,
    atomic_or,
    smp_mb,
)
from vcoresim.engine.timing import NextTick, Param, exp_us
from vcoresim.engine.world import IRQ, RUN, Body, HwThread, Invariant, Liveness, World
from vcoresim.errors import ConfigError
from vcoresim.kvm.config import ScenarioConfig
from vcoresim.kvm.state import (
    BOOK3S_INTERRUPT_EXTERNAL,
    BOOK3S_INTERRUPT_HV_DECREMENTER,
    BOOK3S_INTERRUPT_SYSCALL,
    BUSY_IN_HOST,
    EINTR,
    IPI_PRIORITY,
    MFRR_NONE,
    RESUME_GUEST,
    RESUME_HOST,
    RUNNABLE,
    core,
    hstate,
    mfrr,
    paca,
    task,
    vcore,
    vcpu,
)
from vcoresim.machine.interrupts import (
    BOOK3S_INTERRUPT_DECREMENTER,
    BOOK3S_INTERRUPT_DOORBELL,
    BOOK3S_INTERRUPT_H_DOORBELL,
    BOOK3S_INTERRUPT_HMI,
    MSR_GUEST,
    GuestInterrupt,
)

# arch/powerpc/include/asm/hw_irq.h
PACA_IRQ_HARD_DIS = 0x01
PACA_IRQ_DBELL = 0x02
PACA_IRQ_EE = 0x04
PACA_IRQ_DEC = 0x08
PACA_IRQ_HMI = 0x20
#: __check_irq_replay order: HMI, DEC, external, doorbell.
REPLAY_ORDER = ((PACA_IRQ_HMI, 0xE60), (PACA_IRQ_DEC, 0x900), (PACA_IRQ_EE, 0x500), (PACA_IRQ_DBELL, 0xA00))

# vcore->vcore_state (4.x)
VCORE_INACTIVE, VCORE_PREEMPT, VCORE_RUNNING, VCORE_EXITING = 0, 1, 4, 5

#: The guest's timeslice: HDEC := the host DEC (C7), until the host's next tick.
#: In checking the timeout fires only when nothing else can move.
HDEC_AT_ENTRY = NextTick("host_tick_ns")
#: Guest rounds of an open-ended workload: unbounded in practice.
OPEN_ENDED_ROUNDS = 1 << 62
#: latched-irq-replayed: steps from latching an interrupt to its replay.  The
#: longest legitimate distance in the built-ins is between 15 and 30 steps
#: (signal-entry-race@tick-fixed and @doorbell-fixed hold at 30, not at 15:
#: a latch before C5', the back-out, local_irq_enable); a retry of the entry
#: that does not re-enable costs about as much again, so a livelock is
#: reported after a few retries, long before max_steps.
LATCHED_IRQ_BOUND = 100
def ghost(cpu: int, field_: str) -> str:
    """Ghost state (not kernel state) that monitors read."""
    return f"ghost[{cpu}].{field_}"


def dec_expired(cpu: int) -> str:
    """The host decrementer has gone negative: a DEC interrupt is pending on ``cpu``."""
    return f"thread[{cpu}].dec_expired"


def dbell(cpu: int) -> str:
    """A hypervisor doorbell (``msgsnd``) is pending on ``cpu``: edge-triggered, it
    is consumed when the interrupt is taken (unlike the XICS IPI, whose MFRR stays
    set until the handler clears it)."""
    return f"thread[{cpu}].dbell"


def csd(cpu: int) -> str:
    """``call_single_data`` of a cross-call made by ``cpu``: set while it is in flight."""
    return f"cfd[{cpu}].csd_lock"


class Entry:
    """The model's context: configuration, patches, topology."""

    def __fp__(self) -> str:
        """The state cache's name for the context: configuration, which nothing
        changes while checking (engine/fingerprint.py)."""
        return "entry"

    def __init__(self, cfg: ScenarioConfig, patches: frozenset[str]) -> None:
        self.cfg = cfg
        self.patches = patches
        self.threads_per_core = cfg.machine.threads
        self.radix = any(vm.radix for vm in cfg.vm)
        self.cpu = 0  # P: the runner's CPU
        self.vcpu = 0
        self.vc = 0
        self.runner = "qemu-vcpu0"
        # A radix vCPU that last ran on another core (prev_cpu): its first run here
        # must flush that core's TLB with a cross-call (kvmppc_prepare_radix_vcpu).
        self.prev_cpu = self.threads_per_core if self.radix and cfg.machine.cores > 1 else None
        self.userspace_dist = cfg.workload.dist("userspace")

    def patch(self, name: str) -> bool:
        return name in self.patches


# ------------------------------------------------------------- lazy irq state
def local_irq_disable(k: Entry, cpu: int) -> Body:
    """``arch_local_irq_disable``: soft-disable only; MSR[EE] stays on."""
    yield Store(paca(cpu, "soft_enabled"), 0)


def hard_irq_disable(k: Entry, cpu: int) -> Body:
    """``hard_irq_disable``: EE off, soft-disabled, HARD_DIS recorded."""
    yield IrqDisable()
    yield Store(paca(cpu, "soft_enabled"), 0)
    yield atomic_or(paca(cpu, "irq_happened"), PACA_IRQ_HARD_DIS)


def lazy_irq_pending(k: Entry, cpu: int) -> Body:
    happened = yield Load(paca(cpu, "irq_happened"))
    return bool(happened & ~PACA_IRQ_HARD_DIS)


def local_irq_enable(k: Entry, cpu: int) -> Body:
    """``arch_local_irq_restore(1)``: soft-enable, replay what was recorded, EE on."""
    yield Store(paca(cpu, "soft_enabled"), 1)
    happened = yield Load(paca(cpu, "irq_happened"))
    if happened:
        yield IrqDisable()  # hard-disable for a trusted __check_irq_replay
        while True:  # __check_irq_replay + __replay_interrupt, one vector at a time
            happened = yield Load(paca(cpu, "irq_happened"))
            vec = next(((bit, v) for bit, v in REPLAY_ORDER if happened & bit), None)
            yield Store(paca(cpu, "irq_happened"), happened & ~PACA_IRQ_HARD_DIS & ~(vec[0] if vec else 0))
            if vec is None:
                break
            yield Note(f"replay interrupt {vec[1]:#x}", event="irq_replay", data={"cpu": cpu, "vector": vec[1]})
            yield from host_interrupt_handler(k, cpu, vec[1])
    yield IrqEnable()


def masked_interrupt(k: Entry, cpu: int, bit: int) -> Body:
    """``MASKED_INTERRUPT``: soft-disabled, so record it for replay; the IPI is latched
    here, and ``MASKED_DEC_HANDLER`` sets DEC to its maximum (the tick is replayed)."""
    yield atomic_or(paca(cpu, "irq_happened"), bit)
    if bit == PACA_IRQ_EE:
        yield Store(mfrr(cpu), MFRR_NONE)
    if bit == PACA_IRQ_DEC:
        yield Store(dec_expired(cpu), 0)
    # PACA_IRQ_DBELL: nothing to quiesce, the doorbell was consumed when taken.
    yield Note(f"masked interrupt: irq_happened |= {bit:#x}", event="irq_masked", data={"cpu": cpu, "bit": bit})


def host_interrupt_handler(k: Entry, cpu: int, vector: int) -> Body:
    """The host's handler for a vector (``do_IRQ`` → ``icp_native_ipi_action``): the
    reschedule IPI does nothing beyond what its flag already says."""
    if vector == BOOK3S_INTERRUPT_EXTERNAL:
        pending = yield Load(mfrr(cpu))
        if pending != MFRR_NONE:
            yield Store(mfrr(cpu), MFRR_NONE)
        yield Note("smp_ipi_demux: reschedule IPI handled", event="host_ipi", data={"cpu": cpu})
    elif vector == BOOK3S_INTERRUPT_DECREMENTER:
        yield from timer_interrupt(k, cpu)
    elif vector in (BOOK3S_INTERRUPT_H_DOORBELL, BOOK3S_INTERRUPT_DOORBELL):
        yield Note("doorbell_exception: smp_ipi_demux", event="host_ipi", data={"cpu": cpu, "doorbell": True})
    # Other vectors (HMI) carry nothing this model looks at.


def h_doorbell_common(k: Entry, cpu: int) -> Body:
    """The hypervisor doorbell vector (0xe80, ``SOFTEN_TEST``); the doorbell is
    already consumed (taking it cleared it)."""
    yield Store(dbell(cpu), 0)
    soft = yield Load(paca(cpu, "soft_enabled"))
    if not soft:
        yield from masked_interrupt(k, cpu, PACA_IRQ_DBELL)
        return
    yield MtMsr(set_bits=MSR_IR | MSR_DR | MSR_RI, what="exception prologue: MMU on, RI set")
    yield from host_interrupt_handler(k, cpu, BOOK3S_INTERRUPT_H_DOORBELL)


def timer_interrupt(k: Entry, cpu: int) -> Body:
    """The host tick (``timer_interrupt`` → ``scheduler_tick`` → ``resched_curr``):
    the runner's timeslice is used up, so the handler itself sets
    TIF_NEED_RESCHED (no IPI and no flag set before the interrupt, unlike a
    remote ``resched_curr``)."""
    yield Store(dec_expired(cpu), 0)  # DEC reprogrammed for the next event
    yield Store(task(k.runner, "need_resched"), 1)
    yield Note("timer_interrupt: scheduler_tick sets need_resched", event="host_tick", data={"cpu": cpu})


def decrementer_common(k: Entry, cpu: int) -> Body:
    """The host decrementer vector (``EXCEPTION_PROLOG`` with ``SOFTEN_TEST``)."""
    soft = yield Load(paca(cpu, "soft_enabled"))
    if not soft:
        yield from masked_interrupt(k, cpu, PACA_IRQ_DEC)
        return
    yield MtMsr(set_bits=MSR_IR | MSR_DR | MSR_RI, what="exception prologue: MMU on, RI set")
    yield from timer_interrupt(k, cpu)


def hardware_interrupt_common(k: Entry, cpu: int) -> Body:
    """The external vector in the host (``EXCEPTION_PROLOG`` with ``SOFTEN_TEST``)."""
    soft = yield Load(paca(cpu, "soft_enabled"))
    if not soft:
        yield from masked_interrupt(k, cpu, PACA_IRQ_EE)
        return
    yield MtMsr(set_bits=MSR_IR | MSR_DR | MSR_RI, what="exception prologue: MMU on, RI set")
    yield from host_interrupt_handler(k, cpu, BOOK3S_INTERRUPT_EXTERNAL)


def system_reset_exception(k: Entry, cpu: int, srr1: int) -> Body:
    """A non-maskable interrupt (system reset / machine check) on the host."""
    yield Store(ghost(cpu, "nmi_pending"), 0)
    if not srr1 & MSR_RI:
        yield Note(f"cpu{cpu}: Unrecoverable System Reset (MSR[RI] clear)", event="unrecoverable", data={"cpu": cpu})
        yield Store(ghost(cpu, "unrecoverable_nmi"), 1)
        return
    yield Note(f"cpu{cpu}: system reset handled", event="nmi", data={"cpu": cpu})


# ------------------------------------------------------------------ the task R
def kvm_vcpu_thread(k: Entry, v: int) -> Body:
    """QEMU's vCPU thread: ``ioctl(KVM_RUN)`` until the guest shuts down; handle signals."""
    while True:
        ret = yield from kvmppc_vcpu_run_hv(k, v)
        reason = yield Load(vcpu(v, "exit_reason"))
        yield Note(f"KVM_RUN returned {ret} ({reason})", event="kvm_run_return", data={"vcpu": v, "ret": ret, "reason": reason})
        if ret == EINTR:
            yield Store(task(k.runner, "sigpending"), 0)  # QEMU's signal handler ran
            yield Note("signal handled by QEMU", event="signal_handled", data={"task": k.runner, "vcpu": v})
        if reason == "KVM_EXIT_SHUTDOWN":
            break
        yield Delay(k.userspace_dist, "QEMU in userspace")  # QEMU does what the kick asked for, then KVM_RUN again
    yield Store(vcpu(v, "thread_done"), 1)


def kvmppc_vcpu_run_hv(k: Entry, v: int) -> Body:
    sig = yield Load(task(k.runner, "sigpending"))
    if sig:
        yield Store(vcpu(v, "exit_reason"), "KVM_EXIT_INTR")
        return EINTR
    return (yield from kvmppc_run_vcpu(k, v))


def kvmppc_run_vcpu(k: Entry, v: int) -> Body:
    """V1, V2: make V runnable; run the vcore until V leaves RUNNABLE or a signal is pending."""
    vc, cpu = k.vc, k.cpu
    yield SpinLock(vcore(vc, "lock"))  # V1
    yield StoreN({vcpu(v, "ret"): RESUME_GUEST, vcpu(v, "trap"): 0, vcpu(v, "exit_reason"): None, vcpu(v, "state"): RUNNABLE})
    while True:  # V2
        state, sig = yield LoadN(vcpu(v, "state"), task(k.runner, "sigpending"))
        if state != RUNNABLE or sig:
            break
        resched = yield Load(task(k.runner, "need_resched"))
        if resched:  # preempt the vcore, cond_resched_lock
            yield Store(vcore(vc, "vcore_state"), VCORE_PREEMPT)
            yield SpinUnlock(vcore(vc, "lock"))
            yield from schedule(k, cpu)
            yield SpinLock(vcore(vc, "lock"))
            yield Store(vcore(vc, "vcore_state"), VCORE_INACTIVE)
            continue
        yield from kvmppc_run_core(k, vc, cpu)
    state = yield Load(vcpu(v, "state"))
    if state == RUNNABLE:  # a signal: -EINTR
        yield StoreN({vcpu(v, "state"): BUSY_IN_HOST, vcpu(v, "ret"): EINTR, vcpu(v, "exit_reason"): "KVM_EXIT_INTR"})
    ret = yield Load(vcpu(v, "ret"))
    yield SpinUnlock(vcore(vc, "lock"))
    return ret


def schedule(k: Entry, cpu: int) -> Body:
    """Another runnable task gets the CPU for a while; R comes back with the flag clear."""
    yield Note("schedule(): another task runs", event="resched", data={"cpu": cpu})
    yield Store(task(k.runner, "need_resched"), 0)


def prepare_threads(k: Entry, vc: int) -> Body:
    """C1: the last signal test before the guest (pre-fix): a vCPU with one leaves."""
    v = k.vcpu
    sig = yield Load(task(k.runner, "sigpending"))
    if sig:
        yield StoreN({vcpu(v, "state"): BUSY_IN_HOST, vcpu(v, "ret"): EINTR, vcpu(v, "exit_reason"): "KVM_EXIT_INTR"})
        return False
    return True


def recheck_signals(k: Entry, vc: int) -> Body:
    """C6′ (new with seed 004): any runnable vCPU's task with a signal pending?"""
    sig = yield Load(task(k.runner, "sigpending"))
    return bool(sig)


def kvmppc_run_core(k: Entry, vc: int, cpu: int) -> Body:
    """C1…X3 (entered and left with vc->lock held)."""
    v = k.vcpu
    if not (yield from prepare_threads(k, vc)):  # C1
        return
    if k.patch("entry-irq-hard-disable"):
        if k.radix:
            yield from kvmppc_prepare_radix_vcpu(k, v, cpu)  # C3′: cross-calls with irqs on
        yield from local_irq_disable(k, cpu)  # C4′
        yield from hard_irq_disable(k, cpu)  # C5′
        pending = yield from lazy_irq_pending(k, cpu)  # C6′
        resched = yield Load(task(k.runner, "need_resched"))
        sig = yield from recheck_signals(k, vc)
        if pending or resched or sig:
            yield Note("kvmppc_run_core: back out before entry", event="entry_abort", data={"cpu": cpu, "vcpu": v, "irq": pending, "resched": bool(resched), "signal": sig})
            yield from local_irq_enable(k, cpu)
            yield Store(vcore(vc, "vcore_state"), VCORE_INACTIVE)
            return
    yield from kvmppc_start_thread(k, v, cpu)  # C3 / C7′
    yield Store(vcore(vc, "vcore_state"), VCORE_RUNNING)  # C4
    yield Store(f"rq[{cpu}].preempt_count", 1)
    yield SpinUnlock(vcore(vc, "lock"))
    trap = yield from __kvmppc_vcore_entry(k, cpu, v)  # C6 … X2
    if k.patch("entry-irq-hard-disable"):
        yield from set_irq_happened(k, cpu, trap)  # X3′
    yield SpinLock(vcore(vc, "lock"))
    yield Store(vcore(vc, "vcore_state"), VCORE_EXITING)
    if k.patch("entry-irq-hard-disable"):
        yield from local_irq_enable(k, cpu)  # replay
    yield Store(f"rq[{cpu}].preempt_count", 0)
    yield from post_guest_process(k, vc, v)
    yield Store(vcore(vc, "vcore_state"), VCORE_INACTIVE)


def set_irq_happened(k: Entry, cpu: int, trap: int) -> Body:
    """X3′: the interrupt that made the guest exit becomes a replay."""
    bit = {BOOK3S_INTERRUPT_EXTERNAL: PACA_IRQ_EE, BOOK3S_INTERRUPT_H_DOORBELL: PACA_IRQ_DBELL, BOOK3S_INTERRUPT_HMI: PACA_IRQ_HMI}.get(trap)
    if bit:
        yield atomic_or(paca(cpu, "irq_happened"), bit)


def post_guest_process(k: Entry, vc: int, v: int) -> Body:
    trap = yield Load(vcpu(v, "trap"))
    ret = yield from kvmppc_handle_exit_hv(k, v, trap)
    if ret != RESUME_GUEST:
        yield StoreN({vcpu(v, "ret"): ret, vcpu(v, "state"): BUSY_IN_HOST, vcpu(v, "trap"): 0})
    else:
        yield Store(vcpu(v, "trap"), 0)


def kvmppc_handle_exit_hv(k: Entry, v: int, trap: int) -> Body:
    """0x500 / 0xe80 / 0xe60 / HDEC: the host wanted the CPU; resume the guest.  An hcall
    the model's guest makes is its shutdown: to userspace."""
    if trap != BOOK3S_INTERRUPT_SYSCALL:
        return RESUME_GUEST
    yield Store(vcpu(v, "exit_reason"), "KVM_EXIT_SHUTDOWN")
    return RESUME_HOST


# --------------------------------------------------- radix TLB-flush cross-calls
def kvmppc_prepare_radix_vcpu(k: Entry, v: int, pcpu: int) -> Body:
    """A radix vCPU that moved core: flush the old core's TLB (may cross-call)."""
    prev = yield Load(vcpu(v, "prev_cpu"))
    if prev is not None and prev // k.threads_per_core != pcpu // k.threads_per_core:
        yield from radix_flush_cpu(k, pcpu, prev)
    yield Store(vcpu(v, "prev_cpu"), pcpu)


def radix_flush_cpu(k: Entry, cpu: int, target: int) -> Body:
    yield from smp_call_function_single(k, cpu, target)


def smp_call_function_single(k: Entry, cpu: int, target: int) -> Body:
    """``smp_call_function_single(target, do_nothing, NULL, 1)``: IPI, spin until done."""
    yield Store(csd(cpu), 1)  # csd_lock
    yield smp_mb()
    yield SendIPI(mfrr(target), IPI_PRIORITY, f"cpu{target}")
    yield WaitUntil((csd(cpu),), lambda busy: not busy, what=f"csd_lock_wait (call on cpu{target})")


def xcall_target_idle(k: Entry, cpu: int) -> Body:
    """A CPU of the vCPU's previous core: idle with interrupts on, answers cross-calls."""
    yield IrqEnable()
    yield WaitUntil((ghost(cpu, "halt"),), lambda h: bool(h), what="idle")


def generic_smp_call_function_single_interrupt(k: Entry, cpu: int) -> Body:
    yield MtMsr(set_bits=MSR_IR | MSR_DR | MSR_RI, what="exception prologue: MMU on, RI set")
    yield Store(mfrr(cpu), MFRR_NONE)
    yield Store(csd(k.cpu), 0)  # do_nothing(); csd_unlock


# ------------------------------------------------------------ entry and exit
def kvmppc_start_thread(k: Entry, v: int, cpu: int) -> Body:
    """C3: point the PACA at the vCPU.  Before seed 004 the radix preparation is here."""
    if k.radix and not k.patch("entry-irq-hard-disable"):
        yield from kvmppc_prepare_radix_vcpu(k, v, cpu)
    yield StoreN({hstate(cpu, "kvm_vcpu"): v, hstate(cpu, "kvm_vcore"): k.vc})
    # This and the C code up to __kvmppc_vcore_entry take time (both kernels).
    yield Delay(Param("entry_path_ns"), "start threads, unlock, guest_enter, save host state")


def __kvmppc_vcore_entry(k: Entry, cpu: int, v: int) -> Body:
    """C6–C8 and the return X2.  Before seed 004 it captures ``host_msr`` (EE on) and
    hard-disables here; after it neither (already off), and it returns the trap."""
    if not k.patch("entry-irq-hard-disable"):
        yield Store(hstate(cpu, "host_msr"), MSR_KERNEL)  # captured with EE=1
        yield IrqDisable()  # C6: the first point where an IPI stays pending
    else:
        yield Store(hstate(cpu, "host_msr"), MSR_KERNEL & ~MSR_EE)  # in the trampoline, EE=0
    # C7: HDEC := DEC, the rest of the host's tick.  C8: the trampoline drops RI and the MMU.
    yield MtMsr(clear_bits=MSR_RI | MSR_IR | MSR_DR, what="kvmppc_hv_entry_trampoline: RI off, rfid to real mode")
    trap, virt = yield from kvmppc_hv_entry(k, cpu, v)
    return (yield from kvmppc_call_hv_entry_return(k, cpu, trap, virt))


def kvmppc_hv_entry(k: Entry, cpu: int, v: int) -> Body:
    """Partition switch and guest entry; returns (trap, exit taken with the MMU on)."""
    c = cpu // k.threads_per_core
    yield Store(core(c, "lpid"), 1)
    yield Store(hstate(cpu, "in_guest"), 1)
    trap = yield from guest_run(k, cpu, v)
    return (yield from kvmppc_interrupt_hv(k, cpu, v, trap))


def guest_run(k: Entry, cpu: int, v: int) -> Body:
    """The guest: shut down when its rounds are done, else run until the HDEC expires
    (its timeslice) unless a host interrupt makes it exit first."""
    c = cpu // k.threads_per_core
    try:
        yield MtMsr(set_bits=MSR_GUEST, clear_bits=MSR_HV | MSR_PR, what="hrfid: enter guest")
        yield Note("guest runs", event="guest_enter", data={"vcpu": v, "cpu": cpu})
        left = yield Load(vcpu(v, "guest_rounds"))
        if left <= 0:
            yield MtMsr(set_bits=MSR_HV, clear_bits=MSR_GUEST, what="sc 1 (H_SHUTDOWN)")
            yield Note("guest exit (hcall)", event="guest_exit", data={"vcpu": v, "cpu": cpu, "trap": BOOK3S_INTERRUPT_SYSCALL})
            return BOOK3S_INTERRUPT_SYSCALL
        yield Store(vcpu(v, "guest_rounds"), left - 1)
        got = yield WaitUntil((core(c, "hdec_expired"),), lambda h: bool(h), timeout=HDEC_AT_ENTRY, what="guest runs until HDEC expires")
        if got is TIMEOUT:
            yield Store(core(c, "hdec_expired"), 1)  # the timeslice is over: HDEC interrupt next
        yield WaitUntil((core(c, "hdec_expired"),), lambda h: False, what="guest (HDEC pending)")
        return 0  # not reached: the HDEC interrupt exits
    except GuestInterrupt as gi:
        reason = "hdec" if gi.trap == BOOK3S_INTERRUPT_HV_DECREMENTER else "external" if gi.trap == BOOK3S_INTERRUPT_EXTERNAL else hex(gi.trap)
        yield Note("guest exit (interrupt)", event="guest_exit", data={"vcpu": v, "cpu": cpu, "trap": gi.trap, "reason": reason})
        return gi.trap


def kvmppc_interrupt_hv(k: Entry, cpu: int, v: int, trap: int) -> Body:
    """X1: the exit path.  A radix guest's interrupt can arrive with the MMU on (AIL); the
    fix sets MSR[RI] as soon as SRR0/1 and HSRR0/1 are saved."""
    c = cpu // k.threads_per_core
    virt = k.radix and trap in (BOOK3S_INTERRUPT_EXTERNAL, BOOK3S_INTERRUPT_HV_DECREMENTER)
    ri = MSR_RI if k.patch("entry-irq-hard-disable") else 0
    if virt:
        yield MtMsr(set_bits=MSR_IR | MSR_DR | ri, what="relocation-on interrupt; save SRR0/1, HSRR0/1" + (", set RI" if ri else ""))
    elif ri:
        yield MtMsr(set_bits=ri, what="save SRR0/1, HSRR0/1, set RI")
    if trap == BOOK3S_INTERRUPT_H_DOORBELL:
        yield Store(dbell(cpu), 0)  # taking the doorbell consumed it (edge-triggered)
    yield StoreN({vcpu(v, "trap"): trap, hstate(cpu, "in_guest"): 0})
    yield StoreN({core(c, "lpid"): 0, core(c, "hdec_expired"): 0})  # host partition; HDEC = max
    return trap, virt


def kvmppc_call_hv_entry_return(k: Entry, cpu: int, trap: int, virt: bool) -> Body:
    """X2: back in ``kvmppc_call_hv_entry``.  Before seed 004: branch into the host's handler
    for an external interrupt, and rfid / mtmsrd with ``host_msr`` (EE on).  After: return the
    trap with EE still off."""
    host_msr = yield Load(hstate(cpu, "host_msr"))
    if k.patch("entry-irq-hard-disable"):
        if not virt:
            yield MtMsr(set_bits=host_msr & (MSR_IR | MSR_DR | MSR_RI), what="rfid to host_msr (EE off)")
        return trap
    if trap in (BOOK3S_INTERRUPT_EXTERNAL, BOOK3S_INTERRUPT_H_DOORBELL):
        # jump to the host's (relocation-on) external vector, or "ba 0xe80": the
        # doorbell the guest exit consumed is handled as the host's
        yield from host_interrupt_handler(k, cpu, trap)
    if virt:
        if host_msr & MSR_EE:  # .Lvirt_return: were interrupts hard-enabled? then re-enable them
            yield MtMsr(set_bits=MSR_EE | MSR_RI, what=".Lvirt_return: mtmsrd EE|RI")
    else:
        yield MtMsr(set_bits=host_msr & (MSR_IR | MSR_DR | MSR_RI), what="rfid to host_msr")
        yield IrqEnable()
    return trap


# ---------------------------------------------------------------- environment
def smp_send_ipi(k: Entry, cpu: int) -> Body:
    """``smp_muxed_ipi_message_pass``: through the interrupt controller (XICS: the
    MFRR, level) or, with ``faults.ipi = "doorbell"``, a POWER9 ``msgsnd`` doorbell
    (edge-triggered)."""
    if k.cfg.faults.ipi == "doorbell":
        yield SendIPI(dbell(cpu), 1, f"cpu{cpu}")
    else:
        yield SendIPI(mfrr(cpu), IPI_PRIORITY, f"cpu{cpu}")


def kick_process(k: Entry, name: str) -> Body:
    """``signal_wake_up`` for a running task: flag it, then IPI its CPU (S1, S3)."""
    yield Store(task(name, "sigpending"), 1)
    yield smp_mb()
    yield from smp_send_ipi(k, k.cpu)


def signal_source(k: Entry, budget: int) -> Body:
    """Fault: a signal to the runner's task at any time (QEMU kicking its vCPU thread)."""
    for _ in range(budget):
        go = yield Choose((k.runner, None), what="signal target (None: no more)")
        if go is None:
            return
        done = yield Load(vcpu(k.vcpu, "thread_done"))
        if done:
            return
        yield Note(f"signal to {k.runner}", event="signal", data={"task": k.runner, "vcpu": k.vcpu})
        yield from kick_process(k, k.runner)


def qemu_kick_source(k: Entry) -> Body:
    """Signal source of an open-ended workload: QEMU kicks its vCPU thread (``qemu_cpu_kick``: SIG_IPI) once per
    ``KVM_RUN``, an exponential time after the thread made its vCPU runnable (V1).  A kick
    while one is pending would be merged by the kernel (``legacy_queue``), so the next is
    drawn only after QEMU has handled the last."""
    v = k.vcpu
    while True:
        yield WaitUntil((vcpu(v, "state"), task(k.runner, "sigpending")), lambda st, sig: st == RUNNABLE and not sig, what="vCPU thread in KVM_RUN, no kick pending")
        yield Delay(exp_us(k.cfg.faults.mean_interval_us), "until QEMU kicks the vCPU thread")
        yield Note(f"signal to {k.runner}", event="signal", data={"task": k.runner, "vcpu": v})
        yield from kick_process(k, k.runner)


def resched_source(k: Entry, budget: int) -> Body:
    """Fault: another CPU asks P to reschedule its current task (``resched_curr``)."""
    for _ in range(budget):
        go = yield Choose((k.cpu, None), what="reschedule request (None: no more)")
        if go is None:
            return
        done = yield Load(vcpu(k.vcpu, "thread_done"))
        if done:
            return
        yield Note(f"resched_curr(cpu{k.cpu})", event="resched_request", data={"cpu": k.cpu, "vcpu": k.vcpu})
        yield Store(task(k.runner, "need_resched"), 1)
        yield smp_mb()
        yield from smp_send_ipi(k, k.cpu)


def host_tick_source(k: Entry, budget: int) -> Body:
    """Fault: the host's DEC expires on P (a scheduler tick), at any time.  In the
    guest the host DEC is not delivered (the guest's DEC is loaded and HDEC ends
    the timeslice); it is taken, or latched if soft-disabled, once P is back in
    the host with EE on."""
    for _ in range(budget):
        go = yield Choose((k.cpu, None), what="host tick (None: no more)")
        if go is None:
            return
        done = yield Load(vcpu(k.vcpu, "thread_done"))
        if done:
            return
        yield Note(f"host DEC expires on cpu{k.cpu}", event="host_tick_due", data={"cpu": k.cpu})
        yield Store(dec_expired(k.cpu), 1)


def nmi_source(k: Entry, budget: int) -> Body:
    """Fault: a non-maskable interrupt (system reset by NMI IPI, machine check) to P."""
    for _ in range(budget):
        go = yield Choose((k.cpu, None), what="NMI to the runner's CPU (None: no more)")
        if go is None:
            return
        done = yield Load(vcpu(k.vcpu, "thread_done"))
        if done:
            return
        yield Note(f"NMI to cpu{k.cpu}", event="nmi_sent", data={"cpu": k.cpu})
        yield SendIPI(ghost(k.cpu, "nmi_pending"), 1, f"cpu{k.cpu}")


# ------------------------------------------------------------------- machine
def _hw_thread(k: Entry, cpu: int, ref: list[Any]) -> HwThread:
    c = cpu // k.threads_per_core
    nmi = ghost(cpu, "nmi_pending")
    irq_locs = (mfrr(cpu), core(c, "hdec_expired"), nmi, dec_expired(cpu), dbell(cpu))

    def pending(mem: dict[str, Any]) -> str | None:
        msr = ref[0].msr
        if mem[nmi] and msr & MSR_HV and msr & MSR_IR:
            return "nmi"
        if not msr & MSR_EE:
            return None
        if mem[mfrr(cpu)] != MFRR_NONE:
            return "external"
        if mem[dbell(cpu)]:
            return "doorbell"
        if mem[core(c, "hdec_expired")] and not msr & MSR_HV:
            return "hdec"
        if mem[dec_expired(cpu)] and msr & MSR_HV:
            return "dec"
        return None

    def vector(kind: str) -> Any:
        a = ref[0]
        if kind == "nmi":
            return system_reset_exception(k, cpu, a.msr)
        if not a.msr & MSR_HV:
            traps = {"external": BOOK3S_INTERRUPT_EXTERNAL, "doorbell": BOOK3S_INTERRUPT_H_DOORBELL}
            return GuestInterrupt(traps.get(kind, BOOK3S_INTERRUPT_HV_DECREMENTER))
        if cpu != k.cpu:
            return generic_smp_call_function_single_interrupt(k, cpu)
        if kind == "dec":
            return decrementer_common(k, cpu)
        if kind == "doorbell":
            return h_doorbell_common(k, cpu)
        return hardware_interrupt_common(k, cpu)

    def never(*_a: Any) -> Any:
        raise AssertionError("no nap in the entry model")

    return HwThread(irq_locs, pending, lambda mem: None, vector, never, never, nmi=bool(k.cfg.faults.nmi))


ENTRY_INVARIANTS: dict[str, str] = {
    "signal-exits-guest": "bounded liveness (checked as safety): a signal or reschedule request for the task running a vCPU makes the guest exit "
    "before its timeslice ends: no guest runs out its HDEC while that task has TIF_SIGPENDING or TIF_NEED_RESCHED set",
    "no-xcall-irqs-off": "safety: no CPU waits for a synchronous cross-call (smp_call_function_single) with interrupts soft- or hard-disabled",
    "no-nmi-ri-clear": "safety: no interrupt is taken while MSR[RI] is clear (the kernel reports it as unrecoverable)",
    "xcall-done-before-guest": "safety: a radix vCPU that moved core runs guest code only after the cross-call to its previous core "
    "completed: radix_flush_cpu marks the old core's need_tlb_flush and calls smp_call_function_single(prev_cpu, "
    "do_nothing, NULL, 1) with wait = 1, so the old core has taken the IPI (left any guest, to flush on its next entry) "
    "before this vCPU's guest may use translations the old core still caches: the guest never runs while the runner's "
    "call_single_data is locked or its IPI is still pending at the target (MFRR not back to 0xff)",
    # Seed 004's bookkeeping (issue 17): what the fixed entry path relies on.
    "irq-replayed-before-guest": "safety: the guest never runs while an interrupt the host took soft-disabled waits in paca->irq_happened "
    "(PACA_IRQ_EE/DBELL/DEC/HMI): kvmppc_run_core hard-disables, then lazy_irq_pending() sends it back out to replay it "
    "(local_irq_enable), so a host interrupt is never held over a whole guest timeslice; one that arrives after the "
    "hard-disable stays pending in the ICP and exits the guest at once",
    "lazy-irq-consistent": "safety: the lazy interrupt state agrees with MSR[EE] at every step: PACA_IRQ_HARD_DIS in irq_happened only while "
    "EE is off (hard_irq_disable turns EE off first; the replay clears the bit before EE goes back on), and a recorded "
    "interrupt with soft_enabled = 1 only while EE is off (arch_local_irq_restore replaying it): soft- and hard-enabled "
    "with a recorded interrupt would leave it unreplayed until the next local_irq_enable "
    "(the WARN_ONs of arch_local_irq_restore and CONFIG_PPC_IRQ_SOFT_MASK_DEBUG); and outside the vcore's run "
    "(vc->lock free, the vcore INACTIVE, the vCPU not RUNNABLE) the task runs soft- and hard-enabled, as "
    "kvmppc_run_core's local_irq_enable leaves it, except inside an interrupt handler",
    "entry-guest-context": "safety: the runner's CPU runs guest code only in the guest's context: LPIDR the guest's, kvm_hstate.in_guest = 1, "
    "kvm_vcpu its vCPU, the vcore RUNNING and preemption disabled (preempt_count from kvmppc_run_core); and host code "
    "with interrupts fully on (soft- and hard-enabled) runs only with LPIDR = host and in_guest = 0 "
    "(kvmppc_interrupt_hv restores both before the host takes any interrupt); outside the vcore's run the MMU is on "
    "(kvmppc_call_hv_entry_return's rfid to host_msr)",
    "entry-vcore-state": "safety: with vc->lock free the vcore is INACTIVE, PREEMPT or RUNNING, never EXITING (kvmppc_run_core sets EXITING "
    "and INACTIVE under vc->lock), preemption is disabled exactly while it is RUNNING (preempt_disable before "
    "the unlock of C4, preempt_enable after the exit), and an INACTIVE vcore has no RUNNABLE vCPU (kvmppc_run_vcpu "
    "makes it BUSY_IN_HOST before it unlocks and returns from KVM_RUN)",
}

#: The entry model's liveness: the vCPU thread finishes its workload.
ENTRY_LIVENESS: dict[str, str] = {
    "vcpus-complete": "liveness: the vCPU thread runs its guest rounds to the end and returns to QEMU (checked when the run ends)",
    "latched-irq-replayed": f"bounded liveness: an interrupt latched in irq_happened (taken while soft-disabled, or recorded by a guest exit) "
    f"is replayed within {LATCHED_IRQ_BOUND} steps: the entry path that backs out because lazy_irq_pending() saw it must re-enable "
    "(local_irq_enable replays it); a back-out that left interrupts off would retry the entry forever, and a check without this "
    "property would only run into its step bound",
}


def build_world(w: World, cfg: ScenarioConfig, patches: frozenset[str]) -> None:
    if cfg.machine.cpu != "POWER9" and any(vm.radix for vm in cfg.vm):
        raise ConfigError("vm.radix", "radix guests need POWER9")
    if len(cfg.vm) != 1 or len(cfg.vm[0].vcpus) != 1:
        raise ConfigError("vm", "the entry model runs one VM with one vCPU (one vcore on the runner's CPU)")
    if any(vm.pin is not None for vm in cfg.vm):
        raise ConfigError("vm.pin", "the entry model runs its vCPU on the runner's CPU (pin is a vcore-model field)")
    k = Entry(cfg, patches)
    # Not memory (as in kvm/model.py): SPRs (LPIDR, HDEC), the XICS
    # (cache-inhibited MMIO) and ghost state bypass store buffers and propagation.
    w.uncached = ("core[", "xics[", "ghost[")
    cpu, v, vc = k.cpu, k.vcpu, k.vc
    cpus = [cpu] + ([k.prev_cpu] if k.prev_cpu is not None else [])
    for c in sorted({x // k.threads_per_core for x in cpus}):
        w.loc(core(c, "lpid"), 0)
        w.loc(core(c, "hdec_expired"), 0)
    for x in cpus:
        w.loc(mfrr(x), MFRR_NONE)
        w.loc(ghost(x, "nmi_pending"), 0)
        w.loc(ghost(x, "halt"), 0)
        w.loc(csd(x), 0)
        w.loc(dec_expired(x), 0)
        w.loc(dbell(x), 0)
    w.loc(ghost(cpu, "unrecoverable_nmi"), 0)
    w.loc(paca(cpu, "soft_enabled"), 1)
    w.loc(paca(cpu, "irq_happened"), 0)
    for f, init in (("host_msr", 0), ("kvm_vcpu", None), ("kvm_vcore", None), ("in_guest", 0)):
        w.loc(hstate(cpu, f), init)
    w.loc(f"rq[{cpu}].preempt_count", 0)
    w.loc(task(k.runner, "sigpending"), 0)
    w.loc(task(k.runner, "need_resched"), 0)
    w.loc(vcore(vc, "lock"), 0)
    w.loc(vcore(vc, "vcore_state"), VCORE_INACTIVE)
    for f, init in (("state", BUSY_IN_HOST), ("ret", 0), ("trap", 0), ("exit_reason", None), ("thread_done", 0), ("prev_cpu", k.prev_cpu), ("guest_rounds", OPEN_ENDED_ROUNDS if cfg.workload.open_ended else cfg.workload.rounds)):
        w.loc(vcpu(v, f), init)
    ref: list[Any] = [None]
    ref[0] = w.spawn(f"cpu{cpu}", kvm_vcpu_thread(k, v), hw=_hw_thread(k, cpu, ref), msr=MSR_KERNEL, role="cpu")
    if k.prev_cpu is not None:
        tref: list[Any] = [None]
        tref[0] = w.spawn(f"cpu{k.prev_cpu}", xcall_target_idle(k, k.prev_cpu), daemon=True, hw=_hw_thread(k, k.prev_cpu, tref), msr=MSR_KERNEL & ~MSR_EE, role="cpu")
    if cfg.faults.signal:
        # Open-ended: kicks for the whole run (the budget bounds the closed workload only).
        w.spawn("signal", qemu_kick_source(k) if cfg.workload.open_ended else signal_source(k, cfg.faults.signal), role="env")
    if cfg.faults.resched:
        w.spawn("resched", resched_source(k, cfg.faults.resched), role="env")
    if cfg.faults.nmi:
        w.spawn("nmi", nmi_source(k, cfg.faults.nmi), role="env")
    if cfg.faults.host_tick:
        w.spawn("host_tick", host_tick_source(k, cfg.faults.host_tick), role="env")
    install_entry_monitors(w, k, cfg.invariants)


def install_entry_monitors(w: World, k: Entry, selected: list[str] | None) -> None:
    applicable = [*ENTRY_INVARIANTS, *ENTRY_LIVENESS, "no-deadlock"]
    want = set(applicable) if selected is None else set(selected)
    bad = sorted(want - set(applicable))
    if bad:
        raise ConfigError("invariants", f"{bad[0]!r} does not apply to the entry model (applicable: {', '.join(applicable)})")
    cpu, c = k.cpu, k.cpu // k.threads_per_core
    p_loc = f"cpu:cpu{cpu}"
    flags = (task(k.runner, "sigpending"), task(k.runner, "need_resched"))
    hdec = core(c, "hdec_expired")

    def signal_exits_guest(ex: Any) -> str | None:
        a = ex.actors[0]
        if a.msr & MSR_HV or not ex.mem[hdec]:
            return None
        sig, resched = (ex.mem[f] for f in flags)
        if sig or resched:
            what = "a signal" if sig else "a reschedule request"
            return f"cpu{cpu} runs the guest out to the end of its timeslice (HDEC) with {what} pending for {k.runner}"
        return None

    def no_xcall_irqs_off(ex: Any) -> str | None:
        if ex.mem[csd(cpu)]:
            a = ex.actors[0]
            if a.stack and a.stack[-1].kind == IRQ:
                return None  # an interrupt handler on top of the wait: EE is off by design
            if not a.msr & MSR_EE or not ex.mem[paca(cpu, "soft_enabled")]:
                state = "hard" if not a.msr & MSR_EE else "soft"
                return f"cpu{cpu} waits for a cross-call (smp_call_function_single) with interrupts {state}-disabled"
        return None

    xcall = (csd(cpu), *((mfrr(k.prev_cpu),) if k.prev_cpu is not None else ()))

    def xcall_done_before_guest(ex: Any) -> str | None:
        if ex.actors[0].msr & MSR_HV:
            return None
        locked, *pending = (ex.mem[x] for x in xcall)
        if locked or (pending and pending[0] != MFRR_NONE):
            return f"cpu{cpu} runs the guest before its cross-call to cpu{k.prev_cpu} completed (csd locked = {locked}, target MFRR = {pending[0] if pending else None})"
        return None

    def no_nmi_ri_clear(ex: Any) -> str | None:
        if ex.mem[ghost(cpu, "unrecoverable_nmi")]:
            return f"cpu{cpu} took a non-maskable interrupt with MSR[RI] clear: unrecoverable"
        return None

    irq_state = (paca(cpu, "soft_enabled"), paca(cpu, "irq_happened"))

    def irq_replayed_before_guest(ex: Any) -> str | None:
        if ex.actors[0].msr & MSR_HV:
            return None
        happened = ex.mem[paca(cpu, "irq_happened")]
        if happened & ~PACA_IRQ_HARD_DIS:
            return f"cpu{cpu} runs the guest with irq_happened = {happened:#x}: a host interrupt taken soft-disabled was neither replayed nor made the entry back out"
        return None

    outside = (vcore(k.vc, "lock"), vcore(k.vc, "vcore_state"), vcpu(k.vcpu, "state"))

    def lazy_irq_consistent(ex: Any) -> str | None:
        a = ex.actors[0]
        msr = a.msr
        soft, happened = (ex.mem[x] for x in irq_state)
        lock, vstate, state = (ex.mem[x] for x in outside)
        outside_run = not lock and vstate == VCORE_INACTIVE and state != RUNNABLE and a.status == RUN and not (a.stack and a.stack[-1].kind == IRQ)
        if outside_run and (not soft or not msr & MSR_EE):  # QEMU, the ioctl path: interrupts fully on
            return f"cpu{cpu} is back outside the vcore's run with interrupts {'soft' if not soft else 'hard'}-disabled (soft_enabled = {soft}, MSR[EE] = {int(bool(msr & MSR_EE))})"
        if not msr & MSR_HV or not msr & MSR_EE:
            return None  # in the guest the host's lazy state is frozen; EE off is always consistent
        if happened & PACA_IRQ_HARD_DIS:
            return f"cpu{cpu} has MSR[EE] on while irq_happened says PACA_IRQ_HARD_DIS ({happened:#x})"
        if soft and happened:
            return f"cpu{cpu} is soft- and hard-enabled with irq_happened = {happened:#x}: a recorded interrupt is not replayed"
        return None

    ctx = (core(c, "lpid"), hstate(cpu, "in_guest"), hstate(cpu, "kvm_vcpu"), vcore(k.vc, "vcore_state"), f"rq[{cpu}].preempt_count")

    def entry_guest_context(ex: Any) -> str | None:
        msr = ex.actors[0].msr
        lpid, ing, kv, state, preempt = (ex.mem[x] for x in ctx)
        if not msr & MSR_HV:
            if lpid != 1 or not ing or kv != k.vcpu or state != VCORE_RUNNING or not preempt:
                return f"cpu{cpu} runs guest code with LPIDR = {lpid}, in_guest = {ing}, kvm_vcpu = {kv}, vcore_state = {_VCORE_STATE.get(state, state)}, preempt_count = {preempt}"
            return None
        if msr & MSR_EE and msr & MSR_IR and ex.mem[paca(cpu, "soft_enabled")] and (lpid != 0 or ing):
            return f"cpu{cpu} runs host code with interrupts on while LPIDR = {lpid} and in_guest = {ing}"
        a = ex.actors[0]
        lock, vst, st = (ex.mem[x] for x in outside)
        in_irq = bool(a.stack) and a.stack[-1].kind == IRQ  # an interrupt is taken in real mode
        if not lock and vst == VCORE_INACTIVE and st != RUNNABLE and a.status == RUN and not in_irq and (msr & (MSR_IR | MSR_DR)) != MSR_IR | MSR_DR:
            return f"cpu{cpu} is back outside the vcore's run in real mode (MSR[IR,DR] off): host_msr was not restored"
        return None

    vstate = (vcore(k.vc, "lock"), vcore(k.vc, "vcore_state"), f"rq[{cpu}].preempt_count")

    def entry_vcore_state(ex: Any) -> str | None:
        lock, state, preempt = (ex.mem[x] for x in vstate)
        if lock:
            return None
        if state == VCORE_EXITING:
            return "vcore 0 is EXITING with vc->lock free"
        if state == VCORE_INACTIVE and ex.mem[vcpu(k.vcpu, "state")] == RUNNABLE:
            return "vcpu 0 is RUNNABLE while its vcore is INACTIVE with vc->lock free: KVM_RUN left it runnable"
        if bool(preempt) != (state == VCORE_RUNNING):
            return f"vcore 0 is {_VCORE_STATE.get(state, state)} with vc->lock free but preempt_count = {preempt}"
        return None

    table = [
        Invariant("signal-exits-guest", ENTRY_INVARIANTS["signal-exits-guest"], (p_loc, hdec, *flags), signal_exits_guest),
        Invariant("irq-replayed-before-guest", ENTRY_INVARIANTS["irq-replayed-before-guest"], (p_loc, paca(cpu, "irq_happened")), irq_replayed_before_guest),
        Invariant("lazy-irq-consistent", ENTRY_INVARIANTS["lazy-irq-consistent"], (p_loc, *irq_state, *outside), lazy_irq_consistent),
        Invariant("entry-guest-context", ENTRY_INVARIANTS["entry-guest-context"], (p_loc, *ctx, paca(cpu, "soft_enabled"), *outside), entry_guest_context),
        Invariant("entry-vcore-state", ENTRY_INVARIANTS["entry-vcore-state"], (*vstate, vcpu(k.vcpu, "state")), entry_vcore_state),
        Invariant("no-xcall-irqs-off", ENTRY_INVARIANTS["no-xcall-irqs-off"], (p_loc, csd(cpu), paca(cpu, "soft_enabled")), no_xcall_irqs_off),
        Invariant("no-nmi-ri-clear", ENTRY_INVARIANTS["no-nmi-ri-clear"], (ghost(cpu, "unrecoverable_nmi"),), no_nmi_ri_clear),
        Invariant("xcall-done-before-guest", ENTRY_INVARIANTS["xcall-done-before-guest"], (p_loc, *xcall), xcall_done_before_guest),
    ]
    for inv in table:
        if inv.name in want:
            w.add_invariant(inv)
    if "vcpus-complete" in want:
        done = vcpu(k.vcpu, "thread_done")
        w.add_liveness(Liveness("vcpus-complete", ENTRY_LIVENESS["vcpus-complete"], (done,), trigger=lambda ex: True, goal=lambda ex: bool(ex.mem[done]), bound=None))
    latched = lambda ex: bool(ex.mem[paca(cpu, "irq_happened")] & ~PACA_IRQ_HARD_DIS)
    if "latched-irq-replayed" in want:
        w.add_liveness(
            Liveness(
                "latched-irq-replayed",
                ENTRY_LIVENESS["latched-irq-replayed"],
                (paca(cpu, "irq_happened"),),
                trigger=latched,
                goal=lambda ex: not latched(ex),
                bound=LATCHED_IRQ_BOUND,
            )
        )
    w.check_deadlock = "no-deadlock" in want


_VCORE_STATE = {VCORE_INACTIVE: "INACTIVE", VCORE_PREEMPT: "PREEMPT", VCORE_RUNNING: "RUNNING", VCORE_EXITING: "EXITING"}
