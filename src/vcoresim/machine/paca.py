"""The PACA, the per-hardware-thread area (SPRG-addressed) the kernel keeps for
each thread, including KVM's ``kvm_hstate``; named as the kernel spells it."""

from __future__ import annotations


def paca(cpu: int, field_: str) -> str:
    return f"paca[{cpu}].{field_}"


def hstate(cpu: int, field_: str) -> str:
    """``paca[cpu].kvm_hstate.<field>`` (``struct kvmppc_host_state``)."""
    return f"paca[{cpu}].kvm_hstate.{field_}"
