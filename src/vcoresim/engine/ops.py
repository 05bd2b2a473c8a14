"""Operations a process yields to the engine.

Model code is a generator: every access to state another actor can see is a
``yield`` of one of these objects, and the value sent back is the operation's
result.  Code between two yields is atomic and touches only its locals, so the
engine sees every conflict (which partial-order reduction relies on).

Each operation declares its *footprint*: the shared locations it reads and
writes.  Two steps of different actors are dependent iff their footprints
conflict (same location, at least one write).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

from vcoresim.engine.timing import Duration
from vcoresim.engine.timing import describe as describe_duration

# Barrier kinds, as the kernel spells them ("release"/"acquire" are the halves
# of smp_store_release / smp_load_acquire).  Under sequential consistency they
# are recorded and otherwise no-ops; engine/memory.py gives them their weak
# semantics.
BARRIER_KINDS = frozenset({"smp_mb", "smp_wmb", "smp_rmb", "sync", "lwsync", "isync", "wmb", "mb", "release", "acquire"})

NO_LOCS: tuple[str, ...] = ()


class Op:
    """Base class.  ``reads``/``writes`` are the footprint; ``name`` shows in traces."""

    __slots__ = ()
    name = "op"
    reads: tuple[str, ...] = NO_LOCS
    writes: tuple[str, ...] = NO_LOCS

    @property
    def loc(self) -> str | None:
        return None

    def describe(self) -> str:
        return self.name


class _LocOp(Op):
    __slots__ = ("loc_",)

    def __init__(self, loc: str) -> None:
        self.loc_ = loc

    @property
    def loc(self) -> str | None:
        return self.loc_

    def describe(self) -> str:
        return f"{self.name} {self.loc_}"


class Load(_LocOp):
    """Read a shared location; returns its value.

    ``token``, ``late`` and ``dep`` serve code that knows its dependencies (the
    litmus interpreter); model code leaves them alone.  Under ``power``
    (engine/memory.py): ``late`` lets the load be satisfied after later
    instructions of the thread (the result is then :data:`PENDING` and
    ``Await(token)`` fetches the value); ``dep`` names earlier loads (tokens)
    this one has an address dependency on; ``feeds`` says a later load may
    name this one in its ``dep`` (the engine then records what had reached
    the thread when it was satisfied, which depends on the thread's whole
    view).  Other models ignore them."""

    __slots__ = ("token", "late", "dep", "feeds")
    name = "load"

    def __init__(self, loc: str, token: int | None = None, late: bool = False, dep: tuple[int, ...] = (), feeds: bool = False) -> None:
        self.loc_ = loc
        self.token = token
        self.late = late
        self.dep = dep
        self.feeds = feeds

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.loc_,)


class Store(_LocOp):
    """Write ``value`` to a shared location."""

    __slots__ = ("value",)
    name = "store"

    def __init__(self, loc: str, value: Any) -> None:
        self.loc_ = loc
        self.value = value

    @property
    def writes(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.loc_,)

    def describe(self) -> str:
        return f"store {self.loc_} = {self.value!r}"


class LoadN(Op):
    """Read several locations in one step: for C code under a lock that guards them all."""

    __slots__ = ("locs",)
    name = "load"

    def __init__(self, *locs: str) -> None:
        self.locs = locs

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.locs

    @property
    def loc(self) -> str | None:
        return ",".join(self.locs)

    def describe(self) -> str:
        return "load " + ", ".join(self.locs)


class StoreN(Op):
    """Write several locations in one step (C code under a lock that guards them all)."""

    __slots__ = ("items",)
    name = "store"

    def __init__(self, items: dict[str, Any]) -> None:
        self.items = tuple(items.items())

    @property
    def writes(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(k for k, _ in self.items)

    @property
    def loc(self) -> str | None:
        return ",".join(k for k, _ in self.items)

    def describe(self) -> str:
        return "store " + ", ".join(f"{k} = {v!r}" for k, v in self.items)


class RMW(_LocOp):
    """Atomic read-modify-write (lwarx/stwcx. loop): ``new = fn(old)``.

    Returns the *old* value.  ``what`` names the operation in traces.
    ``order``: "mb" (fully ordered, the default: value-returning kernel
    atomics), or "relaxed", "acquire", "release" (their ``_relaxed`` etc.
    variants; only ``power`` distinguishes them).
    """

    __slots__ = ("fn", "what", "order")
    name = "rmw"

    def __init__(self, loc: str, fn: Callable[[Any], Any], what: str = "rmw", order: str = "mb") -> None:
        self.loc_ = loc
        self.fn = fn
        self.what = what
        self.order = order

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.loc_,)

    @property
    def writes(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.loc_,)

    def describe(self) -> str:
        return f"{self.what} {self.loc_}"


def atomic_add(loc: str, delta: int) -> RMW:
    return RMW(loc, lambda v: v + delta, f"atomic_add({delta:+d})")


def test_and_set_bit(loc: str, bit: int) -> RMW:
    mask = 1 << bit
    return RMW(loc, lambda v: v | mask, f"test_and_set_bit({bit})")


def clear_bit(loc: str, bit: int) -> RMW:
    mask = ~(1 << bit)
    return RMW(loc, lambda v: v & mask, f"clear_bit({bit})")


def atomic_or(loc: str, mask: int) -> RMW:
    return RMW(loc, lambda v: v | mask, f"atomic_or({mask:#x})")


class Barrier(Op):
    """Memory barrier.  A no-op under sequential consistency."""

    __slots__ = ("kind",)
    name = "barrier"

    def __init__(self, kind: str) -> None:
        if kind not in BARRIER_KINDS:
            raise ValueError(f"unknown barrier kind {kind!r}")
        self.kind = kind

    def describe(self) -> str:
        return self.kind


def smp_mb() -> Barrier:
    return Barrier("smp_mb")


def smp_wmb() -> Barrier:
    return Barrier("smp_wmb")


def smp_rmb() -> Barrier:
    return Barrier("smp_rmb")


def sync() -> Barrier:
    return Barrier("sync")


def lwsync() -> Barrier:
    return Barrier("lwsync")


def isync() -> Barrier:
    return Barrier("isync")


def smp_store_release(loc: str, value: Any) -> Generator[Op, Any, None]:
    """``smp_store_release(p, v)``: a release barrier, then the store."""
    yield Barrier("release")
    yield Store(loc, value)


def smp_load_acquire(loc: str) -> Generator[Op, Any, Any]:
    """``smp_load_acquire(p)``: the load, then an acquire barrier."""
    value = yield Load(loc)
    yield Barrier("acquire")
    return value


class _Pending:
    """The result of a ``Load(late=True)`` the engine has not satisfied yet."""

    def __repr__(self) -> str:
        return "PENDING"


PENDING = _Pending()


class Await(Op):
    """The value of the late load ``token`` of this thread (blocks until it is satisfied)."""

    __slots__ = ("token",)
    name = "await"

    def __init__(self, token: int) -> None:
        self.token = token

    def describe(self) -> str:
        return f"await load #{self.token}"


class SpinLock(_LocOp):
    """Acquire a spin lock: blocks (costs no steps) while the lock is held."""

    __slots__ = ()
    name = "spin_lock"

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.loc_,)

    @property
    def writes(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.loc_,)


class SpinTryLock(SpinLock):
    """Try once; returns True if the lock was taken."""

    __slots__ = ()
    name = "spin_trylock"


class SpinUnlock(SpinLock):
    __slots__ = ()
    name = "spin_unlock"


class WaitUntil(Op):
    """Spin until ``cond(*values)`` holds for the values of ``locs``.

    Modelled as a blocking wait: the actor is enabled only when the condition
    holds, so a spin costs one step however long it lasts.  Returns the tuple
    of values that satisfied it.  With ``timeout`` (a duration, ``engine/timing.py``), the
    wait may instead give up and return ``TIMEOUT``: in checking mode only
    when nothing else in the system can move (timeouts are long compared with
    every protocol step), in timed mode when the time has passed.
    """

    __slots__ = ("locs", "cond", "timeout", "what", "timeout_if")
    name = "wait"

    def __init__(
        self,
        locs: Sequence[str],
        cond: Callable[..., bool],
        timeout: Duration | None = None,
        what: str = "",
        timeout_if: Callable[..., bool] | None = None,
    ) -> None:
        self.locs = tuple(locs)
        self.cond = cond
        self.timeout = timeout
        self.what = what
        #: The timeout may fire only while this holds (a timer that is armed).
        self.timeout_if = timeout_if

    def may_time_out(self, mem: Mapping[str, Any]) -> bool:
        if self.timeout is None:
            return False
        guard = self.timeout_if
        return guard is None or bool(guard(*[mem[loc] for loc in self.locs]))

    @property
    def reads(self) -> tuple[str, ...]:  # type: ignore[override]
        return () if self.cond is never else self.locs

    @property
    def loc(self) -> str | None:
        return self.locs[0] if len(self.locs) == 1 else ",".join(self.locs)

    def describe(self) -> str:
        tail = f" <= {describe_duration(self.timeout)}" if self.timeout is not None else ""
        return f"wait {self.what or ','.join(self.locs)}{tail}"


def never(*_values: Any) -> bool:
    """The condition of a pure timer wait: only its timeout ends it.  Such a
    wait reads nothing until it fires (at quiescence, in checking), so it
    races with no step."""
    return False


class _Timeout:
    __slots__ = ()

    def __repr__(self) -> str:
        return "TIMEOUT"

    def __bool__(self) -> bool:
        return False


TIMEOUT: Any = _Timeout()


class Delay(Op):
    """Let time pass (``udelay``, a guest computing, QEMU in userspace).

    ``ns`` is a duration (``engine/timing.py``): nanoseconds, a distribution, a
    ``Timing`` parameter ...  A timed run waits for it (an interrupt may cut it
    short) and, if it ran to its end, logs ``event`` with ``data`` there;
    checking ignores both.
    """

    __slots__ = ("ns", "what", "event", "data")
    name = "delay"

    def __init__(self, ns: Duration, what: str = "", *, event: str | None = None, data: dict[str, Any] | None = None) -> None:
        self.ns = ns
        self.what = what
        self.event = event
        self.data = data

    def describe(self) -> str:
        return f"delay {describe_duration(self.ns)} {self.what}".rstrip()


class SetTimer(Op):
    """Arm a hardware timer (``mtspr HDEC``): in a timed run, ``loc`` is set to
    ``value`` when ``ns`` has passed; ``ns=None`` disarms it.  Checking never
    fires a timer: a model that needs the expiry there expresses it as a choice
    or a wait's timeout, so this is a no-op for the checker."""

    __slots__ = ("timer", "ns", "value")
    name = "set_timer"

    def __init__(self, timer: str, ns: Duration | None, value: Any = 1) -> None:
        self.timer = timer
        self.ns = ns
        self.value = value

    def describe(self) -> str:
        return f"set timer {self.timer} " + ("off" if self.ns is None else describe_duration(self.ns))


class Choose(Op):
    """Nondeterministic choice among ``options``; returns the chosen option.

    Checking explores every option; random strategies pick one; timed runs
    may pass ``weights``.
    """

    __slots__ = ("options", "what", "weights")
    name = "choose"

    def __init__(self, options: Sequence[Any], what: str = "", weights: Sequence[float] | None = None) -> None:
        if not options:
            raise ValueError("Choose needs at least one option")
        self.options = tuple(options)
        self.what = what
        self.weights = tuple(weights) if weights is not None else None

    def describe(self) -> str:
        return f"choose {self.what}".rstrip()


class SendIPI(_LocOp):
    """Raise an interrupt on another actor: writes the target's interrupt location.

    ``loc`` is the location the target's pending-interrupt test reads (for
    XICS, the thread's MFRR); ``value`` is what to store there.
    """

    __slots__ = ("target", "value")
    name = "ipi"

    def __init__(self, loc: str, value: Any, target: str) -> None:
        self.loc_ = loc
        self.value = value
        self.target = target

    @property
    def writes(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.loc_,)

    def describe(self) -> str:
        return f"ipi -> {self.target} ({self.loc_} = {self.value!r})"


class IrqDisable(Op):
    """Hard-disable interrupts (clear MSR[EE]) on the current hardware thread."""

    __slots__ = ()
    name = "hard_irq_disable"


class IrqEnable(Op):
    """Set MSR[EE]; a pending interrupt is taken right after."""

    __slots__ = ()
    name = "irq_enable"


class MtMsr(Op):
    """Set and clear MSR bits of the current thread (``mtmsrd``, ``rfid``'s MSR half)."""

    __slots__ = ("set_bits", "clear_bits", "what")
    name = "mtmsr"

    def __init__(self, set_bits: int = 0, clear_bits: int = 0, what: str = "mtmsrd") -> None:
        self.set_bits = set_bits
        self.clear_bits = clear_bits
        self.what = what

    def describe(self) -> str:
        return self.what


class Nap(Op):
    """Execute ``nap``: the thread stops; it next runs at its reset vector.

    The current stack is parked, unreachable unless a frame saved with
    ``SaveFrame`` before the nap is resumed with ``ResumeFrame``.
    """

    __slots__ = ("what",)
    name = "nap"

    def __init__(self, what: str = "nap") -> None:
        self.what = what

    def describe(self) -> str:
        return self.what


class SaveFrame(Op):
    """Save the current stack as a resumable continuation; returns a frame id.

    Models ``PACAR1``: the stack pointer the idle entry saves so that the
    wake-up path can return as if the idle call had returned.
    """

    __slots__ = ()
    name = "save_frame"


class ResumeFrame(Op):
    """Return to a continuation saved by ``SaveFrame`` (restoring its MSR).

    A frame can be resumed once; resuming it again (a stale ``PACAR1``) runs
    the actor's ``stale_frame`` continuation: code executed from a dead stack.
    """

    __slots__ = ("frame",)
    name = "resume_frame"

    def __init__(self, frame: int) -> None:
        self.frame = frame

    def describe(self) -> str:
        return f"resume_frame {self.frame}"


class ContextSwitch(Op):
    """``__switch_to``: park the running task's stack in ``prev`` and run ``next``.

    ``prev``/``next`` are task objects with ``stack`` (list of generators or
    None) and ``entry()`` (a fresh generator for a task that has not run yet).
    """

    __slots__ = ("prev", "next")
    name = "context_switch"

    def __init__(self, prev: Any, next: Any) -> None:  # noqa: A002 - kernel name
        self.prev = prev
        self.next = next

    def describe(self) -> str:
        return f"switch {self.prev.name} -> {self.next.name}"


class Note(Op):
    """A labelled no-op marking a program point (``enter guest``).

    ``event`` and ``data`` make it machine-readable: the timed driver turns
    events into metrics and timeline slices (e.g. ``event="guest_enter"``,
    ``data={"vcpu": 1}``).
    """

    __slots__ = ("text", "event", "data")
    name = "note"

    def __init__(self, text: str, event: str | None = None, data: dict[str, Any] | None = None) -> None:
        self.text = text
        self.event = event
        self.data = data

    def describe(self) -> str:
        return self.text
