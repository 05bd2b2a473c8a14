"""The OPAL firmware calls the kernel's HMI handling makes (skiboot ``core/hmi.c``,
``hw/chiptod.c``), as the model needs them: recover the timebase from the
chip TOD, and resync it.

How the handler gathers the threads of a core for a timebase error depends on
the firmware release (``MachineConfig.opal_hmi_rendezvous``):

* ``none``: each thread recovers under ``hmi_lock`` as it arrives (skiboot
  before 5.0; 5.x for TFAC errors other than TB residue / HDEC parity).
* ``subcore``: skiboot 5.0-5.11 ``pre_recovery_cleanup`` (822403ea5, 2015):
  for TB-residue and HDEC-parity errors the first thread of each subcore marks
  the subcore under ``hmi_lock``, and every thread waits until a thread of
  every subcore has arrived before any recovers (``wait_for_subcore_threads``).
* ``core``: skiboot 6.0 on ``handle_all_core_tfac_error`` (674f7696f, 2018):
  every thread of the core meets at four rendezvous (``hmi_rendez_vous``), and
  thread 0 recovers the timebase between the third and the fourth.

The model runs one thread per subcore (see ``kvm/hmi.py``), so "every thread
of the core" is every modelled thread; the injected error is a TB-residue one
(the TB invalid on every subcore).
"""

from __future__ import annotations

from collections.abc import Sequence

from vcoresim.engine.ops import Load, Note, SpinLock, SpinUnlock, Store, StoreN, WaitUntil
from vcoresim.engine.world import Body
from vcoresim.machine.timebase import hmer, tb, tb_valid

#: skiboot's ``hmi_lock``: one thread handles an HMI at a time.
HMI_LOCK = "opal.hmi_lock"
#: skiboot 5.x ``core_hmi_state``: the subcores that arrived (bits), and CLEANUP_DONE.
HMI_STATE = "opal.core_hmi_state"
HMI_STATE_CLEANUP_DONE = 1 << 31
RENDEZVOUS = ("none", "subcore", "core")


def hmi_rendez_vous_stage(cpu: int) -> str:
    """skiboot 6.0 ``core_hmi_state`` nibble of thread ``cpu``: the rendezvous it reached (a count)."""
    return f"opal.hmi_rendez_vous[{cpu}]"


def declare(w: object, threads: Sequence[int]) -> None:
    """The firmware's state: ``hmi_lock`` and the rendezvous words."""
    w.loc(HMI_LOCK, 0)  # type: ignore[attr-defined]
    w.loc(HMI_STATE, 0)  # type: ignore[attr-defined]
    for t in threads:
        w.loc(hmi_rendez_vous_stage(t), 0)  # type: ignore[attr-defined]


def chiptod_recover_tb_errors(cpu: int, scope: list[int]) -> Body:
    """The TB reloaded from the chip TOD on ``scope`` (what the reload rewrites)."""
    yield StoreN({**{tb(x): 0 for x in scope}, **{tb_valid(x): 1 for x in scope}})
    yield Note(f"OPAL: TB recovered from TOD on subcores {scope}", event="tb_recover", data={"cpu": cpu, "subcores": scope})


def pre_recovery_cleanup(cpu: int, s: int, subcores: Sequence[int]) -> Body:
    """skiboot 5.x: mark this subcore arrived (first thread in clears CLEANUP_DONE,
    last one sets it), then wait until a thread of every subcore has arrived."""
    yield SpinLock(HMI_LOCK)
    valid = yield Load(tb_valid(s))
    if valid:  # no TB error left on this subcore: recovered already
        yield SpinUnlock(HMI_LOCK)
        return False
    state = yield Load(HMI_STATE)
    if state & ~HMI_STATE_CLEANUP_DONE == 0:
        state = 0  # first thread on the core: cleanup not done
    state |= 1 << s
    if all(state & (1 << x) for x in subcores):
        state |= HMI_STATE_CLEANUP_DONE
    yield Store(HMI_STATE, state)
    yield SpinUnlock(HMI_LOCK)
    yield WaitUntil((HMI_STATE,), lambda st: bool(st & HMI_STATE_CLEANUP_DONE), what="wait_for_subcore_threads")
    return True


def hmi_rendez_vous(cpu: int, threads: Sequence[int]) -> Body:
    """skiboot 6.0: reach the next rendezvous and wait until every thread has."""
    stage = yield Load(hmi_rendez_vous_stage(cpu))
    yield Store(hmi_rendez_vous_stage(cpu), stage + 1)
    locs = tuple(hmi_rendez_vous_stage(t) for t in threads)
    yield WaitUntil(locs, lambda *st: min(st) >= stage + 1, what=f"hmi_rendez_vous (stage {stage % 4 + 1})")


def opal_handle_hmi(cpu: int, s: int, scope: list[int], *, rendezvous: str = "none", threads: Sequence[int] = (), subcores: Sequence[int] = ()) -> Body:
    """O1–O4: recover the TB from the TOD if it is not valid (``chiptod_recover_tb_errors``)
    on the subcores in ``scope``, clear this thread's HMER bit; with the
    firmware's rendezvous of ``rendezvous`` (module docstring).  ``threads``
    are the core's threads (the first is thread 0), ``subcores`` its subcores."""
    if rendezvous == "core":  # handle_all_core_tfac_error
        for _ in range(3):
            yield from hmi_rendez_vous(cpu, threads)
        if cpu == threads[0]:  # thread 0 recovers the timebase
            valid = yield Load(tb_valid(s))
            if not valid:
                yield from chiptod_recover_tb_errors(cpu, scope)
        yield from hmi_rendez_vous(cpu, threads)
        yield Store(hmer(cpu), 0)
        return
    arrived = False
    if rendezvous == "subcore":
        arrived = yield from pre_recovery_cleanup(cpu, s, subcores)
    yield SpinLock(HMI_LOCK)
    valid = yield Load(tb_valid(s))
    if not valid:
        yield from chiptod_recover_tb_errors(cpu, scope)
    if arrived:  # this thread's bit stays until it leaves the handler
        state = yield Load(HMI_STATE)
        yield Store(HMI_STATE, state & ~(1 << s))
    yield Store(hmer(cpu), 0)
    yield SpinUnlock(HMI_LOCK)


def opal_resync_timebase(cpu: int, s: int, scope: list[int]) -> Body:
    """``chiptod_wakeup_resync``: TB := TOD on ``scope``, unconditionally (under ``chiptod_lock``)."""
    yield StoreN({**{tb(x): 0 for x in scope}, **{tb_valid(x): 1 for x in scope}})
    yield Note(f"OPAL: TB resync from TOD on subcores {scope}", event="tb_resync", data={"cpu": cpu, "subcores": scope})
