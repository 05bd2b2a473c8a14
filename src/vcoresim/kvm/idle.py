"""Nap and wake-up: the idle entry, the offline loop, and the system-reset wake-up path.

POWER7 (3.x): ``power7_nap`` / ``system_reset_pSeries`` /
``power7_wakeup_noloss`` (``arch/powerpc/kernel/idle_power7.S``,
``exceptions-64s.S``).  POWER8 (4.x): ``pnv_powersave_common`` +
``pnv_enter_arch207_idle_mode`` / ``pnv_powersave_wakeup`` /
``pnv_wakeup_noloss`` (``arch/powerpc/kernel/idle_book3s.S``).

A nap saves a frame (``PACAR1``); a host wake-up returns through it with the
MMU on.  A thread KVM has asked for (``cpu_start == 0x80`` before seed 000,
``hwthread_req`` after it) goes to ``kvm_start_guest`` in real mode instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vcoresim.engine.msr import MSR_DR, MSR_IR
from vcoresim.engine.ops import IrqDisable, IrqEnable, Load, MtMsr, Nap, ResumeFrame, SaveFrame, Store, WaitUntil, sync
from vcoresim.engine.world import Body
from vcoresim.kvm import book3s_hv_rmhandlers
from vcoresim.kvm.state import KVM_HWTHREAD_IN_KERNEL, KVM_HWTHREAD_IN_NAP, host_stall, hstate, paca

if TYPE_CHECKING:
    from vcoresim.kvm.context import Kvm

CPU_START_KVM = 0x80  # seed 001: "KVM wants you"


# ------------------------------------------------------------------ entering nap
def power7_nap(k: Kvm, cpu: int) -> Body:
    """Host nap (3.x ``idle_power7.S``): returns when a host wake-up comes back through PACAR1.

    The assembly hard-disables interrupts and returns at once only if one was
    latched while soft-disabled (``PACAIRQHAPPENED``); a hardware-pending IPI
    is not looked at: the thread saves its frame, publishes IN_NAP, naps, and
    ``nap`` with PECE0 wakes it at once through the reset vector, which tests
    ``hwthread_req``.  (The vcore model keeps interrupts hard-disabled on the
    idle paths, with no lazy soft-masking, so nothing is latched there and the
    early return is not modelled.)"""
    yield IrqDisable()
    frame = yield SaveFrame()
    yield Store(paca(cpu, "saved_r1"), frame)  # PACAR1
    yield Store(paca(cpu, "nap_state_lost"), 0)
    if k.patch("idle-nap-real-mode"):
        # 8117ac6a6c2f: the MMU goes off before IN_NAP is published
        yield MtMsr(clear_bits=MSR_IR | MSR_DR, what="rfid to real mode")
    if k.patch("stray-ipi-guard"):
        # seed 000: publish "napping" so a grabbing runner knows we are out of the kernel
        yield Store(hstate(cpu, "hwthread_state"), KVM_HWTHREAD_IN_NAP)
    yield Nap("nap")


def pnv_powersave_common(k: Kvm, cpu: int) -> Body:
    """POWER8 host idle entry: save the frame, go to real mode, publish IN_IDLE, nap
    (as ``power7_nap``: only a soft-masked interrupt, never modelled here, returns early)."""
    yield IrqDisable()
    frame = yield SaveFrame()
    yield Store(paca(cpu, "saved_r1"), frame)  # PACAR1
    yield Store(paca(cpu, "nap_state_lost"), 0)
    yield MtMsr(clear_bits=MSR_IR | MSR_DR, what="rfid to real mode")
    yield from pnv_enter_arch207_idle_mode(k, cpu)


def pnv_enter_arch207_idle_mode(k: Kvm, cpu: int) -> Body:
    yield Store(hstate(cpu, "hwthread_state"), KVM_HWTHREAD_IN_NAP)  # KVM_HWTHREAD_IN_IDLE
    yield Nap("nap (arch207 idle)")


def host_idle(k: Kvm, cpu: int) -> Body:
    """The idle instruction path of the host idle loop for this CPU generation."""
    if k.cpu_gen == "POWER8":
        yield from pnv_powersave_common(k, cpu)
    else:
        yield from power7_nap(k, cpu)


def pnv_smp_cpu_kill_self(k: Kvm, cpu: int) -> Body:
    """An offline secondary: nap; on an unexpected host wake-up take the IPI and nap again."""
    yield IrqDisable()
    while True:
        yield from host_idle(k, cpu)
        if k.cfg.faults.host_stall:
            # Host kernel code after an unexpected wake-up (MMU on): an injected
            # stall (faults.host_stall) may hold the thread here.
            yield WaitUntil((host_stall(cpu),), lambda held: not held, what="held in the host kernel (injected stall)")
        # Not asked to come online: briefly enable interrupts so a pending IPI is taken.
        yield IrqEnable()
        yield IrqDisable()


# ---------------------------------------------------------------- waking up
def system_reset_pSeries(k: Kvm, cpu: int, reason: str) -> Body:
    """POWER7 nap wake-up (real mode): KVM's thread, or back to the host through PACAR1."""
    if k.patch("stray-ipi-guard"):
        yield Store(hstate(cpu, "hwthread_state"), KVM_HWTHREAD_IN_KERNEL)  # S2
        yield sync()  # S3: order the store against the test of hwthread_req
        req = yield Load(hstate(cpu, "hwthread_req"))  # S4
        if req:
            yield from book3s_hv_rmhandlers.kvm_start_guest(k, cpu, reason)
            return
    else:
        start = yield Load(paca(cpu, "cpu_start"))  # W2 (seed 001)
        if start == CPU_START_KVM:
            yield Store(paca(cpu, "cpu_start"), 0)
            yield from book3s_hv_rmhandlers.kvm_start_guest(k, cpu, reason)
            return
    yield from power7_wakeup_noloss(k, cpu)


def pnv_powersave_wakeup(k: Kvm, cpu: int, reason: str) -> Body:
    """POWER8 wake-up: the KVM check in its three versions (seed 003)."""
    if k.patch("idle-skip-kvm-sync"):
        # 8c1c7fb0b5ec: skip the store and the sync when already IN_KERNEL ...
        state = yield Load(hstate(cpu, "hwthread_state"))
        if state == KVM_HWTHREAD_IN_KERNEL:
            if not k.patch("idle-wakeup-test-req"):
                yield from pnv_wakeup_noloss(k, cpu)  # ... and, before 6db6d3658a3b, the test too
                return
        else:
            yield Store(hstate(cpu, "hwthread_state"), KVM_HWTHREAD_IN_KERNEL)
            yield sync()
    else:
        yield Store(hstate(cpu, "hwthread_state"), KVM_HWTHREAD_IN_KERNEL)
        yield sync()
    req = yield Load(hstate(cpu, "hwthread_req"))
    if req:
        yield from book3s_hv_rmhandlers.kvm_start_guest(k, cpu, reason)
        return
    yield from pnv_wakeup_noloss(k, cpu)


def power7_wakeup_noloss(k: Kvm, cpu: int) -> Body:
    """Return as if ``power7_nap`` had returned: r1 = PACAR1, restore MSR (MMU on), rfid."""
    frame = yield Load(paca(cpu, "saved_r1"))
    yield ResumeFrame(frame)


def pnv_wakeup_noloss(k: Kvm, cpu: int) -> Body:
    frame = yield Load(paca(cpu, "saved_r1"))
    yield ResumeFrame(frame)


def reset_vector(k: Kvm, cpu: int, reason: str) -> Body:
    if k.cpu_gen == "POWER8":
        yield from pnv_powersave_wakeup(k, cpu, reason)
    else:
        yield from system_reset_pSeries(k, cpu, reason)
