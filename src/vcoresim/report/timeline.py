"""A run as tracks of state slices, task slices and IPI arrows, from a timed run or a replayed trace.

Both Perfetto and the HTML page draw from this one structure.  Times are
integers: nanoseconds for a timed run, step numbers for a replayed trace
(``unit``), which has no clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from vcoresim.engine.runtime import Execution
from vcoresim.engine.world import NAP as STATUS_NAP
from vcoresim.simulate.states import NAP, state_of

_IPI_OP = re.compile(r"^ipi -> (\S+)")
_SWITCH_OP = re.compile(r"^switch (\S+) -> (\S+)")
#: Model events drawn as instants on the thread that logged them.
MARKS = frozenset({"timeout", "grab_timeout", "wait_for_nap_timeout", "stale_frame", "signal", "ipi_sent", "vcore_run"})


@dataclass
class Track:
    actor: str
    group: str  # "core N", "host tasks", "environment" or "actors"
    kind: str  # "thread" (a hardware thread), "task" (a host task), "actor"


@dataclass
class Timeline:
    title: str
    unit: str  # "ns" | "step"
    end: int
    tracks: list[Track] = field(default_factory=list)
    #: (start, end, actor, state, function) per track
    slices: list[tuple[int, int, str, str, str]] = field(default_factory=list)
    #: (start, end, task, cpu actor)
    runs: list[tuple[int, int, str, str]] = field(default_factory=list)
    #: (sent, arrived, sender, target)
    ipis: list[tuple[int, int, str, str]] = field(default_factory=list)
    #: (time, actor, name, args)
    marks: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    #: (time, actor, text)
    violation: tuple[int, str, str] | None = None


def _groups(actors: list[str], roles: dict[str, str], config: dict[str, Any]) -> list[Track]:
    machine = config.get("machine")
    if not machine:
        return [Track(a, "actors", "actor") for a in actors]
    from vcoresim.machine.topology import CPU_THREADS

    threads = CPU_THREADS.get(machine.get("cpu", ""), 1)
    out = []
    for a in actors:
        if roles.get(a) == "cpu" and a.startswith("cpu") and a[3:].isdigit():
            out.append(Track(a, f"core {int(a[3:]) // threads}", "thread"))
        else:
            out.append(Track(a, "environment", "actor"))
    return out


def _close(changes: list[tuple[int, str, str, str]], end: int) -> list[tuple[int, int, str, str, str]]:
    """(time, actor, state, fn) changes in time order -> slices, each lasting until the actor's
    next change of state (a later change at the same time wins; "done" ends the track)."""
    per: dict[str, list[tuple[int, str, str]]] = {}
    for t, actor, st, fn in changes:
        seq = per.setdefault(actor, [])
        if seq and seq[-1][0] == t:
            seq[-1] = (t, st, fn)
        elif not seq or seq[-1][1] != st:
            seq.append((t, st, fn))
    out: list[tuple[int, int, str, str, str]] = []
    for actor, seq in per.items():
        for k, (t, st, fn) in enumerate(seq):
            stop = min(seq[k + 1][0], end) if k + 1 < len(seq) else end
            if st != "done" and stop > t:
                out.append((t, stop, actor, st, fn))
    return out


def _runs(switches: list[tuple[int, str, str, str]], end: int) -> tuple[list[tuple[int, int, str, str]], list[str]]:
    """(time, cpu, prev, next) context switches -> (start, end, task, cpu) runs; a task first seen
    leaving a CPU ran there from time 0 (the idle tasks)."""
    on: dict[str, tuple[int, str]] = {}
    seen: dict[str, None] = {}
    out = []
    for t, cpu, prev, nxt in switches:
        for name in (prev, nxt):
            seen.setdefault(name, None)
        start = on.pop(prev, None)
        if start is None and prev not in {r[2] for r in out}:
            start = (0, cpu)
        if start is not None and t > start[0]:
            out.append((start[0], t, prev, start[1]))
        on[nxt] = (t, cpu)
    for task, (t, cpu) in on.items():
        if end > t:
            out.append((t, end, task, cpu))
    return sorted(out, key=lambda r: (r[2], r[0])), list(seen)


def _match_ipis(sends: list[tuple[int, str, str]], arrivals: list[tuple[int, str]]) -> list[tuple[int, int, str, str]]:
    """Each IPI to a thread ends at that thread's first later wake-up or interrupt."""
    pending: dict[str, list[tuple[int, str]]] = {}
    out = []
    events = [(t, 0, who, "", tgt) for t, who, tgt in sends] + [(t, 1, who, "", "") for t, who in arrivals]
    for t, kind, who, _x, tgt in sorted(events, key=lambda e: (e[0], e[1])):
        if kind == 0:
            pending.setdefault(tgt, []).append((t, who))
        else:
            for t0, sender in pending.pop(who, []):
                out.append((t0, t, sender, who))
    return out


def from_sim(result: Any) -> Timeline:
    """A timed run (``simulate(..., record_states=True)``) as a timeline in nanoseconds."""
    tl = Timeline(f"{result.program} (seed {result.seed})", "ns", result.end_ns)
    tracks = _groups(result.actors, result.roles, result.config)
    tl.slices = _close([s for s in result.states if s[0] <= result.end_ns], result.end_ns)
    switches = [(e.t, e.actor, e.data["prev"], e.data["next"]) for e in result.events if e.event == "switch"]
    tl.runs, tasks = _runs(switches, result.end_ns)
    tl.tracks = tracks + [Track(t, "host tasks", "task") for t in tasks]
    sends = [(e.t, e.actor, str(e.data.get("target"))) for e in result.events if e.event == "ipi"]
    arrivals = [(e.t, e.actor) for e in result.events if e.event in ("wake", "irq")]
    tl.ipis = _match_ipis(sends, arrivals)
    tl.marks = [(e.t, e.actor, e.event, dict(e.data)) for e in result.events if e.event in MARKS]
    if result.violation:
        v = result.violation
        tl.violation = (result.end_ns, "", f"{v.get('invariant')}: {v.get('message')}")
    return tl


def from_execution(ex: Execution, title: str) -> Timeline:
    """A replayed execution (records on) as a timeline in steps: step i spans [i, i + 1)."""
    roles = {a.name: a.role for a in ex.actors}
    names = [a.name for a in ex.actors]
    kvm = "machine" in ex.program.config
    end = len(ex.records)
    tl = Timeline(title, "step", end)
    changes: list[tuple[int, str, str, str]] = [(0, a.name, NAP, "") for a in Execution(ex.program).actors if a.status == STATUS_NAP]
    switches: list[tuple[int, str, str, str]] = []
    sends: list[tuple[int, str, str]] = []
    arrivals: list[tuple[int, str]] = []
    for rec in ex.records:
        i = rec.index
        for op in rec.ops:
            m = _IPI_OP.match(op.op)
            if m:
                sends.append((i, rec.actor, m.group(1)))
            elif op.op.startswith(("wake from nap", "interrupt ")):
                arrivals.append((i, rec.actor))
            else:
                m = _SWITCH_OP.match(op.op)
                if m:
                    switches.append((i, rec.actor, m.group(1), m.group(2)))
        if rec.ops:
            last = rec.ops[-1]
            napping = last.op.startswith("nap")
            changes.append((i, rec.actor, state_of(last.stack, last.msr, False, kvm), last.stack[-1] if last.stack else ""))
            if napping:
                changes.append((i + 1, rec.actor, NAP, ""))
    tl.slices = _close(sorted(changes, key=lambda c: c[0]), end)
    tl.runs, tasks = _runs(switches, end)
    tl.tracks = _groups(names, roles, ex.program.config) + [Track(t, "host tasks", "task") for t in tasks]
    tl.ipis = _match_ipis(sends, arrivals)
    if ex.violation is not None:
        v = ex.violation
        at = max(0, v.step - 1)
        actor = ex.records[at].actor if at < len(ex.records) else ""
        tl.violation = (at, actor, f"{v.name}: {v.message}")
    return tl
