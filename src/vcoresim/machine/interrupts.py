"""Interrupt vectors, and what an interrupt does to code running in a guest.

An interrupt taken while a thread runs guest code (MSR[HV]=0) switches to the
hypervisor at the vector and never returns into the guest code that was
running: the model raises :class:`GuestInterrupt` in it, and KVM's exit path
catches it with the trap number.
"""

from __future__ import annotations

from vcoresim.engine.msr import MSR_DR, MSR_EE, MSR_IR, MSR_RI

# Vector offsets (trap numbers), arch/powerpc/include/asm/kvm_asm.h.
BOOK3S_INTERRUPT_SYSTEM_RESET = 0x100
BOOK3S_INTERRUPT_EXTERNAL = 0x500
BOOK3S_INTERRUPT_DECREMENTER = 0x900
BOOK3S_INTERRUPT_DOORBELL = 0xA00
BOOK3S_INTERRUPT_HV_DECREMENTER = 0x980
BOOK3S_INTERRUPT_SYSCALL = 0xC00
BOOK3S_INTERRUPT_HMI = 0xE60
BOOK3S_INTERRUPT_H_DOORBELL = 0xE80

#: What a guest runs with: supervisor state (HV=0, PR=0), MMU on, interrupts on.
MSR_GUEST = MSR_IR | MSR_DR | MSR_EE | MSR_RI


class GuestInterrupt(Exception):
    """An interrupt taken while the thread runs guest code: it exits to KVM's handler."""

    def __init__(self, trap: int) -> None:
        super().__init__(hex(trap))
        self.trap = trap
