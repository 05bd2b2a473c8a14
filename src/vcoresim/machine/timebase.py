"""The POWER8 timebase: one TB register per subcore and the chip TOD as the true time;
the timer facility's error state (TFMR[TB_VALID], HMER[TFAC]).

A TB register is stored as its difference from the chip TOD (``TB − TOD``,
ticks), which stays constant while both run: 0 is host time, a guest's
``tb_offset`` while the guest's offset is applied, anything else is a
corrupted timebase.  So checking needs no clock, and a timed run gets the
register's value as ``TOD(t) + difference``.  Offsets are multiples of 2^24
(KVM rounds ``KVM_REG_PPC_TB_OFFSET`` up), so a TBU40 write of ``TB ± offset``
is exact (the low 24 bits keep counting) and is modelled as read, then write.
"""

from __future__ import annotations

TB_FREQ_HZ = 512_000_000
#: TBU40 writes the upper 40 bits: an offset is applied exactly only in multiples of 2^24 ticks.
TBU40_GRANULE = 1 << 24
TB_MASK = (1 << 64) - 1


def round_tb_offset(offset: int) -> int:
    """``kvmppc_set_one_reg(KVM_REG_PPC_TB_OFFSET)``: round up to a multiple of 2^24."""
    return -(-offset // TBU40_GRANULE) * TBU40_GRANULE


def tod_ticks(t_ns: int) -> int:
    """The chip TOD at model time ``t_ns``: 512 ticks per microsecond."""
    return t_ns * TB_FREQ_HZ // 1_000_000_000


def tb_value(diff: int, t_ns: int) -> int:
    """What ``mftb`` returns for a register ``diff`` ticks off the TOD at time ``t_ns``."""
    return (tod_ticks(t_ns) + diff) & TB_MASK


def tbu40(current: int, value: int) -> int:
    """``mtspr TBU40``: the upper 40 bits from ``value``, the low 24 from ``current``."""
    return (value & ~(TBU40_GRANULE - 1) | current & (TBU40_GRANULE - 1)) & TB_MASK


def tb(s: int) -> str:
    """Subcore ``s``'s TB register, as TB − TOD."""
    return f"core[0].tb[{s}]"


def tb_valid(s: int) -> str:
    """TFMR[TB_VALID] of subcore ``s``."""
    return f"core[0].tfmr[{s}].tb_valid"


def subcore(s: int, field_: str) -> str:
    """Per-subcore registers (LPIDR, HDEC) of a split core."""
    return f"core[0].subcore[{s}].{field_}"


def hmer(cpu: int) -> str:
    """HMER[TFAC] of a thread: a timer-facility HMI is pending."""
    return f"paca[{cpu}].hmer_tfac"
