"""The MSR bits the model cares about (values as in ``arch/powerpc/include/asm/reg.h``)."""

MSR_HV = 1 << 60  # hypervisor state
MSR_EE = 1 << 15  # external interrupts enabled
MSR_PR = 1 << 14  # problem (user) state
MSR_IR = 1 << 5  # instruction relocation (MMU on for fetches)
MSR_DR = 1 << 4  # data relocation
MSR_RI = 1 << 1  # recoverable interrupt

#: Host kernel, virtual mode, interrupts on.
MSR_KERNEL = MSR_HV | MSR_IR | MSR_DR | MSR_RI | MSR_EE
#: What an interrupt or a nap wake-up leaves: hypervisor real mode, EE and RI off.
MSR_INTERRUPT = MSR_HV

_NAMES = (("HV", MSR_HV), ("PR", MSR_PR), ("EE", MSR_EE), ("IR", MSR_IR), ("DR", MSR_DR), ("RI", MSR_RI))


def msr_str(msr: int) -> str:
    """``HV|IR|DR|EE`` style rendering for traces."""
    return "|".join(n for n, b in _NAMES if msr & b) or "0"


def in_host_virtual_mode(msr: int) -> bool:
    """Hypervisor state with the MMU on: executing host kernel code."""
    return bool(msr & MSR_HV) and not (msr & MSR_PR) and bool(msr & MSR_IR)
