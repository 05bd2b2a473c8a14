"""Cores, hardware threads and split-core modes of POWER7, POWER8 and POWER9."""

from __future__ import annotations

from typing import Literal

CpuGeneration = Literal["POWER7", "POWER8", "POWER9"]

#: Hardware threads per core (SMT4, SMT8, SMT4 as Linux runs POWER9 KVM hosts).
CPU_THREADS: dict[str, int] = {"POWER7": 4, "POWER8": 8, "POWER9": 4}
#: POWER8 can split a core into 2 or 4 subcores (``ppc64_cpu --subcores-per-core``).
SPLIT_CORE_MODES = (1, 2, 4)
#: The most subcores a core can have (``MAX_SUBCORE_PER_CORE`` in the kernel).
MAX_SUBCORE_PER_CORE = 4


def supports_split_core(cpu: str) -> bool:
    return cpu == "POWER8"
