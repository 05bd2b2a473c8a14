"""What a model builds: shared memory, actors, monitors.

A ``Program`` is a recipe; every execution calls ``Program.build()`` to get a
fresh ``World`` (generators cannot be copied, so exploration re-executes from
the start, as CHESS and loom do).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from vcoresim.engine.ops import Op

Body = Generator[Op, Any, Any]

# Actor status values.
RUN, NAP, DONE = 0, 1, 2
# Frame kinds.
BASE, IRQ = 0, 1


class Frame:
    """One generator chain on an actor's stack: a task's code or an interrupt handler.

    ``hist`` hashes what created the frame and every value sent into it since
    (kept only for the state cache, engine/fingerprint.py); ``refs`` lists the
    saved frames (``FrameRef``) among those values, which the hash names by
    position."""

    __slots__ = ("gen", "op", "kind", "msr_on_return", "label", "hist", "refs")

    def __init__(self, gen: Body, kind: int = BASE, msr_on_return: int = 0, label: str = "", hist: int = 0) -> None:
        self.gen = gen
        self.op: Op | None = None
        self.kind = kind
        self.msr_on_return = msr_on_return
        self.label = label
        self.hist = hist
        self.refs: list[int] | None = None


class FrameRef(int):
    """What ``SaveFrame`` returns: the id of a saved frame (``PACAR1``).  An
    ``int`` to model code, which may only store it and pass it to
    ``ResumeFrame``; its own type lets the state cache tell a frame id in
    memory or in a local from a number, and name it canonically."""

    __slots__ = ()


@dataclass
class HwThread:
    """Interrupt wiring of a hardware thread, supplied by the machine model.

    ``pending(mem)`` names the interrupt the thread would take now if MSR[EE]
    allows it; ``wakeup(mem)`` the one that ends a nap (LPCR wake-up enables
    apply); both read only ``irq_locs`` (and the thread's own MSR).
    ``vector(kind)`` returns the handler generator, run on top of the
    interrupted code, or an exception to throw into the interrupted code when
    the interrupt does not return there (a guest exit unwinds the guest to
    KVM's exit path).  ``reset_vector`` runs on wake-up from nap;
    ``stale_frame`` runs when the thread returns through a saved frame that
    is no longer live.
    """

    irq_locs: tuple[str, ...]
    pending: Callable[[dict[str, Any]], str | None]
    wakeup: Callable[[dict[str, Any]], str | None]
    vector: Callable[[str], Body | BaseException]
    reset_vector: Callable[[str], Body]
    stale_frame: Callable[[], Body]
    #: State the hardware latches at wake-up (as SRR1 latches the wake reason):
    #: ``on_wake(mem)`` returns stores made atomically with the wake, reading
    #: ``wake_reads`` and writing ``wake_writes`` (so they are in its footprint).
    on_wake: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    wake_reads: tuple[str, ...] = ()
    wake_writes: tuple[str, ...] = ()
    #: What ``wakeup(mem)`` reads, when it is a subset of ``irq_locs`` (the LPCR
    #: wake-up enables leave some interrupts unable to end a nap).
    wakeup_locs: tuple[str, ...] | None = None
    #: The thread can take non-maskable interrupts: ``pending`` is asked whatever
    #: MSR[EE] is and applies EE itself to the maskable ones.
    nmi: bool = False
    #: What ``pending(mem)`` reads under a given MSR, when it is a subset of
    #: ``irq_locs`` (an HDEC reaches only guest code: with MSR[HV] set a write
    #: to it cannot change whether the thread's next step takes an interrupt).
    pending_locs: Callable[[int], tuple[str, ...]] | None = None


class Actor:
    """An execution context: a hardware thread, or an environment actor (fault injector)."""

    __slots__ = ("name", "idx", "stack", "status", "daemon", "msr", "hw", "cpu_loc", "parked", "role", "boot")

    def __init__(self, name: str, idx: int, body: Body, daemon: bool, hw: HwThread | None, msr: int, role: str, boot: bool = False) -> None:
        self.name = name
        self.idx = idx
        self.stack: list[Frame] = [Frame(body)]
        self.status = RUN
        self.daemon = daemon
        self.hw = hw
        self.msr = msr
        self.cpu_loc = f"cpu:{name}"  # pseudo-location: this context's MSR and status
        self.parked: list[Frame] | None = None
        self.role = role
        self.boot = boot  # runs alone until it naps or blocks, before exploration starts

    @property
    def op(self) -> Op | None:
        return self.stack[-1].op if self.stack else None

    def __repr__(self) -> str:
        return self.name


class MonitorView(Protocol):
    """What a monitor reads of an execution (``engine.runtime.Execution`` is one):
    shared memory and the actors (their status, MSR and stacks)."""

    mem: dict[str, Any]
    actors: list[Actor]


@dataclass
class Invariant:
    """A safety property checked after every operation.

    ``reads`` lists the locations ``check`` looks at (use ``cpu:NAME`` for a
    thread's MSR and status); the reducer treats writes to them as mutually
    dependent so no ordering that could violate the property is pruned.
    """

    name: str
    description: str
    reads: tuple[str, ...]
    check: Callable[[Any], str | None]  # receives a MonitorView
    #: Finer dependency: groups of locations whose relative order matters to
    #: ``check`` (it conjoins facts from one group at a time).  Two writes are
    #: made dependent only if they fall in a common group.  Default: ``reads``
    #: is one group.
    groups: tuple[tuple[str, ...], ...] | None = None
    #: The predicate relates stores a thread makes with no barrier between them
    #: (bookkeeping written together under a lock), so it assumes they become
    #: visible in program order.  Under a memory model that commits such stores
    #: out of order (pso, power) it is checked only while no store to a location
    #: it reads waits in a store buffer; the commit of the last one checks it
    #: again (docs/memory-models.md).
    program_order: bool = False


@dataclass
class Liveness:
    """Bounded liveness: within ``bound`` steps of ``trigger`` holding, ``goal`` holds.

    An execution that ends with the obligation open also violates it.  With
    ``bound`` None the goal must hold only by the end ("eventually"): no
    clock runs, so how long ago the monitor was armed is not part of the state.
    """

    name: str
    description: str
    reads: tuple[str, ...]
    trigger: Callable[[Any], bool]  # receives a MonitorView
    goal: Callable[[Any], bool]
    bound: int | None


@dataclass(frozen=True)
class Symmetry:
    """Interchangeable actors, for the state cache's symmetry reduction.

    ``actors[i]`` owns ``locs[i]`` (the same number of locations each, in
    corresponding order).  The declaration is a promise the engine cannot
    check: permuting the actors together with their locations maps every
    run to a run and every violation to the same violation.  So no code may
    tell them apart (no loop over them in a fixed order, no Choose naming
    them, no stored value naming one, symmetric monitors), except through
    ``owner_locs``: locations holding ``actor index + 1`` of a member (spin
    locks), which the canonical form renames with the permutation.
    """

    actors: tuple[str, ...]
    locs: tuple[tuple[str, ...], ...]
    owner_locs: tuple[str, ...] = ()


@dataclass
class World:
    mem: dict[str, Any] = field(default_factory=dict)
    actors: list[Actor] = field(default_factory=list)
    invariants: list[Invariant] = field(default_factory=list)
    liveness: list[Liveness] = field(default_factory=list)
    check_deadlock: bool = True
    #: Named predicates on a hardware thread's (status, MSR).  When declared, a
    #: thread's mode is observed through ``cpu:NAME:FACET`` pseudo-locations, and a
    #: step writes only the facets whose value it changes (finer independence for
    #: monitors than the single ``cpu:NAME``).
    mode_facets: dict[str, Callable[[int, int], bool]] = field(default_factory=dict)
    symmetries: list[Symmetry] = field(default_factory=list)
    #: State outside memory that an invariant reads (a litmus test's registers,
    #: kept by its threads and read by its final check): the state cache's
    #: fingerprint includes it, since finished threads leave no frames.
    observed: Callable[[], Any] | None = None

    def declare_symmetric(self, actors: list[str], locs: list[list[str]], owner_locs: list[str] | None = None) -> None:
        """Declare ``actors`` interchangeable (see ``Symmetry``); used by ``--cache``."""
        if len(actors) != len(locs) or len({len(x) for x in locs}) > 1:
            raise ValueError("declare_symmetric: one list of locations per actor, all the same length")
        self.symmetries.append(Symmetry(tuple(actors), tuple(tuple(x) for x in locs), tuple(owner_locs or ())))
    #: Location prefixes that are not cacheable memory (SPRs, MMIO, ghost state):
    #: under a weak memory model their stores and loads bypass buffers and views.
    uncached: tuple[str, ...] = ()

    def loc(self, name: str, init: Any = 0) -> str:
        if name in self.mem:
            raise ValueError(f"location {name!r} declared twice")
        self.mem[name] = init
        return name

    def spawn(
        self,
        name: str,
        body: Body,
        *,
        daemon: bool = False,
        hw: HwThread | None = None,
        msr: int = 0,
        role: str = "actor",
        boot: bool = False,
    ) -> Actor:
        """``boot``: the actor's first steps (up to its first nap or block) are the
        machine's boot, run alone and deterministically before exploration."""
        if any(a.name == name for a in self.actors):
            raise ValueError(f"actor {name!r} spawned twice")
        actor = Actor(name, len(self.actors), body, daemon, hw, msr, role, boot)
        self.actors.append(actor)
        return actor

    def add_invariant(self, inv: Invariant) -> None:
        self.invariants.append(inv)

    def add_liveness(self, live: Liveness) -> None:
        self.liveness.append(live)


@dataclass
class Program:
    """A model to run: ``build`` fills a fresh world.  ``config`` goes into traces."""

    name: str
    build: Callable[[World], None]
    config: dict[str, Any] = field(default_factory=dict)
    #: Names of invariants/liveness properties to check (None: all the model adds).
    select: Iterable[str] | None = None
    #: Bounds the model itself puts on what is explored (guest rounds, fault
    #: budgets, scheduling policy): reported with every verdict.
    model_bounds: dict[str, Any] = field(default_factory=dict)
    #: Memory model (engine/memory.py): "sc" runs the plain engine.
    memory_model: str = "sc"
    #: Barrier sites turned into no-ops: (function, kind, line) (barrier mutation).
    removed_barriers: frozenset[tuple[str, str, int]] = frozenset()
    #: The program a timed run executes in this one's place (a scenario's model with
    #: an open-ended workload): its ``build`` and ``config`` replace this one's.
    timed: Program | None = None
    #: The ``Execution`` subclass that runs this program (a weak memory model or a
    #: barrier mutation runs engine/memory.py's); None: the sequentially consistent engine.
    execution: type[Any] | None = None
    #: What ``Execution`` derives from the monitors of this program's worlds
    #: (engine/runtime.py ``Execution._tables``), kept between executions.
    execution_tables: Any = field(default=None, init=False, repr=False, compare=False)

    def new_world(self) -> World:
        world = World()
        self.build(world)
        if self.select is not None:
            keep = set(self.select)
            world.invariants = [i for i in world.invariants if i.name in keep]
            world.liveness = [lv for lv in world.liveness if lv.name in keep]
            world.check_deadlock = world.check_deadlock and "no-deadlock" in keep
        return world
