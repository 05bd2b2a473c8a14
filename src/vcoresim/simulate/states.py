"""What a hardware thread is doing, for timelines: guest, KVM, host, QEMU (userspace) or nap.

Read off the model's call stack (function names, outermost first) and MSR,
the same things a trace records per operation, so timed runs and replayed
traces are drawn alike.  The KVM functions are those of the two modules
that mirror ``book3s_hv.c`` and ``book3s_hv_rmhandlers.S``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from vcoresim.engine.msr import MSR_HV

GUEST, KVM, HOST, QEMU, NAP, IDLE, RUNNING = "guest", "KVM", "host", "QEMU", "nap", "idle", "running"
#: The states a slice can have (colours in the HTML page follow this order).
STATES = (GUEST, KVM, HOST, QEMU, NAP, IDLE, RUNNING)


@cache
def kvm_functions() -> frozenset[str]:
    try:
        from vcoresim.kvm import book3s_hv, book3s_hv_rmhandlers
    except ImportError:  # pragma: no cover - a build without the KVM model
        return frozenset()
    names = {n for mod in (book3s_hv, book3s_hv_rmhandlers) for n, obj in vars(mod).items() if callable(obj) and getattr(obj, "__module__", "") == mod.__name__}
    names.discard("qemu_vcpu_thread")  # QEMU's thread: userspace around the KVM_RUN ioctl
    return frozenset(names)


def state_of(stack: Sequence[str], msr: int, napping: bool, kvm_model: bool = True) -> str:
    """The state of a thread whose call stack is ``stack`` (outermost first)."""
    if napping:
        return NAP
    if not kvm_model:
        return RUNNING
    if "guest_run" in stack and not msr & MSR_HV:
        return GUEST
    kvm = kvm_functions()
    if any(name in kvm for name in stack):
        return KVM
    if stack and stack[-1] == "qemu_vcpu_thread":
        return QEMU
    if stack and stack[0] == "cpu_idle" and len(stack) <= 2:
        return IDLE
    return HOST
