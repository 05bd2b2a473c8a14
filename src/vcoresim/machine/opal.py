"""The OPAL firmware calls the kernel's HMI handling makes (skiboot ``core/hmi.c``,
``hw/chiptod.c``), as the model needs them: recover the timebase from the
chip TOD, and resync it."""

from __future__ import annotations

from vcoresim.engine.ops import Load, Note, SpinLock, SpinUnlock, Store, StoreN
from vcoresim.engine.world import Body
from vcoresim.machine.timebase import hmer, tb, tb_valid

#: skiboot's ``hmi_lock``: one thread handles an HMI at a time.
HMI_LOCK = "opal.hmi_lock"


def opal_handle_hmi(cpu: int, s: int, scope: list[int]) -> Body:
    """O1–O4: under ``hmi_lock``, recover the TB from the TOD if it is not valid
    (``chiptod_recover_tb_errors``) on the subcores in ``scope`` (what the
    reload rewrites), clear this thread's HMER bit."""
    yield SpinLock(HMI_LOCK)
    valid = yield Load(tb_valid(s))
    if not valid:
        yield StoreN({**{tb(x): 0 for x in scope}, **{tb_valid(x): 1 for x in scope}})
        yield Note(f"OPAL: TB recovered from TOD on subcores {scope}", event="tb_recover", data={"cpu": cpu, "subcores": scope})
    yield Store(hmer(cpu), 0)
    yield SpinUnlock(HMI_LOCK)


def opal_resync_timebase(cpu: int, s: int, scope: list[int]) -> Body:
    """``chiptod_wakeup_resync``: TB := TOD on ``scope``, unconditionally (under ``chiptod_lock``)."""
    yield StoreN({**{tb(x): 0 for x in scope}, **{tb_valid(x): 1 for x in scope}})
    yield Note(f"OPAL: TB resync from TOD on subcores {scope}", event="tb_resync", data={"cpu": cpu, "subcores": scope})
