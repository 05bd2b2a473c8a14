"""Names of shared locations and kernel constants, as the kernel spells them.

Every piece of state another CPU can see is a named location in shared
memory: ``paca[3].kvm_hstate.hwthread_req``, ``vcore[0].entry_exit_count``.
Traces and counterexamples therefore name fields the way the kernel does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The machine's state and constants the kernel code names, re-exported so the
# kernel model imports its vocabulary from one place.
from vcoresim.machine.core import core  # noqa: F401
from vcoresim.machine.interrupts import BOOK3S_INTERRUPT_EXTERNAL, BOOK3S_INTERRUPT_HV_DECREMENTER, BOOK3S_INTERRUPT_SYSCALL  # noqa: F401
from vcoresim.machine.paca import hstate, paca  # noqa: F401
from vcoresim.machine.xics import IPI_PRIORITY, MFRR_NONE, XICS_IPI, mfrr, xirr  # noqa: F401

# arch/powerpc/include/asm/kvm_book3s_asm.h
KVM_HWTHREAD_IN_KERNEL = 0
KVM_HWTHREAD_IN_NAP = 1  # KVM_HWTHREAD_IN_IDLE on POWER8: same value
KVM_HWTHREAD_IN_KVM = 2
KVM_GUEST_MODE_NONE = 0
KVM_GUEST_MODE_GUEST = 1
NAPPING_CEDE = 1

# Return codes.
RESUME_GUEST = 0
RESUME_HOST = 1  # return to userspace with exit_reason set (the model's name for RESUME_HOST)
EINTR = -4
EBUSY = -16
EINVAL = -22

# vcpu->arch.state: an enum in the model.  3.1 creates vCPUs BLOCKED; 3.2
# (late-join-first-run) creates them STOPPED, "stopped until the first KVM_RUN".
# The model's n_blocked counts the vCPUs that do not hold the vcore back: BLOCKED
# and STOPPED ones (3.2's n_busy counts the others).
BLOCKED, RUNNABLE, BUSY_IN_HOST, STOPPED = "BLOCKED", "RUNNABLE", "BUSY_IN_HOST", "STOPPED"
# vc->vcore_running (3.1): 0 not running, 1 running (latecomers may join), 2 exiting.
VCORE_INACTIVE, VCORE_RUNNING, VCORE_EXITING = 0, 1, 2

# Host task states (the scheduler's view).
TASK_RUNNING, TASK_INTERRUPTIBLE, TASK_UNINTERRUPTIBLE, TASK_DEAD = "R", "S", "D", "X"

# core.lpid: 0 = host partition; a guest's LPID otherwise; -1 = the reserved LPID during a switch.
LPID_HOST = 0
LPID_RESERVED = -1

VCORE_EXIT_SHIFT = 8  # entry_exit_count: bits 0-7 entries, 8-15 exits


def woke_with_req(cpu: int) -> str:
    """Ghost (not kernel state): the thread woke while its hwthread_req was set."""
    return f"ghost[{cpu}].woke_with_req"


def stale_frame(cpu: int) -> str:
    """Ghost (not kernel state): the thread returned through a frame that was no longer live."""
    return f"ghost[{cpu}].stale_frame"


def grabbed(cpu: int) -> str:
    """Ghost (not kernel state): kvmppc_grab_hwthread(cpu) returned 0 and the thread is not yet released."""
    return f"ghost[{cpu}].grabbed"
def vcpu_started(v: int) -> str:
    """Ghost (not kernel state): this run owes vCPU ``v`` a thread (runnable when it began, or a late join)."""
    return f"ghost[vcpu{v}].started"


def host_stall(cpu: int) -> str:
    """Fault state: an injected stall holds thread ``cpu`` in host kernel code."""
    return f"fault.host_stall[{cpu}]"


def vcore(vc: int, field_: str) -> str:
    return f"vcore[{vc}].{field_}"


def vcpu(v: int, field_: str) -> str:
    return f"vcpu[{v}].{field_}"


def task(name: str, field_: str) -> str:
    return f"task[{name}].{field_}"


def rq(cpu: int, field_: str) -> str:
    return f"rq[{cpu}].{field_}"


@dataclass
class Task:
    """A host task.  ``stack`` holds its frames while another task runs on its CPU."""

    name: str
    cpu: int
    entry: object  # () -> generator
    stack: list | None = None  # type: ignore[type-arg]
    msr: int = 0
    is_idle: bool = False

    def __fp__(self) -> str:
        return self.name


@dataclass
class Vcore:
    index: int
    vm: int
    lpid: int
    vcpus: list[int] = field(default_factory=list)

    def __fp__(self) -> str:
        return f"vcore{self.index}"
