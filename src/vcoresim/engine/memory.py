"""Weak memory models: ``sc``, ``tso``, ``pso`` and ``power``.

The plain :class:`~vcoresim.engine.runtime.Execution` is sequentially
consistent.  A program whose ``memory_model`` is not ``sc`` (or that removes
barriers, see :mod:`vcoresim.check.mutation`) runs :class:`WeakExecution`
instead, so the SC path pays nothing for this module.

Every effect of weak memory is an ordinary, schedulable transition of a
*pseudo-actor*, so random walks, PCT, DPOR and replay explore it without
special cases, and traces record it:

- ``NAME~sb`` (every model but sc): commits one store from NAME's store
  buffer to memory.  ``tso``: the oldest (FIFO).  ``pso``: the oldest store
  of any location, except that a store-store barrier (``smp_wmb``, ``lwsync``,
  release) keeps later stores behind earlier ones.  ``power``: the oldest
  store of any location (barriers that order stores drain the buffer).
  Each choice is a branch of the transition.
- ``NAME~prop`` (power only): propagates the next committed write of one
  location to NAME.  A committed write is visible to its writer at once and
  reaches every other thread separately, in coherence order per location
  but in any order across locations (non-multi-copy-atomic), unless a
  cumulative barrier orders it after writes its writer had seen.  Lazily:
  no write reaches a thread that is not looking (napping with no wake-up
  enabled, or finished without hardware) on its own; a full barrier that
  needs it there carries it (``WeakExecution.lazy``).

Loads forward from the thread's own buffer.  Under ``power`` a load of x may
return any write of x between the thread's *floor* for x (the newest write it
must see: its own last read or write of x, coherence, or what a barrier,
acquire or IPI receipt made it wait for) and the newest write propagated to
it: a load satisfied early, before other loads that precede it.  Each
possible value is a branch (the newest first).

Barriers (``docs/memory-models.md`` has the table):

==========================  =========  ==================  ===========================
kind                        tso        pso                 power
==========================  =========  ==================  ===========================
smp_mb, sync, mb            drain      drain               drain + cumulative: every
                                                           write seen is propagated to
                                                           all threads; floors raised
wmb                         -          orders stores       as sync (powerpc wmb = sync)
smp_wmb, lwsync, release    -          orders stores       drain; later writes reach a
                                                           thread only after what this
                                                           thread had seen; floors
smp_rmb                     -          -                   as lwsync
isync, acquire              -          -                   floors raised
==========================  =========  ==================  ===========================

Spin lock, unlock, atomic read-modify-writes, sending an IPI, nap and a
context switch act as full barriers (``smp_mb``) and write memory directly,
visible to every thread at once; taking an interrupt or waking from nap
raises the floors (acquire).  Stated assumptions, see the docs.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import ChainMap
from collections.abc import Generator
from typing import Any

from vcoresim.engine import ops as O
from vcoresim.engine.msr import MSR_EE
from vcoresim.engine.runtime import Execution, OpRecord
from vcoresim.engine.world import DONE, NAP, RUN, Actor, Program

MODELS = ("sc", "tso", "pso", "power")

# What each barrier kind does per model: None (nothing), "full", "order"
# (pso: stores after it commit after stores before it), "lwsync" (power:
# drain, cumulativity for later writes, floors), "floor" (power: later loads
# see at least what was propagated to the thread).
_FULL = ("smp_mb", "sync", "mb")
ACTIONS: dict[str, dict[str, str | None]] = {
    "sc": {k: None for k in O.BARRIER_KINDS},
    "tso": {k: ("full" if k in _FULL else None) for k in O.BARRIER_KINDS},
    "pso": {k: ("full" if k in _FULL else "order" if k in ("smp_wmb", "lwsync", "release", "wmb") else None) for k in O.BARRIER_KINDS},
    "power": {
        k: ("full" if k in (*_FULL, "wmb") else "lwsync" if k in ("smp_wmb", "lwsync", "release", "smp_rmb", "acquire") else "floor")
        for k in O.BARRIER_KINDS
    },
}

#: Operations that act as a full barrier and then write memory directly (or change context).
_FULL_OPS = frozenset({O.SpinLock, O.SpinTryLock, O.SpinUnlock, O.RMW, O.SendIPI, O.Nap, O.ContextSwitch})
_DIRECT = (O.SpinLock, O.SpinTryLock, O.SpinUnlock, O.RMW, O.SendIPI)


def with_memory_model(program: Program, model: str, removed: frozenset[tuple[str, str, int]] = frozenset()) -> Program:
    """``program`` under ``model`` (and with ``removed`` barrier sites as no-ops).

    Both go into ``config`` so a trace replays the same run; the SC program
    with nothing removed is returned unchanged (its traces stay as they were)."""
    import dataclasses

    if model not in MODELS:
        raise ValueError(f"unknown memory model {model!r} (known: {', '.join(MODELS)})")
    if model == "sc" and not removed:
        return program
    config = dict(program.config)
    config["memory_model"] = model
    if removed:
        config["removed_barriers"] = [list(s) for s in sorted(removed)]
    return dataclasses.replace(program, config=config, memory_model=model, removed_barriers=frozenset(removed), execution=WeakExecution)


def split_memory_config(config: dict[str, Any]) -> tuple[dict[str, Any], str, frozenset[tuple[str, str, int]]]:
    """Inverse of :func:`with_memory_model` on a trace's config: (rest, model, removed)."""
    rest = {k: v for k, v in config.items() if k not in ("memory_model", "removed_barriers")}
    model = config.get("memory_model", "sc")
    removed = frozenset((str(f), str(k), int(line)) for f, k, line in config.get("removed_barriers", []))
    return rest, model, removed


def barrier_site(gen: Any, kind: str) -> tuple[str, str, int]:
    """(function, kind, line) of the barrier the innermost generator of ``gen`` yields."""
    g = gen
    while True:
        inner = getattr(g, "gi_yieldfrom", None)
        if inner is None or not hasattr(inner, "gi_code"):
            break
        g = inner
    frame = g.gi_frame
    return (g.gi_code.co_name, kind, frame.f_lineno if frame is not None else 0)


def _idle() -> Generator[O.Op, Any, None]:
    yield O.Note("pseudo-actor")  # never advanced: pseudo-actors are stepped by WeakExecution


class WeakExecution(Execution):
    """An execution under a weak memory model (see the module docstring)."""

    #: power: lazy propagation to threads that are not looking (docs/exploration.md,
    #: "Weak memory"): no write reaches a finished thread without hardware (an
    #: environment source, a litmus thread), and none is propagated on its own to a
    #: napping thread whose wake-up is not enabled: a full barrier that waits for
    #: writes to reach it makes them reach it as part of the barrier step.  False:
    #: every write reaches every thread in every order (the unreduced reference of
    #: tests/test_power_dpor.py).
    lazy = True

    def __init__(self, program: Program, *, record: bool = False, timed: bool = False, history: bool = False, sites: set[tuple[str, str, int]] | None = None) -> None:
        self.model = program.memory_model
        self.act = ACTIONS[self.model]
        self.removed = program.removed_barriers
        self.sites = sites  # barrier sites seen, when discovering them
        self.power = self.model == "power"
        self.weak = False  # boot runs sequentially consistent (the machine comes up quiescent)
        super().__init__(program, record=record, timed=timed, history=history)
        n = self.n_real = len(self.actors)
        self.buf: list[list[list[Any]]] = [[] for _ in range(n)]  # [seq, loc, value, epoch]
        self.seq = [0] * n
        self.epoch = [0] * n
        # power: coherence order per location, commit timestamps, what each write
        # requires of a thread before it may reach it (its writer's lwsync view).
        self.co: dict[str, list[Any]] = {}
        self.ts: dict[str, list[int]] = {}
        self.req: dict[str, list[tuple[int, dict[str, int]] | None]] = {}
        self.clock = 0
        self.lag: list[dict[str, int]] = [{} for _ in range(n)]  # loc -> index of the newest write propagated, when not the latest
        self.floor: list[dict[str, int]] = [{} for _ in range(n)]  # coherence floors from own reads and writes
        self.fb: list[tuple[int, dict[str, int]] | None] = [None] * n  # floors from the last barrier: (clock, lag snapshot)
        self.bview: list[tuple[int, dict[str, int]] | None] = [None] * n  # view at the last lwsync: required by later writes
        self._unc: dict[str, bool] = {}
        self._lookout_cache: dict[int, tuple[str, ...]] = {}
        # power: loads satisfied after later instructions (Load(late=True)):
        # token -> (location, dependency tokens); values of satisfied ones not yet
        # awaited; what each token'd load had seen when satisfied (address deps).
        self.pend: list[dict[int, tuple[str, tuple[int, ...], bool]]] = [{} for _ in range(n)]
        self.lval: list[dict[int, Any]] = [{} for _ in range(n)]
        self.sat: list[dict[int, tuple[int, dict[str, int]] | None]] = [{} for _ in range(n)]
        if self.model != "sc":
            base = list(self.actors)
            for a in base:
                self.actors.append(Actor(f"{a.name}~sb", len(self.actors), _idle(), True, None, 0, "store-buffer"))
            if self.power:
                for a in base:
                    self.actors.append(Actor(f"{a.name}~prop", len(self.actors), _idle(), True, None, 0, "propagation"))
                for a in base:
                    self.actors.append(Actor(f"{a.name}~ld", len(self.actors), _idle(), True, None, 0, "late-load"))
            self.history.extend([0] * (len(self.actors) - n))
        self.weak = self.model != "sc"

    # ------------------------------------------------------------ helpers
    def _stores_in_flight(self, locs: tuple[str, ...]) -> bool:
        # Only where stores of one thread to different locations commit out of
        # program order: under tso a buffer commits in order.
        if not self.weak or self.model not in ("pso", "power"):
            return False  # (boot runs sequentially consistent, before the buffers exist)
        return any(e[1] in locs for buf in self.buf for e in buf)

    def _pseudo(self, idx: int) -> tuple[str, int] | None:
        """("sb"|"prop"|"ld", owner) for a pseudo-actor index, else None."""
        n = self.n_real
        if idx < n:
            return None
        return ("sb", idx - n) if idx < 2 * n else ("prop", idx - 2 * n) if idx < 3 * n else ("ld", idx - 3 * n)

    def _committable(self, u: int) -> list[int]:
        buf = self.buf[u]
        if not buf:
            return []
        if self.model == "tso":
            return [0]
        first_epoch = buf[0][3]
        seen: set[str] = set()
        out = []
        for i, e in enumerate(buf):
            if e[1] not in seen and e[3] == first_epoch:
                out.append(i)
            seen.add(e[1])
        return out

    def _view_idx(self, u: int, x: str) -> int:
        return self.lag[u].get(x, len(self.co[x]) - 1)

    def _need(self, snap: tuple[int, dict[str, int]], y: str) -> int:
        t, lag = snap
        if y in lag:
            return lag[y]
        ts = self.ts.get(y)
        return bisect_right(ts, t) - 1 if ts is not None else 0

    def _low(self, u: int, x: str) -> int:
        lo = self.floor[u].get(x, 0)
        fb = self.fb[u]
        if fb is not None:
            lo = max(lo, self._need(fb, x))
        return lo

    def _forward(self, u: int, x: str) -> tuple[bool, Any]:
        for e in reversed(self.buf[u]):
            if e[1] == x:
                return True, e[2]
        return False, None

    def _choices(self, u: int, x: str, dep: tuple[int, ...] = ()) -> list[int] | None:
        """power: coherence indices a load of x by u may read (newest first), or None (memory).
        ``dep``: tokens of loads this one has an address dependency on."""
        co = self.co.get(x)
        if co is None:
            return None
        lo, hi = self._low(u, x), self._view_idx(u, x)
        for t in dep:
            snap = self.sat[u].get(t)
            if snap is not None:
                lo = max(lo, self._need(snap, x))
        if lo >= hi:
            return [hi]
        firsts: list[int] = []
        for i in range(lo, hi + 1):  # the oldest index of each value: the most permissive floor
            if not any(co[j] == co[i] for j in firsts):
                firsts.append(i)
        if hi not in firsts:  # the newest value keeps the newest index (as SC would)
            firsts = [i for i in firsts if co[i] != co[hi]] + [hi]
        return sorted(firsts, reverse=True)

    def _satisfy(self, u: int, x: str, dep: tuple[int, ...], alt: int, token: int | None) -> Any:
        """power: the value a load of x by u returns (branch ``alt``), raising its floor;
        records what u had seen when ``token`` is given (for address dependencies)."""
        hit, result = self._forward(u, x)
        newest = False
        if self._uncached(x):
            result = self.mem[x]
        elif not hit:
            ch = self._choices(u, x, dep)
            if ch is None:
                result = self.mem[x]
                newest = True
            else:
                i = ch[alt]
                self.floor[u][x] = max(self.floor[u].get(x, 0), i)
                result = self.co[x][i]
                newest = i == self._view_idx(u, x)
        if token is not None:
            # A load that returned the newest write it could see was satisfied now:
            # a load with an address dependency on it is satisfied later still.
            # One that returned an older write may have been satisfied earlier.
            self.sat[u][token] = self._snapshot(u) if newest else None
        return result

    def _late_choices(self, u: int) -> list[tuple[int, int]]:
        """power: (token, branch) of every way one of u's late loads can be satisfied now."""
        out = []
        for t, (x, dep, _feeds) in self.pend[u].items():
            n = 1
            if not self._forward(u, x)[0] and not self._uncached(x):
                ch = self._choices(u, x, dep)
                n = len(ch) if ch else 1
            out.extend((t, k) for k in range(n))
        return out

    def _rmw_ready(self, u: int, x: str) -> bool:
        """power, a relaxed RMW: its load must read the coherence-latest write of x."""
        return x not in self.lag[u] and not any(e[1] == x for e in self.buf[u])

    def _store(self, u: int, x: str, value: Any, i: int) -> Any:
        """A store: into u's buffer, or straight to memory (and every thread) if x is uncached.
        ``i``: its position in a StoreN (entry keys follow the footprint's)."""
        if self._uncached(x):
            old = self.mem[x]
            self.mem[x] = value
            if self.power:
                self._direct(x, old)
            self.seq[u] += 1  # keep entry numbers aligned with the StoreN footprint
            return value
        self.buf[u].append([self.seq[u], x, value, self.epoch[u], ()])
        self.seq[u] += 1
        return value

    def _store_n(self, u: int, items: tuple[tuple[str, Any], ...]) -> None:
        """A StoreN.  Its uncached items (ghost and monitor state) shadow its first
        cached store: they take effect when that store commits, not when it is
        buffered, so a ghost never runs ahead of the memory it describes."""
        first = next((i for i, (loc, _) in enumerate(items) if not self._uncached(loc)), None)
        if first is None:
            for i, (loc, value) in enumerate(items):
                self._store(u, loc, value, i)
            return
        riders = tuple((loc, value) for loc, value in items if self._uncached(loc))
        for i, (loc, value) in enumerate(items):
            if self._uncached(loc):
                self.seq[u] += 1
            else:
                self._store(u, loc, value, i)
                if i == first and riders:
                    self.buf[u][-1][4] = riders

    def _riders(self, u: int, entry: list[Any]) -> None:
        for loc, value in entry[4]:
            old = self.mem[loc]
            self.mem[loc] = value
            if self.power:
                self._direct(loc, old)

    def _value(self, u: int, x: str, settle: bool) -> Any:
        """The newest value of x u can see (own buffer, then its view); ``settle`` moves its floor there."""
        if self._uncached(x):
            return self.mem[x]
        hit, v = self._forward(u, x)
        if hit:
            return v
        if self.power and x in self.co:
            i = self._view_idx(u, x)
            if settle:
                self.floor[u][x] = max(self.floor[u].get(x, 0), i)
            return self.co[x][i]
        return self.mem[x]

    def _propagated(self, u: int) -> bool:
        """power: every write u has seen has reached every thread."""
        for v in range(self.n_real):
            if v == u or not self.lag[v] or not self._looking(v):
                continue
            for x, j in self.lag[v].items():
                if j < self._view_idx(u, x):
                    return False
        return True

    def settled(self) -> bool:
        """Every buffer drained, every late load satisfied, every write propagated
        to every thread that may still read it (the end of a litmus execution)."""
        if not self.weak:
            return True
        return not any(self.buf) and not any(self.pend) and not any(lag and not self._gone(v) for v, lag in enumerate(self.lag))

    def _looking(self, v: int) -> bool:
        """power: may v look at its view before a full barrier of another thread
        waits for it?  Not a napping thread whose wake-up is not enabled (a
        finished thread without hardware has no view left: see _gone)."""
        if not self.lazy:
            return True
        a = self.actors[v]
        if a.status == DONE:
            return not self._gone(v)
        return not (a.status == NAP and a.hw is not None and a.hw.wakeup(self.mem) is None)

    def _catch_up(self, u: int) -> None:
        """power, lazy: a full barrier of u makes every write u has seen reach each
        thread that is not looking, as part of the barrier step.  The writes a
        thread has seen are closed under cumulativity (each reached it only after
        what it required), so propagating them in commit order is an order the
        architecture allows, and it is the least the barrier needs."""
        for v in range(self.n_real):
            lag = self.lag[v]
            if v == u or not lag or self._looking(v) or self._gone(v):
                continue
            for x, j in list(lag.items()):
                m = self._view_idx(u, x)
                if j < m:
                    if m == len(self.co[x]) - 1:
                        del lag[x]
                    else:
                        lag[x] = m

    def _gone(self, v: int) -> bool:
        """power, lazy: v is a finished thread without hardware and with no late load
        pending: it never reads its view again, so no write needs to reach it."""
        a = self.actors[v]
        return self.lazy and a.status == DONE and a.hw is None and not self.pend[v]

    def _full_ready(self, u: int) -> bool:
        if self.buf[u] or (self.power and self.pend[u]):
            return False
        return not self.power or self._propagated(u)

    def _props(self, v: int) -> list[str]:
        """power: locations whose next write may reach v now (cumulativity permitting)."""
        out = []
        lag = self.lag[v]
        for x, j in lag.items():
            r = self.req[x][j + 1]
            if r is None or all(k >= self._need(r, y) for y, k in lag.items()):
                out.append(x)
        return out

    def _finishes(self, u: int) -> tuple[str, ...]:
        """power: what a step of a thread without hardware writes because it may be
        its last (after which no write reaches it, see _gone)."""
        return (f"fin:{u}",) if self.power and self.lazy and self.actors[u].hw is None else ()

    def _lookouts(self, u: int) -> tuple[str, ...]:
        """power, lazy: what decides whether each other thread is looking, read by a
        full barrier of u (it waits for the threads that are, and catches up those
        that are not): a fixed set of names, written by a thread's nap (``look:v``),
        by whatever enables its wake-up (the wake-up locations) and by a step that
        may be the last of a thread without hardware (``fin:v``)."""
        if not (self.power and self.lazy):
            return ()
        out = self._lookout_cache.get(u)
        if out is None:
            names: list[str] = []
            for a in self.actors[: self.n_real]:
                if a.idx == u:
                    continue
                if a.hw is None:
                    names.append(f"fin:{a.idx}")
                else:
                    names.append(f"look:{a.idx}")
                    names.extend(self._wake_locs(a.idx))
            out = self._lookout_cache[u] = tuple(dict.fromkeys(names))
        return out

    def _wake_locs(self, v: int) -> tuple[str, ...]:
        hw = self.actors[v].hw
        if hw is None:
            return ()
        return hw.irq_locs if hw.wakeup_locs is None else hw.wakeup_locs

    def _snapshot(self, u: int) -> tuple[int, dict[str, int]]:
        return (self.clock, dict(self.lag[u]))

    def _lag_reads(self, u: int) -> tuple[str, ...]:
        return tuple(f"pv:{u}:{x}" for x in self.lag[u])

    def _view_reads(self, u: int) -> tuple[str, ...]:
        """What a snapshot of u's view reads: ``pv:u``, which every step that changes
        u's view of any location writes.  One name, not one per location written so
        far: a footprint must not change while its transition waits or sleeps (a
        barrier's grew with every location first written, and DPOR missed Z6.1)."""
        return (f"pv:{u}",)

    def _queue(self, u: int) -> tuple[str, ...]:
        return (f"^sbq:{u}",) if self.model != "tso" else ()

    def _lagsets(self, u: int) -> tuple[str, ...]:
        """power: the propagation sets of every thread but u (a commit by u adds to them)."""
        return tuple(f"lagset:{v}" for v in range(self.n_real) if v != u) if self.power else ()

    def _all_lag_reads(self) -> tuple[str, ...]:
        """What a full barrier waits for: the propagation of every write to every
        thread, so every thread's view (``pv:v``), whatever is lagging now: the
        steps that *enabled* the barrier must be ordered before it, though their
        lag entries are gone by the time it runs."""
        return tuple(f"pv:{v}" for v in range(self.n_real))

    def _all_views(self, x: str) -> tuple[str, ...]:
        """What a write every thread sees at once changes: every thread's view of x."""
        if self._uncached(x):
            return ()  # uncached locations have no views: loads read memory
        return (*(f"pv:{v}:{x}" for v in range(self.n_real)), *self._all_lag_reads())

    def _init_co(self, x: str) -> None:
        if x not in self.co:
            self.co[x] = [self.mem[x]]
            self.ts[x] = [0]
            self.req[x] = [None]

    def _commit(self, u: int, x: str, value: Any) -> None:
        if not self.power:
            self.mem[x] = value
            return
        self._init_co(x)
        k = len(self.co[x])
        self.clock += 1
        self.co[x].append(value)
        self.ts[x].append(self.clock)
        self.req[x].append(self.bview[u])
        self.mem[x] = value
        for v in range(self.n_real):
            if v != u:
                self.lag[v].setdefault(x, k - 1)
        self.lag[u].pop(x, None)
        self.floor[u][x] = k

    def _direct(self, x: str, old: Any) -> None:
        """power: a write that reached memory and every thread at once (atomics, locks, IPIs)."""
        if x not in self.co:
            self.co[x] = [old]
            self.ts[x] = [0]
            self.req[x] = [None]
        self.clock += 1
        self.co[x].append(self.mem[x])
        self.ts[x].append(self.clock)
        self.req[x].append(None)
        for v in range(self.n_real):
            self.lag[v].pop(x, None)

    def _uncached(self, x: str) -> bool:
        u = self._unc.get(x)
        if u is None:
            u = self._unc[x] = bool(self.world.uncached) and x.startswith(self.world.uncached)
        return u

    def _barrier_action(self, op: O.Op) -> str | None:
        return self.act[op.kind]  # type: ignore[attr-defined]

    # ------------------------------------------------------------ engine hooks
    def _advance(self, a: Actor, value: Any) -> None:
        super()._advance(a, value)
        if a.stack and (self.removed or self.sites is not None):
            fr = a.stack[-1]
            op = fr.op
            if op.__class__ is O.Barrier:
                site = barrier_site(fr.gen, op.kind)  # type: ignore[attr-defined]
                if self.sites is not None:
                    self.sites.add(site)
                if site in self.removed:
                    fr.op = O.Note(f"{op.kind} (removed: barrier mutation)")  # type: ignore[attr-defined]

    def _wake(self, a: Actor) -> None:
        hw = a.hw
        if not (self.weak and self.power and hw is not None and hw.on_wake is not None):
            super()._wake(a)
            return
        # What the hardware latches at wake-up (SRR1, the KVM ghost) is read
        # through this thread's view, as its own loads would see it.
        view = {x: self._value(a.idx, x, False) for x in hw.wake_reads}
        latch = hw.on_wake
        hw.on_wake = lambda mem: latch(ChainMap(view, mem))  # type: ignore[arg-type]
        try:
            super()._wake(a)
        finally:
            hw.on_wake = latch

    def is_enabled(self, a: Actor) -> bool:
        if not self.weak:
            return super().is_enabled(a)
        ps = self._pseudo(a.idx)
        if ps is not None:
            kind, u = ps
            if kind == "ld":
                return bool(self.pend[u])
            return bool(self.buf[u]) if kind == "sb" else bool(self.lag[u]) and self._looking(u) and bool(self._props(u))
        if a.status != RUN or (a.hw is not None and a.msr & MSR_EE and a.hw.pending(self.mem) is not None):
            return super().is_enabled(a)
        op = a.stack[-1].op
        cls = op.__class__
        u = a.idx
        if cls is O.Barrier:
            act = self._barrier_action(op)  # type: ignore[arg-type]
            if act == "full":
                return self._full_ready(u)
            if act == "lwsync":
                return not self.buf[u] and not (self.power and self.pend[u])
            return True
        if cls is O.Await:
            return op.token in self.lval[u]  # type: ignore[attr-defined]
        if cls is O.RMW and self.power and op.order != "mb":  # type: ignore[attr-defined]
            return self._rmw_ready(u, op.loc_)  # type: ignore[attr-defined]
        if cls in _FULL_OPS and not self._full_ready(u):
            return False
        if cls is O.WaitUntil:
            return bool(op.cond(*[self._value(u, loc, False) for loc in op.locs]))  # type: ignore[attr-defined]
        return super().is_enabled(a)

    def is_local(self, a: Actor, op: O.Op) -> bool:
        if op.__class__ is O.Await:
            return False  # ordered after its late load's satisfaction: a step of its own
        if not super().is_local(a, op):
            return False
        if not self.weak:
            return True
        cls = op.__class__
        u = a.idx
        if cls is O.Barrier:
            act = self._barrier_action(op)
            if act is None or act == "order":
                return True
            if self.power:
                return False  # its effect depends on what has reached this thread: a step of its own
            return self._full_ready(u) if act == "full" else not self.buf[u] and not (self.power and self.pend[u])
        if cls is O.RMW and self.power and op.order != "mb":  # type: ignore[attr-defined]
            return False
        if cls in _FULL_OPS:
            # power: its effect depends on what has reached each thread (and, lazy,
            # on which threads are looking): a step of its own
            return not self.power and self._full_ready(u)
        return True

    def alternatives(self, idx: int) -> int:
        if not self.weak:
            return super().alternatives(idx)
        ps = self._pseudo(idx)
        if ps is not None:
            kind, u = ps
            if kind == "ld":
                return max(1, len(self._late_choices(u)))
            return max(1, len(self._committable(u)) if kind == "sb" else len(self._props(u)))
        a = self.actors[idx]
        if self.power and a.status == RUN and not self._delivers(a):
            op = a.stack[-1].op
            if op.__class__ is O.Load and not op.late and not self._uncached(op.loc_) and not self._forward(idx, op.loc_)[0]:  # type: ignore[attr-defined]
                ch = self._choices(idx, op.loc_, op.dep)  # type: ignore[attr-defined]
                return len(ch) if ch else 1
        return super().alternatives(idx)

    def footprint(self, idx: int, pending: bool = False) -> tuple[tuple[str, ...], tuple[str, ...]]:
        if not self.weak:
            return super().footprint(idx, pending)
        r, w = self._weak_footprint(idx, pending)
        if idx < self.n_real and r != ("*",):
            fin = self._finishes(idx)
            if fin:
                w = (*w, *fin)
        return r, w

    def _weak_footprint(self, idx: int, pending: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
        ps = self._pseudo(idx)
        if ps is not None:
            kind, u = ps
            if kind == "ld":
                pend = self.pend[u]
                if not pend:
                    return (), ()
                locs = tuple(dict.fromkeys(x for x, _, _ in pend.values()))
                causes = tuple(f"^ld:{u}:{t}" for t in pend)
                # a load that feeds an address records u's whole view when satisfied
                views = (*(f"pv:{u}:{x}" for x in locs), *((f"pv:{u}",) if any(f for _, _, f in pend.values()) else ()))
                return (*locs, *causes, *views, f"^sb:{u}", f"^ldq:{u}"), (f"^ld:{u}", *(f"^ldv:{u}:{t}" for t in pend), *self._finishes(u))
            if kind == "sb":
                buf = self.buf[u]
                if not buf:
                    return (), ()
                ok = self._committable(u)
                locs = tuple(dict.fromkeys(buf[i][1] for i in ok))
                riders = tuple(loc for i in ok for loc, _ in buf[i][4])
                causes = tuple(f"^sb:{u}:{buf[i][0]}" for i in ok)
                made = tuple(f"^w:{x}:{len(self.co[x]) if x in self.co else 1}" for x in locs) if self.power else ()
                # A store of the thread adds a branch to this transition (pso, power) and a
                # commit adds one to every other thread's propagation (power): they are
                # dependent, though the new branch is not in the other's footprint yet.
                queue = (f"^sbq:{u}",) if self.model != "tso" else ()
                # power: the committed write becomes the writer's view of x at once.
                own = (*(f"pv:{u}:{x}" for x in locs), f"pv:{u}") if self.power else ()
                return (*locs, *causes, *queue), self._aliased((*locs, *riders, f"^sb:{u}", *made, *own, *self._lagsets(u)))
            # lazy: what makes u stop or start looking, fixed names (so the footprint
            # does not change while u is not looking and a commit adds to its lag):
            # its nap and wake-up locations, or (no hardware) each step that may be
            # its last.  Read even with nothing lagging: after u's last step a commit
            # no longer gives u anything to receive, so that step must race with the
            # pending propagation (without fin:u here DPOR missed outcomes of MP+wmb+ctrl).
            look = (*self._finishes(u), *((f"look:{u}", *self._wake_locs(u)) if self.lazy and self.actors[u].hw is not None else ()))
            lag = self.lag[u]
            if not lag or self._gone(u) or not self._looking(u):
                # nothing lagging, finished for good, or napping with its wake-up not
                # enabled: nothing reaches u until a step writes one of these names
                return look, ()
            causes = tuple(f"^w:{x}:{j + 1}" for x, j in lag.items())
            return (*lag, *causes, *self._lag_reads(u), f"lagset:{u}", *look), (*self._lag_reads(u), f"pv:{u}")
        a = self.actors[idx]
        u = idx
        if a.status == NAP or self._delivers(a):
            r, w = super().footprint(idx, pending)
            return ((*r, *self._view_reads(u)) if self.power else r), w
        op = a.stack[-1].op
        cls = op.__class__
        if cls is O.Await:
            return (f"^ldv:{u}:{op.token}",), ()  # type: ignore[attr-defined]
        if cls is O.Load and self.power and op.late and not self._uncached(op.loc_):  # type: ignore[attr-defined]
            return (), (f"^ld:{u}:{op.token}", f"^ldq:{u}")  # type: ignore[attr-defined]
        if cls is O.RMW and self.power and op.order != "mb":  # type: ignore[attr-defined]
            x = op.loc_  # type: ignore[attr-defined]
            k = len(self.co[x]) if x in self.co else 1
            return (x, f"pv:{u}:{x}", f"^sb:{u}"), self._aliased((x, f"^w:{x}:{k}", *self._all_views(x), *self._lagsets(u)))
        if cls is O.Store:
            if self._uncached(op.loc_):  # type: ignore[attr-defined]
                return (), self._aliased((op.loc_,))  # type: ignore[attr-defined]
            return (), (f"^sb:{u}:{self.seq[u]}", *self._queue(u))
        if cls is O.StoreN:
            items = op.items  # type: ignore[attr-defined]
            mixed = any(not self._uncached(k) for k, _ in items)
            w = tuple(f"^sb:{u}:{self.seq[u] + i}" for i, (k, _) in enumerate(items) if not self._uncached(k))
            if not mixed:
                w = tuple(k for k, _ in items)
            return (), self._aliased((*w, *self._queue(u)))
        r, w = super().footprint(idx, pending)
        if r == ("*",):
            return r, w
        if cls is O.Barrier:
            act = self._barrier_action(op)
            if act == "full":
                r = (*r, f"^sb:{u}", *(self._all_lag_reads() if self.power else ()), *((f"^ld:{u}",) if self.power else ()))
                r = (*r, *self._lookouts(u))
            elif act == "lwsync" or act == "floor":
                r = (*r, f"^sb:{u}", *(self._view_reads(u) if self.power else ()), *((f"^ld:{u}",) if self.power else ()))
        elif cls in _FULL_OPS:
            r = (*r, f"^sb:{u}", *(self._all_lag_reads() if self.power else ()), *((f"^ld:{u}",) if self.power else ()))
            r = (*r, *self._lookouts(u))
            if cls is O.Nap and self.power and self.lazy:
                w = (*w, f"look:{u}")  # it may stop looking (see _looking)
            if self.power and cls in _DIRECT:
                # a direct write reaches every thread: their propagations and views change
                w = (*w, *self._lagsets(-1), *self._all_views(op.loc_))  # type: ignore[attr-defined]
        elif self.power and cls in (O.Load, O.LoadN, O.WaitUntil):
            r = (*r, *(f"pv:{u}:{x}" for x in op.reads if not self._uncached(x)))
            if cls is O.Load and op.feeds:  # type: ignore[attr-defined]
                r = (*r, f"pv:{u}")  # it records u's whole view (for the loads that depend on it)
        return r, w

    def _transition(self, a: Actor, alt: int) -> None:
        ps = self._pseudo(a.idx) if self.weak else None
        if ps is None:
            if self.power and (a.status == NAP or self._delivers(a)):
                self.fb[a.idx] = self._snapshot(a.idx)  # IPI / interrupt receipt: acquire
            super()._transition(a, alt)
            return
        kind, u = ps
        if kind == "ld":
            t, k = self._late_choices(u)[alt]
            x, dep, feeds = self.pend[u].pop(t)
            value = self.lval[u][t] = self._satisfy(u, x, dep, k, t if feeds else None)
            text = f"satisfy load #{t} of {x} = {value!r} ({self.actors[u].name}, late)"
        elif kind == "sb":
            i = self._committable(u)[alt]
            entry = self.buf[u].pop(i)
            x, value = entry[1], entry[2]
            self._commit(u, x, value)
            self._riders(u, entry)
            text = f"commit {x} = {value!r} (store buffer of {self.actors[u].name})"
        else:
            x = self._props(u)[alt]
            j = self.lag[u][x] + 1
            if j == len(self.co[x]) - 1:
                del self.lag[u][x]
            else:
                self.lag[u][x] = j
            value = self.co[x][j]
            text = f"propagate {x} = {value!r} to {self.actors[u].name}"
        if self._cur is not None:
            self._cur.ops.append(OpRecord([], text, x, value, 0))

    def _exec(self, a: Actor, op: O.Op, alt: int) -> None:
        if not self.weak:
            super()._exec(a, op, alt)
            return
        cls = op.__class__
        u = a.idx
        if self.power and self.lazy:
            full = cls is O.Barrier and self._barrier_action(op) == "full"
            if full or (cls in _FULL_OPS and not (cls is O.RMW and op.order != "mb")):  # type: ignore[attr-defined]
                self._catch_up(u)  # a full barrier, or what acts as one
        if cls is O.Load:
            x = op.loc_  # type: ignore[attr-defined]
            if self.power and op.late and not self._uncached(x):  # type: ignore[attr-defined]
                self.pend[u][op.token] = (x, op.dep, op.feeds)  # type: ignore[attr-defined]
                result = O.PENDING
            elif self.power:
                result = self._satisfy(u, x, op.dep, alt, op.token if op.feeds else None)  # type: ignore[attr-defined]
            else:
                hit, result = self._forward(u, x)
                if not hit:
                    result = self.mem[x]
        elif cls is O.Await:
            result = self.lval[u].pop(op.token)  # type: ignore[attr-defined]
        elif cls is O.RMW and self.power and op.order != "mb":  # type: ignore[attr-defined]
            x = op.loc_  # type: ignore[attr-defined]
            self._init_co(x)
            result = self.co[x][-1]
            self.floor[u][x] = max(self.floor[u].get(x, 0), len(self.co[x]) - 1)
            new = op.fn(result)  # type: ignore[attr-defined]
            if new != result:
                self._commit(u, x, new)
        elif cls is O.Store:
            result = self._store(u, op.loc_, op.value, 0)  # type: ignore[attr-defined]
        elif cls is O.StoreN:
            self._store_n(u, op.items)  # type: ignore[attr-defined]
            result = None
        elif cls is O.LoadN:
            result = tuple(self._value(u, loc, True) for loc in op.locs)  # type: ignore[attr-defined]
        elif cls is O.WaitUntil:
            result = tuple(self._value(u, loc, True) for loc in op.locs)  # type: ignore[attr-defined]
        elif cls in _DIRECT:
            x = op.loc_  # type: ignore[attr-defined]
            old = self.mem[x]
            if self.power:
                self.fb[u] = self._snapshot(u)
            super()._exec(a, op, alt)
            if self.power and self.mem[x] != old:
                self._direct(x, old)
            return
        elif cls is O.Barrier:
            act = self._barrier_action(op)
            if act == "order" and self.buf[u]:
                self.epoch[u] += 1
            elif self.power and act in ("full", "lwsync", "floor"):
                snap = self._snapshot(u)
                self.fb[u] = snap
                if act == "lwsync":
                    self.bview[u] = snap
            super()._exec(a, op, alt)
            return
        else:
            super()._exec(a, op, alt)
            return
        self._log(a, op, result)
        self._advance(a, result)

    def fingerprint(self) -> int:
        from vcoresim.engine.fingerprint import canon
        from vcoresim.engine.stable import stable

        base = super().fingerprint()
        if not self.weak:
            return base
        bufs = tuple(tuple((e[1], canon(e[2]), e[3], canon(e[4])) for e in b) for b in self.buf)
        if not self.power:
            return hash((base, stable(bufs)))  # stable: the same in every process (location names are strings)
        co = tuple(sorted((x, canon(v)) for x, v in self.co.items()))
        # (a finished thread that is gone never reads its lag: not state)
        lag = tuple(() if self._gone(v) else tuple(sorted(d.items())) for v, d in enumerate(self.lag))
        floors = tuple(tuple(sorted((x, self._low(u, x)) for x in self.co if self._low(u, x))) for u in range(self.n_real))
        bview = tuple(None if b is None else (tuple(sorted((x, self._need(b, x)) for x in self.co))) for b in self.bview)
        late = tuple((tuple(sorted(p.items())), tuple(sorted((t, canon(v)) for t, v in lv.items()))) for p, lv in zip(self.pend, self.lval, strict=True))
        # what each address-dependency source had seen (later dependent loads read it)
        sat = tuple(tuple(sorted((t, None if b is None else tuple(sorted((x, self._need(b, x)) for x in self.co))) for t, b in d.items())) for d in self.sat)
        # what each write still lagging somewhere requires before it may reach a
        # thread (its writer's lwsync view when it committed: not the current one)
        live = [d for v, d in enumerate(self.lag) if not self._gone(v)]
        oldest = {x: min(d[x] for d in live if x in d) for x in {x for d in live for x in d}}
        req = tuple((x, j, tuple((y, self._need(r, y)) for y in sorted(self.co))) for x, k in sorted(oldest.items()) for j in range(k + 1, len(self.co[x])) if (r := self.req[x][j]) is not None)
        return hash((base, stable((bufs, co, lag, floors, bview, late, sat, req))))


__all__ = ["ACTIONS", "MODELS", "WeakExecution", "barrier_site", "split_memory_config", "with_memory_model"]
