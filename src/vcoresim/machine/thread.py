"""A POWER7/POWER8 hardware thread's interrupt and nap wiring (the vcore model's).

Two interrupt sources reach a thread, in this priority: its XICS IPI
(external, vector 0x500: MFRR below 0xff) and its core's HDEC (vector 0x980),
which is delivered only while the thread runs guest code (MSR[HV]=0).  Taken
in guest context an interrupt exits the guest (:class:`GuestInterrupt`);
taken in the host it runs the kernel's handler.  In nap, the LPCR wake-up
enables decide what wakes the thread, at the system-reset vector: external
interrupts always (PECE0, which every nap the kernel does sets), and the
thread's decrementer while LPCR[PECE1] is set (KVM sets it for a thread that
naps for H_CEDE, so the guest's timer ends the cede).  The decrementer is the
guest's: it interrupts no hypervisor code, it only wakes such a nap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vcoresim.engine.msr import MSR_HV
from vcoresim.engine.world import Body, HwThread
from vcoresim.machine.core import core
from vcoresim.machine.interrupts import BOOK3S_INTERRUPT_EXTERNAL, BOOK3S_INTERRUPT_HV_DECREMENTER, GuestInterrupt
from vcoresim.machine.xics import MFRR_NONE, mfrr, xirr

TRAP_OF = {"external": BOOK3S_INTERRUPT_EXTERNAL, "hdec": BOOK3S_INTERRUPT_HV_DECREMENTER}


def lpcr_pece1(cpu: int) -> str:
    """LPCR[PECE1] of thread ``cpu``: its decrementer ends a nap."""
    return f"thread[{cpu}].lpcr_pece1"


def dec_expired(cpu: int) -> str:
    """Thread ``cpu``'s decrementer has expired (an exception is pending)."""
    return f"thread[{cpu}].dec_expired"


def guest_interrupt(kind: str) -> GuestInterrupt:
    """What an interrupt of ``kind`` does to the guest code it interrupts."""
    return GuestInterrupt(TRAP_OF[kind])


def power_thread(
    cpu: int,
    c: int,
    msr_of: Callable[[], int],
    *,
    host_vector: Callable[[str], Body],
    reset_vector: Callable[[str], Body],
    stale_frame: Callable[[], Body],
    on_wake: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    wake_reads: tuple[str, ...] = (),
    wake_writes: tuple[str, ...] = (),
) -> HwThread:
    """Thread ``cpu`` of core ``c``; ``msr_of()`` reads its current MSR.

    The kernel supplies what runs: ``host_vector(kind)`` for an interrupt taken
    in the host, ``reset_vector(reason)`` on wake-up from nap, ``stale_frame()``
    when the thread returns through a saved frame that is no longer live, and
    ``on_wake`` for state latched with the wake (as SRR1 latches the reason)."""
    ipi, hdec, pece1, dec, acc = mfrr(cpu), core(c, "hdec_expired"), lpcr_pece1(cpu), dec_expired(cpu), xirr(cpu)

    def pending(mem: dict[str, Any]) -> str | None:
        if mem[ipi] != MFRR_NONE and not mem[acc]:  # an accepted, un-EOI'd IPI holds CPPR up
            return "external"
        if mem[hdec] and not (msr_of() & MSR_HV):
            return "hdec"  # HDEC interrupts reach threads running the guest
        return None

    def wakeup(mem: dict[str, Any]) -> str | None:
        if mem[ipi] != MFRR_NONE and not mem[acc]:
            return "external"  # PECE0
        if mem[dec] and mem[pece1]:
            return "decrementer"  # PECE1
        return None

    def vector(kind: str) -> Body | BaseException:
        if not (msr_of() & MSR_HV):
            return guest_interrupt(kind)
        return host_vector(kind)

    host_lines, guest_lines = (ipi, acc), (ipi, acc, hdec)

    def pending_locs(msr: int) -> tuple[str, ...]:  # what ``pending`` reads under that MSR
        return host_lines if msr & MSR_HV else guest_lines

    return HwThread(
        (ipi, hdec, pece1, dec, acc),
        pending,
        wakeup,
        vector,
        reset_vector,
        stale_frame,
        on_wake,
        wake_reads,
        wake_writes,
        wakeup_locs=(ipi, pece1, dec, acc),
        pending_locs=pending_locs,
    )


def declare_thread_registers(w: Any, cpu: int) -> None:
    """The thread's LPCR wake-up enable and decrementer state the wiring reads."""
    w.loc(lpcr_pece1(cpu), 0)
    w.loc(dec_expired(cpu), 0)
    w.loc(xirr(cpu), 0)
