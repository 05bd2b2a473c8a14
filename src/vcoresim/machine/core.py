"""Per-core state: the partition the core runs (LPIDR) and its hypervisor
decrementer (HDEC), shared by the core's threads."""

from __future__ import annotations


def core(c: int, field_: str) -> str:
    """``core[c].lpid`` (LPIDR), ``core[c].hdec_expired`` (HDEC went negative) ..."""
    return f"core[{c}].{field_}"
