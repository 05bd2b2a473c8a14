"""The timing window of a counterexample: which threads must be slower than their code.

A violation found by exploring interleavings says *that* a bad order exists,
not how likely it is.  This module answers the kernel developer's next
question: to run the counterexample's interleaving on real hardware, which
thread has to be delayed, where, and by how much beyond what its code costs?
A race that needs a thread to lose 20 ns between two stores is a different
thing from one that needs a millisecond stall.

Method.  The counterexample (a schedule) is replayed on the model.  Each step
gets the cost the timed driver charges for its operations (``Timing``, see
``docs/simulate.md``): memory 1 ns, an atomic 5 ns, a barrier 10 ns, an IPI
send 100 ns and 1 µs to arrive, a nap wake-up 5 µs, a guest entry or exit
1 µs, fixed ``Delay``s their length.  The steps form a graph: each step
follows its thread's previous step (by that step's cost, plus a wait's
timeout when it gave up) and every earlier step of another thread that
touched a location it touches, one of them writing (by the earlier step's
cost; an IPI's arrival adds its latency to the wake-up or interrupt it
causes).  The violation itself adds an edge: a thread whose next step would
end the violating state must not take it before the violating step.  Any
timing of the same interleaving satisfies every edge, so for two steps *a*
before *b* of one thread, the longest path from *a* to *b* bounds from below
the time between them.  Where that exceeds what the thread itself spends
between them, the difference is a delay the thread *must* take:

* a **stall** when every gap between *a* and *b* is the thread's own code
  (kernel, firmware, OPAL): the thread has to be stalled there (an
  interrupt, an NMI, an SMI-like firmware excursion, a cache miss storm);
* a **guest** or **workload** condition when the only place the delay can go
  is guest execution or a workload delay (QEMU in userspace): nothing is
  slow, the guest just has to run that long;
* a **fault** condition when it can only go into an injected fault (an
  injected stall must last that long).

A thread that an injected fault still holds when the violation happens
must be held until then (a **fault** condition from where it was caught).
Gaps in which the thread waits (a spin, a lock, nap, the idle loop) absorb
any delay and count as neither; environment actors (fault injectors) are free.  The bounds
are for this interleaving with every cost at its minimum; workload durations
(guest compute, QEMU) count as zero.  Stalls below ``MIN_NS`` are not
reported: they are below the resolution of the per-operation costs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vcoresim.engine import ops as O
from vcoresim.engine import timing as durations
from vcoresim.engine.msr import MSR_EE, MSR_HV
from vcoresim.engine.runtime import Execution, Rfid, stack_of
from vcoresim.engine.world import NAP, RUN, Program
from vcoresim.simulate.timed import Timing

#: Delays shorter than this are not reported (a few instructions: the costs' resolution).
MIN_NS = 10
#: Idle loops: a CPU whose innermost frame is one of these has nothing to do, so
#: however long it stays there (rather than napping at once) is a wait, not a stall.
IDLE_LOOPS = frozenset({"cpu_idle"})
#: State of injected faults (``kvm.state.host_stall``): a thread waiting on it is held by a fault.
FAULT_PREFIX = "fault."
NEG = float("-inf")
_MSR_OPS = (O.IrqDisable, O.IrqEnable, O.MtMsr, O.ResumeFrame, Rfid)
_MEM_OPS = (O.Load, O.Store)  # LoadN / StoreN: no charge, as in the timed driver
_ATOMIC_OPS = (O.RMW, O.SpinLock, O.SpinTryLock, O.SpinUnlock)


def fixed_ns(tm: Timing, d: Any) -> int | None:
    """Nanoseconds of a duration that is the same in every run (an int, a ``Timing``
    parameter), or None for a workload one (a distribution, a tick, a timer)."""
    if isinstance(d, int):
        return max(0, d)
    if isinstance(d, durations.Param):
        return max(0, int(getattr(tm, d.name)))
    return None


def op_cost(tm: Timing, op: O.Op, value: Any) -> int:
    """What the timed driver charges for ``op`` (``TimedDriver._on_op``); a workload
    ``Delay`` costs 0 here (it is a free gap, see the module docstring)."""
    cls = op.__class__
    if cls is O.Note:
        ev = op.event  # type: ignore[attr-defined]
        return (tm.guest_entry_ns if ev == "guest_enter" else 0) + (tm.guest_exit_ns if ev == "guest_exit" else 0)
    if cls in _MEM_OPS:
        return tm.mem_ns
    if cls is O.WaitUntil:
        return 0 if value is O.TIMEOUT else tm.mem_ns
    if cls is O.Delay:
        return fixed_ns(tm, op.ns) or 0  # type: ignore[attr-defined]
    if cls in _ATOMIC_OPS:
        return tm.atomic_ns
    if cls is O.Barrier:
        return tm.barrier_ns
    if cls is O.SendIPI:
        return tm.ipi_send_ns
    if cls is O.Nap:
        return tm.nap_entry_ns
    if cls is O.ContextSwitch:
        return tm.context_switch_ns
    if cls in _MSR_OPS:
        return tm.msr_ns
    return 0


def fmt_ns(ns: float) -> str:
    if ns < 1_000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1_000:.2f} µs"
    return f"{ns / 1_000_000:.2f} ms"


@dataclass(frozen=True)
class Need:
    """A delay the counterexample needs: ``actor`` must spend at least ``ns``
    more than its ``normal_ns`` between steps ``first_step`` and ``last_step``."""

    actor: str
    kind: str  # stall | guest | workload | fault
    ns: int
    normal_ns: int
    first: str
    last: str
    first_step: int
    last_step: int  # == the trace length for a step the violation keeps from happening

    def text(self) -> str:
        where = f"between step {self.first_step} ({self.first}) and step {self.last_step} ({self.last})"
        if self.kind == "stall":
            return f"{self.actor} must stall >= {fmt_ns(self.ns)} {where}; normal cost {fmt_ns(self.normal_ns)}"
        what = {"guest": "its guest must run", "workload": "its workload (QEMU) must take", "fault": "the injected fault must hold it"}[self.kind]
        return f"{self.actor}: {what} >= {fmt_ns(self.ns)} {where}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "kind": self.kind,
            "ns": self.ns,
            "normal_ns": self.normal_ns,
            "first_step": self.first_step,
            "first": self.first,
            "last_step": self.last_step,
            "last": self.last,
            "text": self.text(),
        }


@dataclass
class TimingWindow:
    """The delays a counterexample needs (empty: it happens at the threads' normal speed)."""

    needs: list[Need] = field(default_factory=list)
    steps: int = 0
    note: str = ""

    @property
    def stalls(self) -> list[Need]:
        return [n for n in self.needs if n.kind == "stall"]

    def summary(self) -> str:
        """One line for a verdict."""
        if self.note:
            return self.note
        if not self.stalls:
            return f"reached at normal speed: no thread needs to stall (>= {MIN_NS} ns) beyond its code's cost"
        worst = max(self.stalls, key=lambda n: n.ns)
        return worst.text()

    def lines(self) -> list[str]:
        if self.note:
            return [self.note]
        out = [n.text() for n in sorted(self.needs, key=lambda n: (n.kind != "stall", -n.ns))]
        return out or [self.summary()]

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "needs": [n.as_dict() for n in self.needs],
            "min_ns": MIN_NS,
            "note": self.note or None,
        }


# ------------------------------------------------------------------- graph
@dataclass
class _Node:
    actor: int
    label: str
    cost: int
    gap: str  # before this node, on its actor: code | wait | guest | workload | fault | start
    preds: list[tuple[int, float]] = field(default_factory=list)


def _label(ex: Execution, k: int) -> str:
    rec = ex.records[k]
    if not rec.ops:
        return "?"
    o = rec.ops[0]
    fn = o.stack[-1] if o.stack else ""
    text = o.op if len(o.op) <= 80 else o.op[:77] + "..."
    return f"{fn}: {text}" if fn else text


def _raw_footprint(ex: Execution, idx: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What the actor's next transition reads and writes in memory (no monitor
    aliases, no mode pseudo-locations: those order nothing in time)."""
    a = ex.actors[idx]
    hw = a.hw
    if a.status == NAP:
        assert hw is not None
        return (hw.irq_locs if hw.wakeup_locs is None else hw.wakeup_locs) + hw.wake_reads, hw.wake_writes
    if ex._delivers(a):
        assert hw is not None
        return hw.irq_locs, ()
    op = a.stack[-1].op
    assert op is not None
    reads = op.reads
    if hw is not None and a.msr & MSR_EE:  # it runs on: the interrupt had not arrived yet
        reads = (*reads, *hw.irq_locs)
    return reads, op.writes


def _build(program: Program, schedule: list[tuple[int, int]], tm: Timing) -> tuple[list[_Node], Execution]:
    ex = Execution(program, record=True)
    cost = [0]
    variable_delay = [False]

    def hook(_a: Any, op: O.Op, value: Any) -> None:
        cost[0] += op_cost(tm, op, value)
        if op.__class__ is O.Delay and fixed_ns(tm, op.ns) is None:  # type: ignore[attr-defined]
            variable_delay[0] = True

    ex.on_op = hook
    nodes: list[_Node] = []
    last_node: dict[int, int] = {}
    after: dict[int, str] = {}  # what the gap after an actor's last step is: code | wait | workload
    enabled_by_env: dict[int, bool] = {}
    last_w: dict[str, int] = {}
    readers: dict[str, list[int]] = {}
    ipi_steps: set[int] = set()
    roles = [a.role for a in ex.actors]
    for a in ex.actors:
        after[a.idx] = "code" if ex.is_enabled(a) else "wait"
    for idx, alt in schedule:
        if ex.violation is not None:
            break
        a = ex.actors[idx]
        napping = a.status == NAP
        delivering = not napping and ex._delivers(a)
        op = a.stack[-1].op if a.status == RUN else None
        timeout = not napping and not delivering and op.__class__ is O.WaitUntil and not ex.is_enabled(a)
        in_guest = a.status == RUN and a.hw is not None and not (a.msr & MSR_HV)
        reads, writes = _raw_footprint(ex, idx)
        cost[0] = tm.irq_entry_ns if delivering else tm.nap_wakeup_ns if napping else 0
        variable_delay[0] = False
        ex.step(idx, alt)
        k = len(nodes)
        if idx not in last_node:
            gap = "start"
        elif roles[idx] == "env":
            gap = "fault"
        elif in_guest:
            gap = "guest"
        elif after[idx] == "wait":
            gap = "fault" if enabled_by_env.get(idx) else "wait"
        else:
            gap = after[idx]
        nd = _Node(idx, _label(ex, k), cost[0], gap)
        p = last_node.get(idx)
        if p is not None:
            extra = 0.0
            if timeout:
                t = fixed_ns(tm, op.timeout)  # type: ignore[union-attr]
                if t is None:
                    nd.gap = "wait"  # a timeout of workload length: free
                else:
                    extra = t
            nd.preds.append((p, nodes[p].cost + extra))
        sends_ipi = any(r.op.startswith("ipi ->") for r in ex.records[k].ops)
        for loc in set(reads) | set(writes):
            u = last_w.get(loc)
            if u is not None:
                lat = tm.ipi_latency_ns if (u in ipi_steps and (napping or delivering)) else 0
                nd.preds.append((u, nodes[u].cost + lat))
        for loc in writes:
            for r in readers.get(loc, ()):
                if nodes[r].actor != idx:
                    # An IPI sent up to its latency before a read of its target's
                    # presenter still arrives after that read.
                    lat = -tm.ipi_latency_ns if sends_ipi else 0
                    nd.preds.append((r, nodes[r].cost + lat))
        for loc in writes:
            last_w[loc] = k
            readers[loc] = []
        for loc in reads:
            if loc not in writes:
                readers.setdefault(loc, []).append(k)
        if sends_ipi:
            ipi_steps.add(k)
        nodes.append(nd)
        last_node[idx] = k
        for b in ex.actors:
            en = ex.is_enabled(b)
            if b.idx == idx:
                idle = en and b.status == RUN and (st := stack_of(b)) and st[-1] in IDLE_LOOPS
                after[idx] = "wait" if not en or idle else "workload" if variable_delay[0] else "code"
                enabled_by_env[idx] = False
            elif en and after.get(b.idx) == "wait" and b.idx in last_node:
                if not enabled_by_env.get(b.idx):
                    enabled_by_env[b.idx] = roles[idx] == "env"
    # The violating state must hold when it is reached: a thread whose next step
    # would end it (writes what the violated monitor reads) waits for it.
    v = ex.violation
    if v is not None and v.kind == "invariant" and nodes:
        inv = next(i for i in ex.world.invariants if i.name == v.name)
        watched = set(inv.reads)
        kv = len(nodes) - 1
        for b in ex.actors:
            if b.idx == nodes[kv].actor or roles[b.idx] == "env":
                continue
            if not ex.is_enabled(b):
                # A thread an injected fault holds (a wait on fault state) is where
                # the violation needs it for as long as the fault holds it: the
                # fault must last until the violating step.
                op = b.stack[-1].op if b.status == RUN and b.stack else None
                p = last_node.get(b.idx)
                if op.__class__ is O.WaitUntil and p is not None and any(loc.startswith(FAULT_PREFIX) for loc in op.locs):  # type: ignore[union-attr]
                    st = stack_of(b)
                    nd = _Node(b.idx, f"{st[-1]}: {op.describe()}" if st else op.describe(), 0, "fault")  # type: ignore[union-attr]
                    nd.preds += [(p, nodes[p].cost), (kv, nodes[kv].cost)]
                    nodes.append(nd)
                continue
            _r, w = ex.footprint(b.idx, pending=True)  # with mode pseudo-locations: what monitors see
            if not watched & set(w):
                continue
            what = b.stack[-1].op.describe() if b.status == RUN and b.stack[-1].op is not None else "wake from nap"  # type: ignore[union-attr]
            st = stack_of(b) if b.status == RUN else []
            p = last_node.get(b.idx)
            gap = "start" if p is None else after[b.idx]
            nd = _Node(b.idx, f"{st[-1]}: {what}" if st else what, 0, gap)
            if p is not None:
                nd.preds.append((p, nodes[p].cost))
            nd.preds.append((kv, nodes[kv].cost))
            nodes.append(nd)
    return nodes, ex


def _longest_from(preds: list[list[tuple[int, float]]], src: int, end: int) -> list[float]:
    """Longest paths from ``src`` to each node before ``end`` (the rest: NEG).
    A node's predecessors come before it; those before ``src`` or unreached
    from it are NEG (-inf), so ``NEG + w`` never wins."""
    dist = [NEG] * len(preds)
    dist[src] = 0.0
    for v in range(src + 1, end):
        best = NEG
        for u, w in preds[v]:
            d = dist[u] + w
            if d > best:
                best = d
        dist[v] = best
    return dist


#: Counterexamples longer than this are not analysed (the analysis is quadratic).
MAX_STEPS = 3000


def timing_window(program: Program, schedule: list[tuple[int, int]], timing: Timing | None = None) -> TimingWindow:
    """The delays the interleaving ``schedule`` of ``program`` needs (module docstring)."""
    if getattr(program, "memory_model", "sc") != "sc":
        return TimingWindow(note=f"timing window not computed under the {program.memory_model} memory model (store-buffer pseudo-actors have no cost)")
    if len(schedule) > MAX_STEPS:
        return TimingWindow(steps=len(schedule), note=f"timing window not computed: {len(schedule)} steps (more than {MAX_STEPS})")
    tm = timing or Timing()
    nodes, ex = _build(program, schedule, tm)
    names = [a.name for a in ex.actors]
    roles = [a.role for a in ex.actors]
    n_steps = len(ex.schedule)
    preds = [nd.preds for nd in nodes]
    by_actor: dict[int, list[int]] = {}
    for i, nd in enumerate(nodes):
        by_actor.setdefault(nd.actor, []).append(i)
    found: list[Need] = []
    for actor, seq in by_actor.items():
        if roles[actor] == "env" or len(seq) < 2:
            continue
        gaps = [nodes[j].gap for j in seq]
        # The cost of each of the actor's own edges (its previous node to this one).
        chain = [0.0] + [next(w for u, w in nodes[seq[b]].preds if u == seq[b - 1]) for b in range(1, len(seq))]
        for a_pos, i in enumerate(seq[:-1]):
            # The later nodes a delay from i can need: up to a wait or a second
            # free gap, which absorbs any delay to every node after it.
            last, n_free = a_pos, 0
            for b_pos in range(a_pos + 1, len(seq)):
                if gaps[b_pos] != "code":
                    n_free += 1
                    if n_free > 1 or gaps[b_pos] not in ("guest", "workload", "fault"):
                        break
                last = b_pos
            if last == a_pos:
                continue
            dist = _longest_from(preds, i, seq[last] + 1)
            own = 0.0
            free: list[str] = []
            for b_pos in range(a_pos + 1, last + 1):
                j = seq[b_pos]
                own += chain[b_pos]
                if gaps[b_pos] != "code":
                    free.append(gaps[b_pos])
                d = dist[j]
                if d == NEG or d - own < MIN_NS:
                    continue
                kind = free[0] if free else "stall"
                found.append(Need(names[actor], kind, int(d - own), int(own), nodes[i].label, nodes[j].label, i, min(n_steps, j)))
    return TimingWindow(_tightest(found), n_steps)


def _tightest(found: list[Need]) -> list[Need]:
    """Per actor and kind, drop a statement that another implies: a wider span
    needing no more, or a narrower one needing less than a stall inside the same span.
    Of the conditions that are not stalls (guest, workload, fault) only the largest
    per actor and kind is kept: they say how long something normal must last."""
    found.sort(key=lambda n: (n.actor, n.kind, -n.ns, n.last_step - n.first_step))
    kept: list[Need] = []
    for n in found:
        if n.kind != "stall" and any(k.actor == n.actor and k.kind == n.kind for k in kept):
            continue
        if any(k.actor == n.actor and k.ns >= n.ns and (k.first_step >= n.first_step and k.last_step <= n.last_step or k.first_step <= n.first_step and k.last_step >= n.last_step) for k in kept if k.kind == n.kind):
            continue
        # a workload/guest/fault condition explained by a stall inside its span says nothing more
        if n.kind != "stall" and any(k.kind == "stall" and k.actor == n.actor and k.ns >= n.ns and n.first_step <= k.first_step and k.last_step <= n.last_step for k in kept):
            continue
        kept.append(n)
    return sorted(kept, key=lambda n: (n.kind != "stall", -n.ns, n.actor))
