"""Timed simulation: a deterministic discrete-event driver over the model code.

The same generators that ``check`` explores run here under a clock.  Each
actor has a *ready time*; the driver repeatedly steps the actor whose next
transition can happen earliest (ties broken by ``random.Random(seed)``, never
by container order) and advances that actor's clock by what the step cost.

Timing rules (see ``docs/simulate.md`` for the defaults and their sources):

* ``Delay(d)`` lasts ``d``.  It is *preemptible*: an interrupt that becomes
  deliverable during it is taken when it arrives; if the handler returns, the
  delay resumes and still ends at its original end time.  (A handler that
  throws into the interrupted code abandons the rest of the delay.)  A delay
  that runs to its end logs its ``event``, if it names one, there.
* Every other operation costs a small per-op latency from :class:`Timing`.
* A blocked actor (unsatisfied ``WaitUntil``, held ``SpinLock``, ``Nap``)
  becomes ready when the write that enables it happened, plus
  ``Timing.ipi_latency_ns`` if that write was a ``SendIPI``, plus
  ``Timing.nap_wakeup_ns`` if the actor was napping.  A running thread with
  MSR[EE] set (or any running thread, for a non-maskable interrupt of a
  ``HwThread(nmi=True)``) that an IPI makes interruptible likewise takes it
  at send time + IPI latency.
* A ``WaitUntil(timeout=ns)`` still unsatisfied at its deadline (the time it
  became pending + ``ns``) is stepped as a timeout at the deadline, not before.

Durations (``engine/timing.py``): model code names what a wait lasts (a
number of nanoseconds, a workload distribution, a ``Timing`` parameter, the
next host tick, a timer's deadline) and the driver resolves it when the
operation becomes pending, drawing from a stream seeded by the run's seed
alone (``SimContext``).  ``Choose`` operations with more than one option are
resolved with the same stream, honouring ``weights``.  ``SetTimer`` arms a
hardware timer: when it fires the driver writes its location (``timer``
event) and re-evaluates whoever waits on it.  A program that names a
``timed`` counterpart (a scenario's model with an open-ended workload) runs
that one's build and configuration.

Events: a ``Note(text, event=..., data=...)`` with an ``event`` is logged as
``(time, actor, event, data)``, and so is a ``Delay`` with an ``event`` that
ran to its end.  The driver itself logs what it observes in
the engine: ``nap``, ``wake`` (data: reason), ``irq`` (data: kind), ``ipi``
(data: target, loc) for every ``SendIPI`` op, ``timeout`` (data: what) for a
wait that gave up.  See :mod:`vcoresim.simulate.metrics` for the events the
model should emit.
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from vcoresim.engine import ops as O
from vcoresim.engine import timing as durations
from vcoresim.engine.msr import MSR_EE
from vcoresim.engine.runtime import Execution, Rfid, stack_of
from vcoresim.engine.world import DONE, NAP, RUN, Actor, Frame, Program
from vcoresim.simulate.states import state_of

NS_PER_US = 1_000
NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class Timing:
    """Latencies in nanoseconds.  Sources are in ``docs/simulate.md``;
    ASSUMPTION marks a figure chosen for the model, not taken from a source."""

    #: Load / Store / satisfied wait (its last load).  ASSUMPTION: a cache hit, ~1 ns at 3-4 GHz.
    mem_ns: int = 1
    #: RMW (lwarx/stwcx.), spin lock / unlock.  ASSUMPTION: uncontended reservation pair.
    atomic_ns: int = 5
    #: Barrier (sync / lwsync / isync ...).  ASSUMPTION: a heavyweight sync drains the store queue.
    barrier_ns: int = 10
    #: mtmsrd, irq enable / disable, rfid, resume of a saved frame.  ASSUMPTION.
    msr_ns: int = 5
    #: Cost to the *sender* of a SendIPI (cache-inhibited store to the MFRR).  ASSUMPTION.
    ipi_send_ns: int = 100
    #: Send to arrival at the target.  signal-entry-race.md §6: "order of microseconds (model parameter)".
    ipi_latency_ns: int = 1 * NS_PER_US
    #: Executing ``nap`` (state save, the instruction).  ASSUMPTION.
    nap_entry_ns: int = 500
    #: Wake-up interrupt to the first instruction at the reset vector.  ASSUMPTION: "a few µs".
    nap_wakeup_ns: int = 5 * NS_PER_US
    #: Taking an interrupt (vector, state save).  ASSUMPTION.
    irq_entry_ns: int = 200
    #: Host ``__switch_to``.  ASSUMPTION: a Linux context switch costs 1-3 µs.
    context_switch_ns: int = 2 * NS_PER_US
    #: World switch into the guest, charged before a ``guest_enter`` mark.  ASSUMPTION: ~1 µs.
    guest_entry_ns: int = 1 * NS_PER_US
    #: World switch out of the guest, charged after a ``guest_exit`` mark.  ASSUMPTION: ~1 µs.
    guest_exit_ns: int = 1 * NS_PER_US
    #: Host C code of a POWER9 guest entry from ``kvmppc_start_thread`` to ``__kvmppc_vcore_entry``
    #: (start threads, unlock, guest_enter accounting, save host state; the entry model only).
    #: ASSUMPTION: a couple of µs (signal-entry-race.md §3.1: "the window is long").
    entry_path_ns: int = 2 * NS_PER_US
    #: Host tick.  signal-entry-race.md §6 / hmi-timebase.md §6: 4 ms at HZ=250.
    host_tick_ns: int = 4 * NS_PER_MS
    #: Guest timeslice (HDEC at entry = the host DEC, i.e. at most one tick).  Same sources.
    timeslice_ns: int = 4 * NS_PER_MS
    #: Timebase frequency.  hmi-timebase.md §6: 512 MHz (1 tick = 1.953125 ns).
    tb_hz: int = 512_000_000

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def replace(self, **changes: int) -> Timing:
        """Override parameters (``[simulate] timing``): known names, whole nanoseconds
        from 0 (periods and the timebase frequency from 1) to 1000 s."""
        known = [f.name for f in dataclasses.fields(self)]
        for name in sorted(changes):
            if name not in known:
                raise ValueError(f"timing.{str(name)[:40]}: unknown parameter (known: {', '.join(known)})")
            v = changes[name]
            low = 1 if name in POSITIVE_TIMING else 0
            if type(v) is not int or not low <= v <= durations.MAX_DURATION_NS:
                raise ValueError(f"timing.{name}: {v!r:.40} is not a whole number in [{low}, {durations.MAX_DURATION_NS}]")
        return dataclasses.replace(self, **changes)


#: Timing parameters that divide or are periods: at least 1.
POSITIVE_TIMING = frozenset({"host_tick_ns", "timeslice_ns", "tb_hz"})


class Event(NamedTuple):
    """One entry of the event log."""

    t: int  # ns of simulated time
    actor: str
    event: str
    data: dict[str, Any]


class SimContext:
    """The timed run's clock, timing parameters and seeded workload stream.

    Model code never sees it: the driver resolves the durations operations
    carry (``engine/timing.py``) through :meth:`duration`.  ``rng`` is seeded
    from the run's seed alone, so a run is reproducible, and is a stream of
    its own, so workload draws do not shift the driver's tie-breaks.
    """

    def __init__(self, seed: int, timing: Timing) -> None:
        self.seed = seed
        self.timing = timing
        self.rng = random.Random(f"vcoresim-workload-{seed}")
        #: Deadlines of the armed timers: location -> (time, value written when it fires).
        self.timers: dict[str, tuple[int, Any]] = {}

    def sample(self, spec: float | Mapping[str, Any]) -> int:
        """Draw from a distribution spec as a scenario file writes it (see ``engine/timing.py``)."""
        return durations.sample(spec, self.rng)

    def duration(self, d: durations.Duration, now: int) -> int:
        """Nanoseconds that duration ``d`` lasts from time ``now``."""
        if isinstance(d, int):
            return max(0, d)
        if isinstance(d, durations.Param):
            return max(0, int(getattr(self.timing, d.name)))
        if isinstance(d, durations.NextTick):
            tick = int(getattr(self.timing, d.name))
            return tick - now % tick
        if isinstance(d, durations.Until):
            armed = self.timers.get(d.loc)
            return max(0, armed[0] - now) if armed is not None else 0
        return self.sample(d)


@dataclass
class SimResult:
    program: str
    seed: int
    duration_ns: int
    end_ns: int  # simulated time the run covered (== duration_ns unless it ended earlier)
    outcome: str  # duration | done | deadlock | violation | max_steps | interrupted
    violation: dict[str, Any] | None
    events: list[Event]
    actors: list[str]
    roles: dict[str, str]
    busy_ns: dict[str, int]  # executing ops and delays
    wait_ns: dict[str, int]  # blocked in a wait or spin lock (a real spin burns the thread)
    nap_ns: dict[str, int]  # status NAP
    counts: dict[str, int]
    timing: Timing
    config: dict[str, Any] = field(default_factory=dict)
    #: With ``record_states``: (time, actor, state, innermost function) at every change of state.
    states: list[tuple[int, str, str, str]] = field(default_factory=list)

    def as_dict(self, *, events: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "program": self.program,
            "seed": self.seed,
            "duration_ns": self.duration_ns,
            "end_ns": self.end_ns,
            "outcome": self.outcome,
            "violation": self.violation,
            "busy_ns": self.busy_ns,
            "wait_ns": self.wait_ns,
            "nap_ns": self.nap_ns,
            "counts": self.counts,
            "timing": self.timing.as_dict(),
        }
        if events:
            doc["events"] = [[e.t, e.actor, e.event, e.data] for e in self.events]
        return doc


def _time(e: Event) -> int:
    return e.t


class _HookedExecution(Execution):
    """An execution whose ``on_op`` hook is in place before the actors are primed,
    so the local ops run at construction (a ``Note`` at the top of a body) are seen."""

    def __init__(self, program: Program, hook: Callable[[Actor, O.Op, Any], None]) -> None:
        self._hook = hook
        super().__init__(program, timed=True)

    @property  # type: ignore[override]
    def on_op(self) -> Callable[[Actor, O.Op, Any], None]:
        return self._hook

    @on_op.setter
    def on_op(self, value: Callable[[Actor, O.Op, Any], None] | None) -> None:
        if value is not None:  # the base class resets it to None in __init__
            self._hook = value


class TimedDriver:
    """One timed run of ``program``.  Use :func:`simulate` unless you need the execution."""

    def __init__(
        self,
        program: Program,
        *,
        seed: int = 0,
        timing: Timing | None = None,
        record_states: bool = False,
        sink: Callable[[Event, int | None], None] | None = None,
        keep_events: bool = True,
    ) -> None:
        """``sink``: called with every event in time order as the run goes (and the
        run's end for the last ones), e.g. ``MetricsStream.feed``; ``keep_events``:
        also keep the log in ``SimResult.events`` (a long run's log is large)."""
        self.sink = sink
        self.keep_events = keep_events
        self._buffer: list[tuple[int, int, Event]] = []  # events not yet given to the sink, by (time, order)
        self._seq = 0
        self.n_events = 0
        self.late_events = 0  # events that arrived after later ones were given to the sink (0: see _flush)
        self._flushed = -1
        self.timing = timing or Timing()
        self.record_states = record_states
        self.states: list[tuple[int, str, str, str]] = []
        self.seed = seed
        self.sim = SimContext(seed, self.timing)
        self.sched_rng = random.Random(seed)
        if program.timed is not None:  # e.g. the scenario's model with an open-ended workload
            program = dataclasses.replace(program, build=program.timed.build, config=program.timed.config, timed=None)
        self.program = program
        self.events: list[Event] = []
        self.counts: dict[str, int] = {"steps": 0, "ops": 0, "irqs": 0, "wakes": 0, "timeouts": 0, "ipis": 0, "choices": 0, "timers": 0}
        # Per-step scratch filled by _on_op.
        self._clock = 0
        self._writes: list[tuple[tuple[str, ...], int, bool]] = []
        self.limits: list[dict[Frame, tuple[O.Op, int]]] = []
        # Priming (the engine running each body's leading local ops) happens in the
        # Execution constructor: charge it to each actor from time 0.
        self._priming: dict[int, int] | None = {}
        self.ex = _HookedExecution(program, self._on_op)
        primed, self._priming = self._priming, None
        n = len(self.ex.actors)
        self.ready = [primed.get(i, 0) for i in range(n)]  # earliest time of the actor's next step
        self.last = list(self.ready)  # end of the actor's last step (accounting of the gap before the next)
        self.busy = list(self.ready)
        self.wait = [0] * n
        self.nap = [0] * n
        # Per actor: frame -> (pending Delay/WaitUntil op, its end time), so a delay
        # resumed after an interrupt keeps its end and a wait keeps its deadline.
        self.limits = [{} for _ in range(n)]
        self.cand: list[int | None] = [None] * n
        self.version = [0] * n
        self.was_enabled = [False] * n
        self.was_delivering = [False] * n
        self.deps: list[tuple[str, ...]] = [()] * n
        self.watch: dict[str, dict[int, None]] = {}
        self.heap: list[tuple[int, float, int, int]] = []
        for a in self.ex.actors:
            self._arm(a)
            self._reindex(a.idx)
            self._eval(a.idx)
        self._state: list[str | None] = [None] * n
        if record_states:
            self._kvm_model = "machine" in program.config
            for a in self.ex.actors:
                self._note_state(a, self.ready[a.idx])

    def _note_state(self, a: Actor, t: int) -> None:
        if a.status == DONE:
            st, fn = "done", ""
        else:
            names = stack_of(a)
            st, fn = state_of(names, a.msr, a.status == NAP, self._kvm_model), (names[-1] if names else "")
        if st != self._state[a.idx]:
            self._state[a.idx] = st
            self.states.append((t, a.name, st, fn))

    # ------------------------------------------------------------ bookkeeping
    def _delivers(self, a: Actor) -> bool:
        # As the engine: a thread with ``HwThread.nmi`` is asked whatever MSR[EE] is
        # (its ``pending`` applies EE to the maskable interrupts itself).
        hw = a.hw
        return a.status == RUN and hw is not None and bool(a.msr & MSR_EE or hw.nmi) and hw.pending(self.ex.mem) is not None

    def _arm(self, a: Actor) -> None:
        """Record the end time of a Delay / WaitUntil(timeout) that just became pending."""
        if a.status != RUN or not a.stack:
            return
        fr = a.stack[-1]
        op = fr.op
        cls = op.__class__
        if cls is O.Delay:
            d = op.ns  # type: ignore[union-attr]
        elif cls is O.WaitUntil and op.timeout is not None:  # type: ignore[union-attr]
            d = op.timeout  # type: ignore[union-attr]
        else:
            return
        lim = self.limits[a.idx]
        got = lim.get(fr)
        if got is not None and got[0] is op:
            return  # resumed after an interrupt: same end, no new draw
        if lim:  # drop entries of frames no longer on the stack
            live = {id(f) for f in a.stack}
            for f in [f for f in lim if id(f) not in live]:
                del lim[f]
        now = self.ready[a.idx]
        lim[fr] = (op, now + self.sim.duration(d, now))  # type: ignore[arg-type]

    def _reindex(self, i: int) -> None:
        """Locations whose writes may change actor ``i``'s enabledness (only its own step changes them)."""
        a = self.ex.actors[i]
        deps: tuple[str, ...] = ()
        if a.status != DONE:
            if a.hw is not None:
                deps = a.hw.irq_locs
            if a.status == RUN:
                op = a.stack[-1].op
                if op.__class__ is O.SpinLock:
                    deps = (*deps, op.loc_)  # type: ignore[union-attr]
                elif op.__class__ is O.WaitUntil:
                    deps = (*deps, *op.locs)  # type: ignore[union-attr]
        if deps == self.deps[i]:
            return
        for loc in self.deps[i]:
            self.watch[loc].pop(i, None)
        for loc in deps:
            self.watch.setdefault(loc, {})[i] = None
        self.deps[i] = deps

    def _eval(self, i: int, tw: int | None = None, ipi: bool = False) -> None:
        """Recompute when actor ``i`` can next step; ``tw`` is the time of a write that may have enabled it."""
        a = self.ex.actors[i]
        ex = self.ex
        t: int | None
        enabled = a.status != DONE and ex.is_enabled(a)
        delivering = enabled and self._delivers(a)
        if tw is not None:
            if enabled and not self.was_enabled[i]:
                extra = (self.timing.nap_wakeup_ns if a.status == NAP else 0) + (self.timing.ipi_latency_ns if ipi else 0)
                self.ready[i] = max(self.ready[i], tw + extra)
            elif delivering and not self.was_delivering[i]:
                self.ready[i] = max(self.ready[i], tw + (self.timing.ipi_latency_ns if ipi else 0))
        self.was_enabled[i] = enabled
        self.was_delivering[i] = delivering
        if a.status == DONE:
            t = None
        elif delivering or a.status == NAP:
            t = self.ready[i] if enabled else None
        else:
            fr = a.stack[-1]
            op = fr.op
            cls = op.__class__
            if cls is O.Delay or (cls is O.WaitUntil and not enabled and op.may_time_out(ex.mem)):  # type: ignore[union-attr]
                lim = self.limits[i].get(fr)
                end = lim[1] if lim is not None and lim[0] is op else self.ready[i]
                t = max(self.ready[i], end)
            else:
                t = self.ready[i] if enabled else None
        if t != self.cand[i]:
            self.cand[i] = t
            self.version[i] += 1
            if t is not None:
                heapq.heappush(self.heap, (t, self.sched_rng.random(), i, self.version[i]))

    def _emit(self, e: Event) -> None:
        self.n_events += 1
        if self.keep_events:
            self.events.append(e)
        if self.sink is not None:
            heapq.heappush(self._buffer, (e.t, self._seq, e))
            self._seq += 1

    def _flush(self, before: int | None, end: int | None = None) -> None:
        """Give the sink every buffered event earlier than ``before`` (all if ``None``).

        Steps are taken in time order and every event a step logs is at or after
        its time, so once the driver takes a step at ``t`` no event before ``t``
        can come: the sink sees the events in the order of the stable sort by time
        that ``SimResult.events`` has.  (``late_events`` counts any exception.)"""
        buf = self._buffer
        sink = self.sink
        assert sink is not None
        while buf and (before is None or buf[0][0] < before):
            t, _seq, e = heapq.heappop(buf)
            if t < self._flushed:
                self.late_events += 1
            self._flushed = t
            sink(e, end)

    # ------------------------------------------------------------------ hook
    def _on_op(self, a: Actor, op: O.Op, value: Any) -> None:
        """Called by the engine for every executed op: charge its cost, log its event."""
        tm = self.timing
        cls = op.__class__
        self.counts["ops"] += 1
        prime = self._priming
        clock = self._clock if prime is None else prime.get(a.idx, 0)
        if cls is O.Note:
            ev = op.event  # type: ignore[attr-defined]
            if ev is not None:
                if ev == "guest_enter":
                    clock += tm.guest_entry_ns
                data = dict(op.data) if op.data else {}  # type: ignore[attr-defined]
                self._emit(Event(clock, a.name, ev, data))
                if ev == "guest_exit":
                    clock += tm.guest_exit_ns
        elif cls is O.Load or cls is O.Store:
            clock += tm.mem_ns
        elif cls is O.WaitUntil:
            fr = a.stack[-1]
            self.limits[a.idx].pop(fr, None)
            if value is O.TIMEOUT:
                self.counts["timeouts"] += 1
                self._emit(Event(clock, a.name, "timeout", {"what": op.what or ",".join(op.locs)}))  # type: ignore[attr-defined]
            else:
                clock += tm.mem_ns
        elif cls is O.Delay:
            self.limits[a.idx].pop(a.stack[-1], None)  # its time was spent before the step
            if op.event is not None:  # type: ignore[attr-defined]  # it ran to its end
                self._emit(Event(clock, a.name, op.event, dict(op.data) if op.data else {}))  # type: ignore[attr-defined]
        elif cls is O.SetTimer:
            timer = op.timer  # type: ignore[attr-defined]
            if op.ns is None:  # type: ignore[attr-defined]
                self.sim.timers.pop(timer, None)
            else:
                self.sim.timers[timer] = (clock + self.sim.duration(op.ns, clock), op.value)  # type: ignore[attr-defined]
        elif cls is O.RMW or cls is O.SpinLock or cls is O.SpinTryLock or cls is O.SpinUnlock:
            clock += tm.atomic_ns
        elif cls is O.Barrier:
            clock += tm.barrier_ns
        elif cls is O.SendIPI:
            clock += tm.ipi_send_ns
            self.counts["ipis"] += 1
            self._emit(Event(clock, a.name, "ipi", {"target": op.target, "loc": op.loc_}))  # type: ignore[attr-defined]
        elif cls is O.Nap:
            clock += tm.nap_entry_ns
            self._emit(Event(clock, a.name, "nap", {"what": op.what}))  # type: ignore[attr-defined]
        elif cls is O.ContextSwitch:
            clock += tm.context_switch_ns
            self._emit(Event(clock, a.name, "switch", {"prev": op.prev.name, "next": op.next.name}))  # type: ignore[attr-defined]
        elif cls in _MSR_OPS:
            clock += tm.msr_ns
        if prime is not None:
            prime[a.idx] = clock
            return
        w = op.writes
        if w:
            self._writes.append((w, clock, cls is O.SendIPI))
        self._clock = clock

    # ------------------------------------------------------------------ run
    def run(
        self,
        duration_ns: int,
        max_steps: int | None = None,
        stop: Callable[[], bool] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> SimResult:
        """``stop`` (Ctrl-C) is polled every 1024 steps: the run ends early, outcome
        ``interrupted``.  ``progress(now_ns, steps)``: called every 16,384 steps (a
        progress display)."""
        ex = self.ex
        actors = ex.actors
        heap = self.heap
        outcome = "done"
        end = 0
        timers = self.sim.timers
        while True:
            if ex.violation is not None:
                outcome = "violation"
                break
            while heap and heap[0][3] != self.version[heap[0][2]]:
                heapq.heappop(heap)  # stale entries
            if timers:
                loc, (tt, value) = min(timers.items(), key=lambda kv: (kv[1][0], kv[0]))
                if tt <= duration_ns and (not heap or tt <= heap[0][0]):
                    self._fire(loc, tt, value)
                    end = max(end, tt)
                    continue
            if not heap:
                ex.finish(bounded=False)
                outcome = "deadlock" if ex.outcome == "violation" and ex.violation and ex.violation.kind == "deadlock" else (
                    "violation" if ex.outcome == "violation" else "done"
                )
                break
            t, _tie, i, ver = heapq.heappop(heap)
            if ver != self.version[i]:
                continue
            if t > duration_ns:
                heapq.heappush(heap, (t, _tie, i, ver))
                outcome = "duration"
                end = duration_ns
                break
            if max_steps is not None and self.counts["steps"] >= max_steps:
                outcome = "max_steps"
                break
            if stop is not None and self.counts["steps"] & 0x3FF == 0 and stop():
                outcome = "interrupted"
                break
            if self.sink is not None:
                self._flush(t)
            self.cand[i] = None  # consumed: _step re-evaluates the actor
            self._step(actors[i], t)
            end = max(end, t)
            if progress is not None and not self.counts["steps"] & 0x3FFF:
                progress(t, self.counts["steps"])
        if outcome == "duration":
            ex.finish(bounded=True)
        else:
            end = max(end, max((self.last[a.idx] for a in actors), default=0)) if outcome != "violation" else end
            end = min(end, duration_ns)
        self._tail(end)
        if self.sink is not None:
            self._flush(None, end)
        names = [a.name for a in actors]
        v = ex.violation
        return SimResult(
            program=self.program.name,
            seed=self.seed,
            duration_ns=duration_ns,
            end_ns=end,
            outcome=outcome,
            violation=None if v is None else {**v.as_dict(), "t": end},
            events=sorted(self.events, key=_time) if self.keep_events else [],  # stable: same-time events keep execution order
            actors=names,
            roles={a.name: a.role for a in actors},
            busy_ns=dict(zip(names, self.busy, strict=True)),
            wait_ns=dict(zip(names, self.wait, strict=True)),
            nap_ns=dict(zip(names, self.nap, strict=True)),
            counts={**self.counts, "events": self.n_events},
            timing=self.timing,
            config=dict(self.program.config),
            states=sorted(self.states, key=lambda s: s[0]),
        )

    def _fire(self, loc: str, t: int, value: Any) -> None:
        """A timer fires at ``t``: the hardware writes its location; whoever waits on it is re-evaluated."""
        del self.sim.timers[loc]
        self.counts["timers"] += 1
        self._emit(Event(t, "timer", "timer", {"loc": loc}))
        self.ex.external_write(loc, value)
        for j in sorted(self.watch.get(loc, {})):  # sorted: tie-break draws must not follow set order
            self._eval(j, t)

    def _gap(self, a: Actor, until: int) -> None:
        """Account the time between the actor's ready time and ``until`` to what it was doing."""
        i = a.idx
        gap = until - self.last[i]
        if gap <= 0 or a.status == DONE:
            return
        if a.status == NAP:
            self.nap[i] += gap
        elif a.stack and a.stack[-1].op.__class__ is O.Delay:
            self.busy[i] += gap
        else:
            self.wait[i] += gap

    def _step(self, a: Actor, t: int) -> None:
        ex = self.ex
        i = a.idx
        self._gap(a, t)
        self._clock = t
        self._writes = []
        alt = 0
        hw = a.hw
        if a.status == NAP:
            assert hw is not None
            self.counts["wakes"] += 1
            self._emit(Event(t, a.name, "wake", {"reason": hw.wakeup(ex.mem)}))
        elif self._delivers(a):
            assert hw is not None
            self.counts["irqs"] += 1
            self._emit(Event(t, a.name, "irq", {"kind": hw.pending(ex.mem)}))
            self._clock = t + self.timing.irq_entry_ns
        else:
            op = a.stack[-1].op
            if op.__class__ is O.Choose and len(op.options) > 1:  # type: ignore[union-attr]
                n = len(op.options)  # type: ignore[union-attr]
                w = op.weights  # type: ignore[union-attr]
                self.counts["choices"] += 1
                alt = self.sim.rng.randrange(n) if w is None else self.sim.rng.choices(range(n), weights=w)[0]
        was_nap = a.status == NAP
        ex.step(i, alt)
        if self.record_states:
            self._note_state(a, t if was_nap else self._clock)
        steps = self.counts["steps"] = self.counts["steps"] + 1
        if steps & 0xFFF == 0:
            # The engine keeps every step's schedule entry and footprint for
            # exploration and replay; a timed run needs neither, and a long one
            # would hold millions.  (A violation's step index then counts from
            # the last trim; timed results report its time instead.)
            ex.schedule.clear()
            ex.footprints.clear()
        clock = self._clock
        self.busy[i] += clock - t
        self.ready[i] = self.last[i] = clock
        self._arm(a)
        self._reindex(i)
        self._eval(i)
        for locs, tw, ipi in self._writes:
            hit: set[int] = set()
            for loc in locs:
                w = self.watch.get(loc)
                if w:
                    hit.update(w)
            hit.discard(i)
            for j in sorted(hit):  # sorted: the tie-break draws must not follow set order
                self._eval(j, tw, ipi)

    def _tail(self, end: int) -> None:
        for a in self.ex.actors:
            if self.last[a.idx] < end:
                self._gap(a, end)
                self.last[a.idx] = end


_MSR_OPS = frozenset({O.IrqDisable, O.IrqEnable, O.MtMsr, O.ResumeFrame, Rfid})


def simulate(
    program: Program,
    *,
    duration_ns: int,
    seed: int = 0,
    timing: Timing | None = None,
    max_steps: int | None = None,
    record_states: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SimResult:
    """Run ``program`` for ``duration_ns`` of simulated time (or until nothing can move).
    ``record_states`` also records each actor's state changes (for timelines; slower);
    ``progress(now_ns, steps)`` is called every 16,384 steps."""
    if duration_ns <= 0:
        raise ValueError("duration: must be positive")
    return TimedDriver(program, seed=seed, timing=timing, record_states=record_states).run(duration_ns, max_steps, progress=progress)

