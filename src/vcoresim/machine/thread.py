"""A POWER7/POWER8 hardware thread's interrupt and nap wiring (the vcore model's).

Two interrupt sources reach a thread, in this priority: its XICS IPI
(external, vector 0x500: MFRR below 0xff) and its core's HDEC (vector 0x980),
which is delivered only while the thread runs guest code (MSR[HV]=0).  Taken
in guest context an interrupt exits the guest (:class:`GuestInterrupt`);
taken in the host it runs the kernel's handler.  In nap, the LPCR wake-up
enables the kernel sets (PECE0 only) let external interrupts, and nothing
else, wake the thread, at the system-reset vector.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vcoresim.engine.msr import MSR_HV
from vcoresim.engine.world import Body, HwThread
from vcoresim.machine.core import core
from vcoresim.machine.interrupts import BOOK3S_INTERRUPT_EXTERNAL, BOOK3S_INTERRUPT_HV_DECREMENTER, GuestInterrupt
from vcoresim.machine.xics import MFRR_NONE, mfrr

TRAP_OF = {"external": BOOK3S_INTERRUPT_EXTERNAL, "hdec": BOOK3S_INTERRUPT_HV_DECREMENTER}


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
    ipi, hdec = mfrr(cpu), core(c, "hdec_expired")

    def pending(mem: dict[str, Any]) -> str | None:
        if mem[ipi] != MFRR_NONE:
            return "external"
        if mem[hdec] and not (msr_of() & MSR_HV):
            return "hdec"  # HDEC interrupts reach threads running the guest
        return None

    def wakeup(mem: dict[str, Any]) -> str | None:
        return "external" if mem[ipi] != MFRR_NONE else None  # LPCR: PECE0 only

    def vector(kind: str) -> Body | BaseException:
        if not (msr_of() & MSR_HV):
            return guest_interrupt(kind)
        return host_vector(kind)

    return HwThread((ipi, hdec), pending, wakeup, vector, reset_vector, stale_frame, on_wake, wake_reads, wake_writes, wakeup_locs=(ipi,))
