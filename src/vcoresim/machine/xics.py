"""The XICS interrupt presenter, as far as IPIs go (``arch/powerpc/sysdev/xics``).

Each thread's presenter has an MFRR: writing a priority below 0xff raises an
IPI on that thread (``icp_native_cause_ipi``); writing 0xff clears it.
"""

from __future__ import annotations

MFRR_NONE = 0xFF  # no IPI pending
IPI_PRIORITY = 4  # what xics_wake_cpu / smp_muxed_ipi_message_pass write
XICS_IPI = 2  # the IPI's interrupt source number


def mfrr(cpu: int) -> str:
    """Thread ``cpu``'s MFRR (a cache-inhibited MMIO register)."""
    return f"xics[{cpu}].mfrr"


def ipi_pending(mfrr_value: int) -> bool:
    return mfrr_value != MFRR_NONE
