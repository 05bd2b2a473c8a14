"""Real-mode KVM code (``arch/powerpc/kvm/book3s_hv_rmhandlers.S``).

Every thread of a vcore runs this in hypervisor real mode with interrupts
off: entry (``kvmppc_hv_entry``), the guest, the exit path
(``kvmppc_interrupt`` onwards), and the secondary threads' way back to nap
(``secondary_nap``, ``kvm_no_guest``); plus H_CEDE's nap inside the guest.
Step labels (E2, X6, ...) follow shared/reference/smt-vcores.md §2.5.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vcoresim.engine.msr import MSR_HV, MSR_PR
from vcoresim.engine.ops import (
    RMW,
    Choose,
    Delay,
    Load,
    MtMsr,
    Nap,
    Note,
    ResumeFrame,
    SaveFrame,
    SendIPI,
    SetTimer,
    Store,
    StoreN,
    WaitUntil,
    atomic_add,
    clear_bit,
    isync,
    lwsync,
    sync,
)
from vcoresim.engine.timing import Param, Until
from vcoresim.engine.world import Body
from vcoresim.kvm.state import (
    BOOK3S_INTERRUPT_HV_DECREMENTER,
    BOOK3S_INTERRUPT_SYSCALL,
    IPI_PRIORITY,
    KVM_GUEST_MODE_GUEST,
    KVM_GUEST_MODE_NONE,
    KVM_HWTHREAD_IN_KVM,
    KVM_HWTHREAD_IN_NAP,
    LPID_HOST,
    LPID_RESERVED,
    MFRR_NONE,
    NAPPING_CEDE,
    VCORE_EXIT_SHIFT,
    core,
    hstate,
    mfrr,
    paca,
    vcore,
    vcpu,
    woke_with_req,
)
from vcoresim.machine.interrupts import MSR_GUEST, GuestInterrupt
from vcoresim.machine.thread import dec_expired, lpcr_pece1
from vcoresim.machine.xics import XICS_IPI, xirr

if TYPE_CHECKING:
    from vcoresim.kvm.context import Kvm

# H_CEDE is the hcall the model's guests make; the others go to userspace.
H_CEDE = "H_CEDE"


def icp_ack_clear(k: Kvm, cpu: int) -> Body:
    """Accept the pending interrupt (``lwzcix`` XIRR), clear the IPI (MFRR = 0xff), EOI
    (``stwcix`` XIRR): until the EOI the presenter's CPPR masks the next IPI."""
    pending = yield Load(mfrr(cpu))
    if pending != MFRR_NONE:
        yield Store(xirr(cpu), XICS_IPI)  # the accept: XIRR holds the IPI's source, CPPR raised
    yield sync()
    if pending != MFRR_NONE:
        yield Store(mfrr(cpu), MFRR_NONE)  # clear IPI
        yield Store(xirr(cpu), 0)  # EOI the interrupt: CPPR back to 0xff
    yield Note("EOI (write XIRR)")


# ----------------------------------------------------------- secondary start
def kvm_start_guest(k: Kvm, cpu: int, reason: str) -> Body:
    """A woken thread that KVM asked for: run its vCPU, or go back to nap.

    3.5-3.7 (L36 ``kvm_start_guest``): the vCPU pointer is loaded (K4) *before*
    the wake-up IPI is accepted and cleared (K5), which is skipped for a primary
    (ptid 0) that has a vCPU: a ceded primary's IPI is the host's and stays
    pending for it.  A thread that read NULL and then consumes a start IPI sent
    for a vCPU stored meanwhile loses that vCPU (R4).  From 7b444c6710c6 a
    thread napping for H_CEDE goes straight back to it (no acknowledgement), any
    other accepts and clears the IPI first and loads its vCPU pointer after."""
    yield Store(woke_with_req(cpu), 0)  # ghost: the request was honoured
    if k.patch("stray-ipi-guard"):
        yield Store(hstate(cpu, "hwthread_state"), KVM_HWTHREAD_IN_KVM)  # K2
        yield Store(paca(cpu, "nap_state_lost"), 1)  # K3
    if k.patch("start-secondary-races"):
        napping = yield Load(hstate(cpu, "napping"))
        if napping:
            yield from kvm_end_cede(k, cpu)  # K7: resumes the frame that ceded; never returns here
            return
        if reason == "external":
            yield from icp_ack_clear(k, cpu)  # K5, then sync: the vCPU pointer is loaded after
        v = yield Load(hstate(cpu, "kvm_vcpu"))  # K4
        if v is None:
            yield from kvm_no_guest(k, cpu)  # K6
            return
    else:
        v = yield Load(hstate(cpu, "kvm_vcpu"))  # K4
        if reason == "external":
            ptid = None if v is None else (yield Load(vcpu(v, "ptid")))
            if ptid != 0:
                yield from icp_ack_clear(k, cpu)  # K5
        if v is None:
            yield from kvm_no_guest(k, cpu)  # K6 (seed 000)
            return
        napping = yield Load(hstate(cpu, "napping"))
        if napping:
            yield from kvm_end_cede(k, cpu)  # K7: resumes the frame that ceded; never returns here
            return
    ptid = k.ptid_of_cpu(cpu)
    yield from kvmppc_hv_entry(k, cpu, v, ptid)  # K8
    yield from secondary_nap(k, cpu, v)


def kvm_no_guest(k: Kvm, cpu: int) -> Body:
    """Nothing to run (seed 000): back to nap in real mode, never into the kernel.
    LPCR: wake on external interrupts only (PECE0)."""
    yield Store(hstate(cpu, "hwthread_state"), KVM_HWTHREAD_IN_NAP)  # N1
    if not k.patch("start-secondary-races"):
        yield Store(hstate(cpu, "kvm_vcpu"), None)  # N2 (7b444c6710c6 moved it into secondary_nap)
    yield Nap("nap (kvm_no_guest)")  # N4


def secondary_nap(k: Kvm, cpu: int, v: int) -> Body:
    """X10 for a secondary: clear the IPI, count ourselves napped, nap."""
    vc = k.vcore_of(v)
    if k.patch("start-secondary-races"):
        # 7b444c6710c6 (c): once nap_count is seen the runner may hand this
        # thread a new vCPU, so the pointer is cleared before the count.
        yield Store(hstate(cpu, "kvm_vcpu"), None)
        yield lwsync()
    yield Store(mfrr(cpu), MFRR_NONE)
    yield lwsync()
    yield atomic_add(vcore(vc, "nap_count"), 1)
    yield isync()
    if k.patch("stray-ipi-guard"):
        yield from kvm_no_guest(k, cpu)
    else:
        yield Nap("nap (secondary_nap)")


# ---------------------------------------------------------------------- entry
def kvmppc_hv_entry(k: Kvm, cpu: int, v: int, ptid: int) -> Body:
    """E1..E9, the guest, then the exit path X1..X9.  Returns the trap that ended the run."""
    vc = k.vcore_of(v)
    c = k.core_of(cpu)
    old = yield from _entry_count_inc(k, vc)  # E2
    if old is None:
        yield from secondary_too_late(k, cpu, vc)
        return 0
    if ptid == 0:  # E3: the primary switches the core into the guest partition
        yield Store(core(c, "lpid"), LPID_RESERVED)
        yield Store(core(c, "lpid"), k.lpid_of_vcore(vc))
        yield isync()
        yield SetTimer(core(c, "hdec_expired"), Param("timeslice_ns"))  # mtspr HDEC: one timeslice
        yield Store(vcore(vc, "in_guest"), 1)
    else:  # E4
        yield WaitUntil((vcore(vc, "in_guest"),), lambda g: g != 0, what="vc->in_guest != 0")
    yield Store(hstate(cpu, "in_guest"), KVM_GUEST_MODE_GUEST)  # E9
    trap = yield from guest_run(k, cpu, v)
    return (yield from kvmppc_guest_exit(k, cpu, v, ptid, trap))


def _entry_count_inc(k: Kvm, vc: int) -> Body:
    """``lwarx; cmpwi r3,0x100; bge secondary_too_late; addi; stwcx.``: None if too late."""
    result: list[int | None] = [None]

    def inc(value: int) -> int:
        if value >= 1 << VCORE_EXIT_SHIFT:
            result[0] = None
            return value
        result[0] = value
        return value + 1

    yield RMW(vcore(vc, "entry_exit_count"), inc, "entry_exit_count++ unless exiting")
    return result[0]


def secondary_too_late(k: Kvm, cpu: int, vc: int) -> Body:
    """E2a: a thread that arrives after the exit started waits for the switch back."""
    yield WaitUntil((vcore(vc, "in_guest"),), lambda g: g == 0, what="vc->in_guest == 0")


# ---------------------------------------------------------------------- guest
def guest_run(k: Kvm, cpu: int, v: int) -> Body:
    """The guest on this thread until it exits: an hcall, or an interrupt (IPI, HDEC)."""
    try:
        yield MtMsr(set_bits=MSR_GUEST, clear_bits=MSR_HV | MSR_PR, what=f"hrfid: enter guest (vcpu {k.vcpu_label(v)})")
        yield Note(f"guest runs vcpu {k.vcpu_label(v)}", event="guest_enter", data={"vcpu": k.vcpu_label(v), "cpu": cpu, "core": k.core_of(cpu)})
        while True:
            # The guest computes for a while (time only: instant in checking); the
            # HDEC interrupt at the end of the timeslice may cut it short.
            yield Delay(k.run_dist, "guest computes", event="work", data={"vcpu": k.vcpu_label(v), "core": k.core_of(cpu)})
            left = yield Load(vcpu(v, "guest_rounds"))
            if left <= 0:
                action = "shutdown"
            else:
                action = yield Choose(k.guest_actions, what=f"vcpu {k.vcpu_label(v)}: guest action", weights=k.action_weights)
                yield Store(vcpu(v, "guest_rounds"), left - 1)
            if action == "idle":  # runs until the timeslice ends: the core-shared HDEC expires
                yield Delay(Until(core(k.core_of(cpu), "hdec_expired")), "guest idles until HDEC")
                yield Store(core(k.core_of(cpu), "hdec_expired"), 1)
                continue  # the HDEC interrupt is taken at the next instruction
            yield Store(vcpu(v, "hcall"), {"cede": H_CEDE, "exit": "H_USERSPACE", "shutdown": "H_SHUTDOWN"}[action])
            yield MtMsr(set_bits=MSR_HV, clear_bits=MSR_GUEST, what="sc 1 (hypercall)")
            yield Note("guest exit (hcall)", event="guest_exit", data={"vcpu": k.vcpu_label(v), "cpu": cpu, "trap": BOOK3S_INTERRUPT_SYSCALL})
            if action == "cede" and k.patch("rm-cede"):  # 3.1: H_CEDE always exits to the host
                again = yield from kvmppc_h_cede(k, cpu, v)
                if again:  # woke up and the vcore is not exiting: back into the guest
                    yield MtMsr(set_bits=MSR_GUEST, clear_bits=MSR_HV | MSR_PR, what="hrfid: resume guest after cede")
                    yield Note(f"guest runs vcpu {k.vcpu_label(v)}", event="guest_enter", data={"vcpu": k.vcpu_label(v), "cpu": cpu, "core": k.core_of(cpu)})
                    continue
            return BOOK3S_INTERRUPT_SYSCALL
    except GuestInterrupt as gi:
        yield Note("guest exit (interrupt)", event="guest_exit", data={"vcpu": k.vcpu_label(v), "cpu": cpu, "trap": gi.trap})
        return gi.trap


# ---------------------------------------------------------------------- exit
def kvmppc_guest_exit(k: Kvm, cpu: int, v: int, ptid: int, trap: int) -> Body:
    """X1, X6..X9: save state, count the exit, collect the others, switch back."""
    vc = k.vcore_of(v)
    c = k.core_of(cpu)
    yield Store(hstate(cpu, "in_guest"), KVM_GUEST_MODE_NONE)  # X1
    yield Store(vcpu(v, "trap"), trap)
    yield lwsync()  # X6
    old = yield atomic_add(vcore(vc, "entry_exit_count"), 1 << VCORE_EXIT_SHIFT)
    if old < 1 << VCORE_EXIT_SHIFT and (old & 0xFF) > 1:
        # X7: first out, others in the guest: fire the core-shared HDEC (not needed
        # when the trap is HDEC: the others take it too), and IPI the threads
        # napping in the guest (H_CEDE), which HDEC does not wake (L36 :794-820).
        if trap != BOOK3S_INTERRUPT_HV_DECREMENTER:
            yield Store(core(c, "hdec_expired"), 1)
        napping = yield Load(vcore(vc, "napping_threads"))
        for t in range(k.threads_per_vcore):
            if napping & (1 << t) and t != ptid:  # no sense IPI'ing ourselves
                yield SendIPI(mfrr(k.pcpu_of_core(c) + t), IPI_PRIORITY, f"cpu{k.pcpu_of_core(c) + t}")
    if ptid != 0:  # X8, secondary
        yield WaitUntil((vcore(vc, "in_guest"),), lambda g: g == 0, what="vc->in_guest == 0")
        return trap
    # X8, primary: wait until every thread that entered has started to exit.
    yield WaitUntil(
        (vcore(vc, "entry_exit_count"),),
        lambda n: (n & 0xFF) == (n >> VCORE_EXIT_SHIFT),
        what="entry count == exit count",
    )
    yield isync()
    yield Store(core(c, "lpid"), LPID_RESERVED)
    yield Store(core(c, "lpid"), LPID_HOST)
    yield isync()
    yield Store(vcore(vc, "in_guest"), 0)
    yield SetTimer(core(c, "hdec_expired"), None)  # HDEC = 0x7fffffff
    yield Store(core(c, "hdec_expired"), 0)
    return trap


# ------------------------------------------------------------------- H_CEDE
def kvmppc_h_cede(k: Kvm, cpu: int, v: int) -> Body:
    """Nap inside the guest until woken; True to re-enter the guest, False to exit.

    C1..C8 of shared/reference/idle-wakeup-lockup.md §2.5: the thread naps
    only if another thread of the vcore is still in the guest; it arranges
    for its wake-up to come back to KVM, then resumes on the KVM entry frame.
    """
    vc = k.vcore_of(v)
    ptid = k.ptid_of_cpu(cpu)
    yield Store(vcpu(v, "ceded"), 1)  # C1
    yield sync()
    prodded = yield Load(vcpu(v, "prodded"))
    if prodded:
        yield Store(vcpu(v, "prodded"), 0)
        yield Store(vcpu(v, "ceded"), 0)
        return True
    # C3: set our napping bit unless every thread that entered would then nap
    # (lwarx; or; PPC_POPCNTW; cmpw with the entry count loaded before; bge kvm_cede_exit).
    entered = yield Load(vcore(vc, "entry_exit_count"))
    got: list[bool] = [False]

    def set_bit(value: int) -> int:
        new = value | (1 << ptid)
        if bin(new).count("1") >= (entered & 0xFF):
            got[0] = False
            return value
        got[0] = True
        return new

    yield RMW(vcore(vc, "napping_threads"), set_bit, f"napping_threads |= 1<<{ptid} unless all nap")
    if not got[0]:
        yield Store(vcpu(v, "ceded"), 0)
        return False  # kvm_cede_exit: give the hcall to the host
    yield Store(hstate(cpu, "napping"), NAPPING_CEDE)  # C4
    yield lwsync()
    n = yield Load(vcore(vc, "entry_exit_count"))
    if n >= 1 << VCORE_EXIT_SHIFT:
        yield from kvm_cede_cleanup(k, cpu, v, ptid)
        return False
    frame = yield SaveFrame()  # C5: the KVM entry frame (host_r1) kvm_end_cede resumes on
    yield Store(hstate(cpu, "host_r1"), frame)
    yield from kvm_do_nap(k, cpu)
    # kvm_end_cede resumes here (C8)
    yield from kvm_cede_cleanup(k, cpu, v, ptid)
    n = yield Load(vcore(vc, "entry_exit_count"))
    return n < 1 << VCORE_EXIT_SHIFT


def kvm_do_nap(k: Kvm, cpu: int) -> Body:
    """C6: make the wake-up come back to KVM, then nap until an external or a
    decrementer interrupt (LPCR PECE0 | PECE1): the guest's DEC ends the cede."""
    if k.patch("stray-ipi-guard"):
        yield Store(hstate(cpu, "hwthread_req"), 1)
    else:
        yield Store(paca(cpu, "cpu_start"), 0x80)
    yield Store(lpcr_pece1(cpu), 1)
    yield SetTimer(dec_expired(cpu), k.cede_dist)  # the guest's DEC (fires in timed runs)
    yield Nap("nap (kvm_do_nap)")


def kvm_end_cede(k: Kvm, cpu: int) -> Body:
    """C8: back on the KVM entry stack (host_r1), not on PACAR1."""
    frame = yield Load(hstate(cpu, "host_r1"))
    yield ResumeFrame(frame)


def kvm_cede_cleanup(k: Kvm, cpu: int, v: int, ptid: int) -> Body:
    vc = k.vcore_of(v)
    # Out of the ceded nap: the decrementer no longer ends it (model: PECE1 is
    # dropped here; the kernel leaves LPCR alone until the next kvm_no_guest or
    # the exit's host LPCR, nothing in between naps), and a DEC that expired is
    # the guest's to take.
    yield SetTimer(dec_expired(cpu), None)
    yield StoreN({lpcr_pece1(cpu): 0, dec_expired(cpu): 0})
    yield clear_bit(vcore(vc, "napping_threads"), ptid)
    yield Store(hstate(cpu, "napping"), 0)
    yield Store(vcpu(v, "ceded"), 0)
