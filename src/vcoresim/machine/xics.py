"""The XICS interrupt presenter, as far as IPIs go (``arch/powerpc/sysdev/xics``).

Each thread's presenter has an MFRR: writing a priority below 0xff raises an
IPI on that thread (``icp_native_cause_ipi``); writing 0xff clears it.
Reading XIRR accepts the presented interrupt: its source lands in XIRR and
the presenter's CPPR rises to its priority, so no interrupt of that priority
or less favoured (another IPI) is presented until the EOI (writing XIRR back)
restores the CPPR.  Only KVM's real-mode accept in ``kvm_start_guest`` is
modelled this way (``xirr``: the source accepted and not yet EOI'd); the
host's handler and the guest exit consume the IPI at once.
"""

from __future__ import annotations

MFRR_NONE = 0xFF  # no IPI pending
IPI_PRIORITY = 4  # what xics_wake_cpu / smp_muxed_ipi_message_pass write
XICS_IPI = 2  # the IPI's interrupt source number


def mfrr(cpu: int) -> str:
    """Thread ``cpu``'s MFRR (a cache-inhibited MMIO register)."""
    return f"xics[{cpu}].mfrr"


def xirr(cpu: int) -> str:
    """Thread ``cpu``'s XIRR: the source it accepted and has not EOI'd (0: none)."""
    return f"xics[{cpu}].xirr"


def ipi_pending(mfrr_value: int) -> bool:
    return mfrr_value != MFRR_NONE
