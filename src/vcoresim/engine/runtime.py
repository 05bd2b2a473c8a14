"""One execution: runs atomic steps chosen by a strategy and checks monitors.

A *step* is one transition of one actor: its pending visible operation (or
taking an interrupt, or waking from nap), followed by every thread-local
operation up to its next visible one (those are fused: nothing else can
observe the difference).  Each step's footprint (locations read / written) is
recorded for partial-order reduction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from vcoresim.engine import ops as O
from vcoresim.engine.msr import MSR_EE, MSR_INTERRUPT, msr_str
from vcoresim.engine.stable import stable, stable_str
from vcoresim.engine.world import BASE, DONE, IRQ, NAP, RUN, Actor, Frame, FrameRef, Program, World

#: Footprint write that conflicts with everything (timeouts depend on global quiescence).
GLOBAL = "*"
#: Maximum thread-local operations fused into one step before we call it a livelock.
MAX_FUSED = 100_000


class ModelError(Exception):
    """The model itself misbehaved (bad op, runaway local loop): a bug in model code."""


class Rfid(O.Op):
    """Return from an interrupt handler: restore the interrupted MSR (SRR1)."""

    __slots__ = ()
    name = "rfid"


RFID = Rfid()


@dataclass
class Violation:
    kind: str  # "invariant" | "liveness" | "deadlock"
    name: str
    message: str
    step: int

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "invariant": self.name, "message": self.message, "step": self.step}


@dataclass
class OpRecord:
    """What one operation did, for traces."""

    stack: list[str]
    op: str
    loc: str | None
    value: Any
    msr: int


@dataclass
class StepRecord:
    index: int
    actor: str
    alt: int
    ops: list[OpRecord] = field(default_factory=list)


class Execution:
    """Runs one execution of ``program``; a strategy calls :meth:`step` until ``finished``."""

    #: Re-running steps this process already ran (a search's replayed prefix):
    #: recorders of what the steps reach (engine/coverage.py) skip them.
    replaying = False

    def __new__(cls, program: Program, *args: Any, **kwargs: Any) -> Execution:
        # A program may name the subclass that runs it (engine/memory.py's, under a
        # weak memory model); the sequentially consistent path stays this class.
        if cls is Execution and program.execution is not None:
            return object.__new__(program.execution)
        return object.__new__(cls)

    def __init__(self, program: Program, *, record: bool = False, timed: bool = False, history: bool = False) -> None:
        self.program = program
        self.world: World = program.new_world()
        self.mem = self.world.mem
        self.actors = self.world.actors
        self.record = record
        self.timed = timed
        self.schedule: list[tuple[int, int]] = []
        self.footprints: list[tuple[tuple[str, ...], tuple[str, ...]]] = []
        self.records: list[StepRecord] = []
        self.violation: Violation | None = None
        self.outcome: str | None = None  # done | deadlock | violation | bound
        self.steps = 0
        self.frames: dict[int, list[Any]] = {}  # id -> [actor idx, stack, msr, state]
        #: Tasks switched out by ``ContextSwitch`` (their stacks wait in them), by name.
        self.switched: dict[str, Any] = {}
        self._live_frames: dict[int, list[int]] = {}  # actor idx -> ids of its frames that may still be live
        self._next_frame = 1
        self._cur: StepRecord | None = None
        self._facets = tuple(self.world.mode_facets.values())
        self._alias, self._facet_locs, self._watch, self._live_watch, self._mode_changes = self._tables()
        self._live_armed: list[int | None] = [None] * len(self.world.liveness)
        self.on_op: Callable[[Actor, O.Op, Any], None] | None = None  # timed driver hook
        # Per-frame hash of every value sent into it (``Frame.hist``): model
        # code is deterministic, so equal histories of a frame mean equal
        # generator states (loop iterators included).  Kept only for the
        # state cache (engine/fingerprint.py); off the step loop otherwise.
        self.track_history = history
        self.history: list[int] = [0] * len(self.actors)  # (unused; kept for subclasses)
        for a in self.actors:
            # What created each frame starts its history: here, which actor it is.
            a.stack[0].hist = hash((a.idx, stable_str("spawn")))
        for a in self.actors:
            self._prime(a)
        self._boot()
        self._check_monitors()

    def _boot(self) -> None:
        """Run boot actors alone until each naps or blocks (not part of the schedule)."""
        for a in self.actors:
            n = 0
            while a.boot and a.status == RUN and self.is_enabled(a) and not self._delivers(a):
                self._transition(a, 0)
                n += 1
                if n > MAX_FUSED:
                    raise ModelError(f"{a.name}: boot does not reach a nap")

    # ------------------------------------------------------------------ state
    def actor(self, name: str) -> Actor:
        for a in self.actors:
            if a.name == name:
                return a
        raise KeyError(name)

    def _tables(self) -> tuple[Any, ...]:
        """What the monitors and actors of this world make of each location:
        the same for every world of the program that installs the same monitor
        objects for the same actors (a model may share them, kvm/model.py), so
        kept with the program and recomputed only when they differ."""
        w = self.world
        key = (tuple(map(id, w.invariants)), tuple(map(id, w.liveness)), tuple(w.mode_facets), tuple(map(id, w.mode_facets.values())), tuple(a.name for a in self.actors))
        known = self.program.execution_tables
        if known is not None and known[0] == key:
            return known[1]  # type: ignore[no-any-return]
        tables = (
            self._invariant_aliases(),
            [tuple(f"{a.cpu_loc}:{n}" for n in w.mode_facets) for a in self.actors],
            self._watchers(),
            self._live_watchers(),
            {},  # (actor, status, MSR, new status, new MSR) -> the facets that change
        )
        # The monitors are kept with the key so their ids stay theirs.
        self.program.execution_tables = (key, tables, (w.invariants, w.liveness, tuple(w.mode_facets.values())))
        return tables

    def _invariant_aliases(self) -> dict[str, tuple[str, ...]]:
        """Writes to locations a monitor reads also write ``mon:NAME``, so two
        such writes are dependent and no ordering visible to the monitor is pruned."""
        alias: dict[str, list[str]] = {}
        for mon in [*self.world.invariants, *self.world.liveness]:
            groups = getattr(mon, "groups", None) or (mon.reads,)
            for g, locs in enumerate(groups):
                tag = f"mon:{mon.name}:{g}"
                for loc in locs:
                    alias.setdefault(loc, []).append(tag)
        return {k: tuple(v) for k, v in alias.items()}

    # -------------------------------------------------------------- enabling
    def _delivers(self, a: Actor) -> bool:
        hw = a.hw
        return hw is not None and bool(a.msr & MSR_EE or hw.nmi) and hw.pending(self.mem) is not None

    def is_enabled(self, a: Actor) -> bool:
        st = a.status
        if st == RUN:
            if a.hw is not None and (a.msr & MSR_EE or a.hw.nmi) and a.hw.pending(self.mem) is not None:
                return True
            op = a.stack[-1].op
            cls = op.__class__
            if cls is O.SpinLock:
                return not self.mem[op.loc_]  # type: ignore[attr-defined]
            if cls is O.WaitUntil:
                mem = self.mem
                return bool(op.cond(*[mem[loc] for loc in op.locs]))  # type: ignore[attr-defined]
            return True
        if st == NAP:
            return a.hw is not None and a.hw.wakeup(self.mem) is not None
        return False

    def enabled(self) -> list[int]:
        """Actors with an enabled transition; at quiescence, the waits that may time out."""
        en = [a.idx for a in self.actors if self.is_enabled(a)]
        if en:
            return en
        return self.timeout_candidates()

    def timeout_candidates(self) -> list[int]:
        return [
            a.idx
            for a in self.actors
            if a.status == RUN and a.stack[-1].op.__class__ is O.WaitUntil and a.stack[-1].op.may_time_out(self.mem)  # type: ignore[union-attr]
        ]

    def alternatives(self, idx: int) -> int:
        """How many branches the actor's next transition has (options of a Choose)."""
        a = self.actors[idx]
        if a.status != RUN or self._delivers(a):
            return 1
        op = a.stack[-1].op
        return len(op.options) if op.__class__ is O.Choose else 1  # type: ignore[union-attr]

    def footprint(self, idx: int, pending: bool = False) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Locations the actor's next transition reads and writes.

        A wait that is not satisfied can only time out, which depends on the
        whole system being quiescent; ``pending=True`` asks instead for the
        footprint of the wait itself (what race analysis needs)."""
        a = self.actors[idx]
        hw = a.hw
        if a.status == NAP:
            assert hw is not None
            wake_locs = hw.irq_locs if hw.wakeup_locs is None else hw.wakeup_locs
            return wake_locs + hw.wake_reads, self._aliased((*self._mode_writes(a, RUN, MSR_INTERRUPT), *hw.wake_writes))
        if self._delivers(a):
            assert hw is not None
            lines = hw.irq_locs if hw.pending_locs is None else hw.pending_locs(a.msr)
            return lines, self._aliased(self._mode_writes(a, RUN, MSR_INTERRUPT))
        op = a.stack[-1].op
        assert op is not None
        if not pending and op.__class__ is O.WaitUntil and not self.is_enabled(a):
            return (GLOBAL,), (GLOBAL,)  # a timeout: depends on global quiescence
        reads = op.reads
        writes = op.writes
        cls = op.__class__
        if cls in _CPU_WRITERS:
            writes = (*writes, *self._op_mode_writes(a, op))
        if hw is not None and (a.msr & MSR_EE or hw.nmi or _may_enable_ee(op)):
            # Whether this step is the op or an interrupt taken instead depends
            # on ``pending`` under the present MSR, which only this thread's own
            # steps change; an op that may change the MSR reads every line.
            if hw.pending_locs is None or cls in _CPU_WRITERS or _may_enable_ee(op):
                reads = (*reads, *hw.irq_locs)
            else:
                reads = (*reads, *hw.pending_locs(a.msr))
        return reads, self._aliased(writes)

    def _mode_writes(self, a: Actor, status: int | None, msr: int) -> tuple[str, ...]:
        """The mode pseudo-locations a transition to (status, msr) writes: with
        declared facets, those whose value changes (``status=None``: unknown, all)."""
        facets = self._facets
        if not facets:
            return (a.cpu_loc,)
        locs = self._facet_locs[a.idx] if a.idx < len(self._facet_locs) else tuple(f"{a.cpu_loc}:{n}" for n in self.world.mode_facets)
        if status is None:
            return locs
        key = (a.idx, a.status, a.msr, status, msr)
        out = self._mode_changes.get(key)
        if out is None:
            # (facets are functions of (status, MSR): remembered per program)
            st, m = a.status, a.msr
            out = self._mode_changes[key] = tuple(loc for f, loc in zip(facets, locs) if f(st, m) != f(status, msr))
        return out

    def _op_mode_writes(self, a: Actor, op: O.Op) -> tuple[str, ...]:
        """Mode writes of a pending MSR- or context-changing operation (EE alone is no mode change)."""
        cls = op.__class__
        if cls is O.MtMsr:
            if not (op.set_bits | op.clear_bits) & ~MSR_EE:  # type: ignore[attr-defined]
                return ()
            return self._mode_writes(a, RUN, (a.msr | op.set_bits) & ~op.clear_bits)  # type: ignore[attr-defined]
        if cls is O.Nap:
            return self._mode_writes(a, NAP, a.msr)
        if cls is Rfid:
            return self._mode_writes(a, RUN, a.stack[-1].msr_on_return)
        if cls is O.ContextSwitch:
            nxt = op.next  # type: ignore[attr-defined]
            return self._mode_writes(a, RUN, nxt.msr if nxt.stack is not None else a.msr)
        if cls is O.ResumeFrame:
            rec = self.frames.get(op.frame)  # type: ignore[attr-defined]
            return self._mode_writes(a, RUN, rec[2] if rec is not None else a.msr)
        return self._mode_writes(a, None, 0)

    def _aliased(self, writes: tuple[str, ...]) -> tuple[str, ...]:
        alias = self._alias
        if not alias:
            return writes
        extra: tuple[str, ...] = ()
        for w in writes:
            t = alias.get(w)
            if t:
                extra += t
        return writes + extra if extra else writes

    def is_local(self, a: Actor, op: O.Op) -> bool:
        """Can this operation be fused into the current step?"""
        cls = op.__class__
        if cls in _NEVER_LOCAL:
            return False
        if cls is O.Choose:
            return len(op.options) == 1  # type: ignore[attr-defined]
        if cls is O.Delay:
            return not self.timed  # checking: time is not modelled, a delay is instant
        if cls is O.SetTimer:
            return True  # arming a timer is bookkeeping of the timed driver
        if a.hw is not None and (a.msr & MSR_EE or a.hw.nmi or _may_enable_ee(op)):
            return False
        if op.reads or op.writes:
            return False
        if cls in _CPU_WRITERS:
            # Local unless a monitor observes a mode change it makes.
            return not any(loc in self._alias for loc in self._op_mode_writes(a, op))
        return True

    # ------------------------------------------------------------- stepping
    def step(self, idx: int, alt: int = 0) -> None:
        """Run one transition of actor ``idx`` (branch ``alt`` of a Choose)."""
        a = self.actors[idx]
        self.schedule.append((idx, alt))
        self.footprints.append(self.footprint(idx))
        self.steps += 1
        if self.record:
            self._cur = StepRecord(len(self.schedule) - 1, a.name, alt)
            self.records.append(self._cur)
        if self._facets:
            mode = (a.status, a.msr)
            self._transition(a, alt)
            if (a.status, a.msr) != mode:  # facets are functions of (status, MSR)
                self._check_mode_footprint(a, mode)
        else:
            self._transition(a, alt)
        if self.violation is None:
            self._check_monitors(a, self.footprints[-1][1])

    def _check_mode_footprint(self, a: Actor, mode: tuple[int, int]) -> None:
        """A mode facet the step changed must be in its footprint, or POR is unsound."""
        declared = self.footprints[-1][1]
        status, msr = mode
        for loc, f in zip(self._mode_writes(a, None, 0), self._facets):
            if f(status, msr) != f(a.status, a.msr) and loc in self._alias and loc not in declared:
                raise ModelError(f"{a.name}: step {len(self.schedule) - 1} changed {loc} without declaring it")

    def _transition(self, a: Actor, alt: int) -> None:
        if a.status == NAP:
            self._wake(a)
        elif self._delivers(a):
            self._deliver(a)
        else:
            op = a.stack[-1].op
            assert op is not None
            if op.__class__ is O.WaitUntil and not self.is_enabled(a):
                self._log(a, op, O.TIMEOUT, suffix=" -> timeout")
                self._advance(a, O.TIMEOUT)
            else:
                self._exec(a, op, alt)
        self._fuse(a)

    def _fuse(self, a: Actor) -> None:
        n = 0
        never = _NEVER_LOCAL
        while self.violation is None and a.status == RUN:
            op = a.stack[-1].op
            assert op is not None
            # (an operation that is never local ends the step whatever is pending:
            # asked first, it spares the interrupt lines a look)
            if op.__class__ in never or self._delivers(a) or not self.is_local(a, op):
                return
            self._exec(a, op, 0)
            n += 1
            if n > MAX_FUSED:
                raise ModelError(f"{a.name}: more than {MAX_FUSED} local operations without a visible one")

    def _prime(self, a: Actor) -> None:
        self._advance(a, None)
        self._fuse(a)

    def _advance(self, a: Actor, value: Any) -> None:
        """Send ``value`` into the top frame and store the next pending op."""
        fr = a.stack[-1]
        try:
            op = fr.gen.send(value)
        except StopIteration:
            if fr.kind == IRQ:
                fr.op = RFID
                return
            a.stack.pop()
            if a.stack:
                raise ModelError(f"{a.name}: base frame returned with frames below it")
            a.status = DONE
            return
        if not isinstance(op, O.Op):
            raise ModelError(f"{a.name}: yielded {op!r}, not an operation (missing 'yield from'?)")
        fr.op = op

    def _log(self, a: Actor, op: O.Op, value: Any, suffix: str = "") -> None:
        if self.track_history:
            self._observe(a, op.name, value)
        if self.on_op is not None:
            self.on_op(a, op, value)
        cur = self._cur
        if cur is not None:
            cur.ops.append(OpRecord(stack_of(a), op.describe() + suffix, op.loc, value, a.msr))

    def _observe(self, a: Actor, what: str, value: Any) -> None:
        """Extend the history of the frame ``value`` is sent into (the top one)."""
        fr = a.stack[-1]
        t = type(value)
        if t is int or t is bool or value is None:
            v: Any = value if value is not None else 0x5F3759DF_0000_0001
        elif t is FrameRef or (t is tuple and any(type(x) is FrameRef for x in value)):
            v = _ref_positions(fr, value)
        else:
            v = stable(value)
        fr.hist = hash((fr.hist, stable_str(what), v))

    def _exec(self, a: Actor, op: O.Op, alt: int) -> None:
        mem = self.mem
        cls = op.__class__
        result: Any = None
        if cls is O.Load:
            result = mem[op.loc_]  # type: ignore[attr-defined]
        elif cls is O.Store:
            mem[op.loc_] = result = op.value  # type: ignore[attr-defined]
        elif cls is O.LoadN:
            result = tuple(mem[loc] for loc in op.locs)  # type: ignore[attr-defined]
        elif cls is O.StoreN:
            for loc, value in op.items:  # type: ignore[attr-defined]
                mem[loc] = value
        elif cls is O.RMW:
            result = mem[op.loc_]  # type: ignore[attr-defined]
            mem[op.loc_] = op.fn(result)  # type: ignore[attr-defined]
        elif cls is O.SpinLock:
            mem[op.loc_] = result = a.idx + 1  # type: ignore[attr-defined]
        elif cls is O.SpinTryLock:
            result = not mem[op.loc_]  # type: ignore[attr-defined]
            if result:
                mem[op.loc_] = a.idx + 1  # type: ignore[attr-defined]
        elif cls is O.SpinUnlock:
            if mem[op.loc_] != a.idx + 1:  # type: ignore[attr-defined]
                raise ModelError(f"{a.name}: spin_unlock of {op.loc} it does not hold")
            mem[op.loc_] = 0  # type: ignore[attr-defined]
        elif cls is O.WaitUntil:
            result = tuple(mem[loc] for loc in op.locs)  # type: ignore[attr-defined]
        elif cls is O.SendIPI:
            mem[op.loc_] = result = op.value  # type: ignore[attr-defined]
        elif cls is O.Choose:
            result = op.options[alt]  # type: ignore[attr-defined]
        elif cls is O.IrqDisable:
            a.msr &= ~MSR_EE
        elif cls is O.IrqEnable:
            a.msr |= MSR_EE
        elif cls is O.MtMsr:
            a.msr = (a.msr | op.set_bits) & ~op.clear_bits  # type: ignore[attr-defined]
        elif cls is Rfid:
            fr = a.stack.pop()
            a.msr = fr.msr_on_return
            track, self.track_history = self.track_history, False  # nothing is sent into the interrupted frame
            self._log(a, op, msr_str(a.msr))
            self.track_history = track
            return  # the interrupted frame's pending op stays pending
        elif cls is O.Nap:
            self._log(a, op, None)
            self._park(a)
            return
        elif cls is O.SaveFrame:
            result = FrameRef(self._next_frame)
            self._next_frame += 1
            self.frames[result] = [a.idx, a.stack, a.msr, "live"]
            self._live_frames.setdefault(a.idx, []).append(result)
        elif cls is O.ResumeFrame:
            self._log(a, op, None)
            self._resume_frame(a, op.frame)  # type: ignore[attr-defined]
            return
        elif cls is O.ContextSwitch:
            self._log(a, op, None)
            self._context_switch(a, op)  # type: ignore[arg-type]
            return
        elif cls in (O.Barrier, O.Delay, O.Note, O.SetTimer):
            pass
        else:
            raise ModelError(f"{a.name}: unknown operation {op!r}")
        self._log(a, op, result)
        self._advance(a, result)

    def external_write(self, loc: str, value: Any) -> None:
        """A write by the hardware outside any actor's step (a timer firing in a
        timed run); the monitors are checked as after a step."""
        self.mem[loc] = value
        if self.violation is None:
            self._check_monitors()

    # ---------------------------------------------------- context changes
    def _deliver(self, a: Actor) -> None:
        hw = a.hw
        assert hw is not None
        kind = hw.pending(self.mem)
        assert kind is not None
        handler = hw.vector(kind)  # a function of kind and the MSR (HwThread)
        if isinstance(handler, BaseException):
            # The interrupt does not return to the interrupted code (a guest
            # exit): unwind it to the handler the model code wrote for it.
            if self.track_history:
                self._observe(a, "interrupt", (kind, a.msr))
            a.msr = MSR_INTERRUPT
            if self._cur is not None:
                self._cur.ops.append(OpRecord(stack_of(a), f"interrupt {kind}", None, None, a.msr))
            self._throw(a, handler)
            return
        frame = Frame(handler, IRQ, a.msr, label=kind, hist=hash((a.idx, stable_str(kind), a.msr)) if self.track_history else 0)
        a.msr = MSR_INTERRUPT
        a.stack.append(frame)
        if self._cur is not None:
            self._cur.ops.append(OpRecord(stack_of(a), f"interrupt {kind}", None, None, a.msr))
        self._advance(a, None)

    def _throw(self, a: Actor, exc: BaseException) -> None:
        fr = a.stack[-1]
        try:
            op = fr.gen.throw(exc)
        except StopIteration:
            a.stack.pop()
            if a.stack:
                raise ModelError(f"{a.name}: frame ended while unwinding an interrupt") from None
            a.status = DONE
            return
        fr.op = op

    def _park(self, a: Actor) -> None:
        # Only frames still live can be parked: scan those of this actor, not
        # every frame ever saved (a long timed run saves one per H_CEDE).
        live = self._live_frames.pop(a.idx, None)
        if live:
            keep = []
            for fid in live:
                rec = self.frames[fid]
                if rec[3] != "live":
                    continue
                if rec[1] is a.stack:
                    rec[3] = "parked"
                else:
                    keep.append(fid)
            if keep:
                self._live_frames[a.idx] = keep
        a.parked = a.stack
        a.stack = []
        a.status = NAP

    def _wake(self, a: Actor) -> None:
        hw = a.hw
        assert hw is not None
        kind = hw.wakeup(self.mem)
        assert kind is not None
        if hw.on_wake is not None:
            self.mem.update(hw.on_wake(self.mem))
        a.status = RUN
        a.msr = MSR_INTERRUPT
        a.stack = [Frame(hw.reset_vector(kind), BASE, label=f"wake:{kind}", hist=hash((a.idx, stable_str(f"wake:{kind}"))))]
        if self._cur is not None:
            self._cur.ops.append(OpRecord([], f"wake from nap ({kind})", None, None, a.msr))
        self._advance(a, None)

    def _resume_frame(self, a: Actor, frame_id: int) -> None:
        rec = self.frames.get(frame_id)
        if rec is not None and rec[0] == a.idx and rec[3] == "parked":
            rec[3] = "resumed"
            a.stack = rec[1]
            a.msr = rec[2]
            a.parked = None
            if self.track_history:
                self._observe(a, "resumed", None)  # a frame's history changes whenever it runs
            self._advance(a, None)
            return
        hw = a.hw
        assert hw is not None
        if rec is not None:
            a.msr = rec[2]
        a.stack = [Frame(hw.stale_frame(), BASE, label="stale frame", hist=hash((a.idx, stable_str("stale frame"))))]
        self._advance(a, None)

    def _context_switch(self, a: Actor, op: O.ContextSwitch) -> None:
        op.prev.stack = a.stack
        op.prev.msr = a.msr
        nxt = op.next
        self.switched[op.prev.name] = op.prev
        self.switched.pop(nxt.name, None)
        if nxt.stack is None:
            a.stack = [Frame(nxt.entry(), BASE, label=nxt.name, hist=stable_str(f"task:{nxt.name}"))]
            self._advance(a, None)
        else:
            a.stack = nxt.stack
            a.msr = nxt.msr
            nxt.stack = None
            if self.track_history:
                self._observe(a, "switched in", None)  # a frame's history changes whenever it runs
            self._advance(a, None)

    # -------------------------------------------------------------- monitors
    def _watchers(self) -> tuple[dict[str, tuple[int, ...]], list[tuple[int, ...]], tuple[int, ...]]:
        """Which invariants read each location; per actor, those re-checked after
        every one of its steps: the ones reading its whole mode (``cpu:NAME``: its
        MSR, status or stack, which footprints do not name in full) and the ones
        that declare no reads (they may read anything).  A declared facet is
        named in full: a step that changes it writes it."""
        by_loc: dict[str, list[int]] = {}
        for i, inv in enumerate(self.world.invariants):
            for loc in inv.reads:
                by_loc.setdefault(loc, []).append(i)
        always = tuple(i for i, inv in enumerate(self.world.invariants) if not inv.reads)
        by_actor = [tuple(sorted({*always, *by_loc.get(a.cpu_loc, ())})) for a in self.actors]
        return {loc: tuple(v) for loc, v in by_loc.items()}, by_actor, always

    def _live_watchers(self) -> tuple[frozenset[str] | None, list[bool]]:
        """``_watchers`` for the liveness monitors, coarser: the locations any
        of them reads (None: one declares no reads, so it may read anything)
        and, per actor, whether one reads its whole mode (``cpu:NAME``)."""
        lives = self.world.liveness
        if any(not live.reads for live in lives):
            return None, [True] * len(self.actors)
        locs = frozenset(loc for live in lives for loc in live.reads)
        return locs, [a.cpu_loc in locs for a in self.actors]

    def liveness_after(self, a: Actor, writes: tuple[str, ...], replayed: bool = False) -> None:
        """Update the liveness monitors after a step of ``a`` that wrote ``writes``:
        re-evaluated only if the step may have changed what one of them reads
        (the rule ``_check_monitors`` applies to invariants); else only their
        clocks move, and ``replayed`` (a step that ran before without a
        violation) they cannot run out."""
        if not self._live_armed:
            return
        locs, by_actor = self._live_watch
        if locs is None or GLOBAL in writes or (by_actor[a.idx] if a.idx < len(by_actor) else True) or not locs.isdisjoint(writes):
            self._check_liveness()
        elif not replayed:
            self._check_liveness(False)

    def _check_monitors(self, a: Actor | None = None, writes: tuple[str, ...] | None = None) -> None:
        """Check the invariants after a step of ``a`` that wrote ``writes`` (all of
        them when no step is given): only those reading a written location, or
        reading ``a``'s mode; an invariant's value cannot change otherwise."""
        invariants = self.world.invariants
        if a is None or writes is None or GLOBAL in writes:
            todo: Iterable[int] = range(len(invariants))
        else:
            by_loc, by_actor, always = self._watch
            hit = set(by_actor[a.idx] if a.idx < len(by_actor) else always)  # (pseudo-actors added later have no mode)
            for loc in writes:
                w = by_loc.get(loc)
                if w:
                    hit.update(w)
            todo = sorted(hit)
        for i in todo:
            inv = invariants[i]
            if inv.program_order and self._stores_in_flight(inv.reads):
                continue
            msg = inv.check(self)
            if msg:
                self._violate("invariant", inv.name, msg)
                return
        if a is None or writes is None:
            self._check_liveness()
        else:
            self.liveness_after(a, writes)

    def _stores_in_flight(self, locs: tuple[str, ...]) -> bool:
        """A store to one of ``locs`` not yet in memory (none: stores are atomic here)."""
        return False

    def _check_liveness(self, evaluate: bool = True) -> None:
        """Advance the liveness monitors' clocks.  ``evaluate=False``: nothing
        any trigger or goal reads changed since they were last evaluated, so
        only the clocks move: an unarmed monitor stays unarmed (its trigger
        was false, or held together with its goal, and still does), an armed
        one stays armed (its goal was false) until its bound runs out."""
        for i, live in enumerate(self.world.liveness):
            armed = self._live_armed[i]
            if not evaluate:
                if armed is not None and live.bound is not None and self.steps - armed > live.bound:
                    self._violate("liveness", live.name, f"not reached within {live.bound} steps of step {armed}")
                    return
                continue
            if armed is None:
                if live.trigger(self):
                    self._live_armed[i] = self.steps
                    if live.goal(self):
                        self._live_armed[i] = None
            elif live.goal(self):
                self._live_armed[i] = None
            elif live.bound is not None and self.steps - armed > live.bound:
                self._violate("liveness", live.name, f"not reached within {live.bound} steps of step {armed}")
                return

    def _violate(self, kind: str, name: str, msg: str) -> None:
        self.violation = Violation(kind, name, msg, len(self.schedule))
        self.outcome = "violation"

    def finish(self, bounded: bool) -> None:
        """Classify the end of an execution (no transition left, or the step bound hit)."""
        if self.outcome is not None:
            return
        if bounded:
            self.outcome = "bound"
            return
        stuck = [a for a in self.actors if a.status != DONE and not a.daemon]
        if stuck and self.world.check_deadlock:
            what = ", ".join(f"{a.name} at {a.op.describe() if a.op else 'nap'}" for a in stuck)
            self._violate("deadlock", "no-deadlock", f"no step enabled; blocked: {what}")
            return
        for i, live in enumerate(self.world.liveness):
            if self._live_armed[i] is not None:
                self._violate("liveness", live.name, f"still not reached when the run ended (armed at step {self._live_armed[i]})")
                return
        self.outcome = "done"

    # ------------------------------------------------------------ fingerprint
    def liveness_clocks(self) -> tuple[int, ...]:
        """The liveness monitors' part of the state: per monitor -1 when unarmed,
        else the steps since it was armed, which decide when its bound runs out.
        An ``eventually`` monitor (``bound`` None) has no bound to run out: all
        that decides its future is whether it is armed (0), so two states that
        differ only in how long ago it was armed get the same identity."""
        lives = self.world.liveness
        return tuple(-1 if x is None else 0 if lives[i].bound is None else self.steps - x for i, x in enumerate(self._live_armed))

    def fingerprint(self) -> int:
        """Hash of everything that decides the future: memory, every stack and its locals."""
        from vcoresim.engine.fingerprint import state_fingerprint

        return state_fingerprint(self)


_NEVER_LOCAL = frozenset({O.Nap, O.SpinLock, O.SpinTryLock, O.SpinUnlock, O.WaitUntil, O.SendIPI, O.Load, O.Store, O.LoadN, O.StoreN, O.RMW})
# Operations that change a thread's mode (MSR bits other than EE, its stack or
# power state): they write its ``cpu:NAME`` pseudo-location.  Enabling and
# disabling interrupts changes only EE, which matters through the interrupt
# locations the step reads, not through the mode.
_CPU_WRITERS = frozenset({O.MtMsr, O.Nap, O.ResumeFrame, O.ContextSwitch, Rfid})
_MAY_ENABLE_EE = frozenset({O.IrqEnable, O.ResumeFrame, O.ContextSwitch, Rfid})


def _may_enable_ee(op: O.Op) -> bool:
    """Could MSR[EE] be on after this op (so a pending interrupt is taken next)?"""
    if op.__class__ is O.MtMsr:
        return bool(op.set_bits & MSR_EE)  # type: ignore[attr-defined]
    return op.__class__ in _MAY_ENABLE_EE


def _ref_positions(fr: Frame, value: Any) -> Any:
    """``value`` with each saved-frame id replaced by its position in the
    frame's ``refs`` (the distinct ids the frame was sent, in order; the
    fingerprint names the saved frames themselves)."""
    refs = fr.refs
    if refs is None:
        refs = fr.refs = []

    def pos(x: Any) -> Any:
        if type(x) is not FrameRef:
            return stable(x)
        fid = int(x)
        if fid not in refs:
            refs.append(fid)
        return (0x5F3759DF_0000_0002, refs.index(fid))  # equal ids, equal positions

    return pos(value) if type(value) is FrameRef else tuple(pos(x) for x in value)


def stack_of(a: Actor) -> list[str]:
    """The actor's call stack, outermost first, as function names."""
    names: list[str] = []
    for fr in a.stack:
        if fr.kind == IRQ:
            names.append(f"<{fr.label}>")
        g: Any = fr.gen
        while g is not None and hasattr(g, "gi_code"):
            names.append(g.gi_code.co_name)
            g = g.gi_yieldfrom
    return names
