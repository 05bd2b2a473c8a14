"""Chrome trace-event JSON that Perfetto (ui.perfetto.dev) and chrome://tracing open.

Layout: one process per core (``pid`` = core + 1) with one thread track per
hardware thread; a "host tasks" process with one track per host task (when
and where it ran); an "environment" process for the other actors (QEMU's
main thread, timers, fault injectors).  Thread states (guest, KVM, host,
QEMU, nap, idle) are complete slices (``ph: X``); IPIs are flow arrows
(``ph: s`` at the sender, ``ph: f``, ``bp: e`` at the target's wake-up or
interrupt); model marks are instants (``ph: i``); the violation, if any,
is a global instant.  ``ts``/``dur`` are microseconds: for a timed run the
simulated time, for a replayed trace 1 µs per step (``otherData.time_unit``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vcoresim.files import write_atomic
from vcoresim.report.timeline import Timeline

TASKS_PID, ENV_PID = 1000, 1001


def _us(t: int, unit: str) -> float | int:
    return t if unit == "step" else round(t / 1000, 3)


def trace_events(tl: Timeline) -> dict[str, Any]:
    """The trace-event document for ``tl`` (deterministic: ordered by track, then time)."""
    pids: dict[str, int] = {}
    tids: dict[str, tuple[int, int]] = {}
    meta: list[dict[str, Any]] = []
    next_tid = {"thread": 1, "task": 1001, "actor": 2001}
    for tr in tl.tracks:
        if tr.group not in pids:
            if tr.group.startswith("core "):
                pid = int(tr.group.split()[1]) + 1
            else:
                pid = {"host tasks": TASKS_PID, "environment": ENV_PID}.get(tr.group, 1)
            pids[tr.group] = pid
            meta.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": tr.group}})
            meta.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": pid}})
        pid = pids[tr.group]
        tid = next_tid[tr.kind]
        next_tid[tr.kind] += 1
        tids[tr.actor] = (pid, tid)
        meta.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": tr.actor}})
        meta.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}})
    u = tl.unit
    body: list[dict[str, Any]] = []
    for start, end, actor, state, fn in tl.slices:
        if actor not in tids:
            continue
        pid, tid = tids[actor]
        ev = {"ph": "X", "name": state, "cat": "state", "pid": pid, "tid": tid, "ts": _us(start, u), "dur": _us(end - start, u)}
        if fn:
            ev["args"] = {"function": fn}
        body.append(ev)
    for start, end, task, cpu in tl.runs:
        if task not in tids:
            continue
        pid, tid = tids[task]
        body.append({"ph": "X", "name": f"on {cpu}", "cat": "task", "pid": pid, "tid": tid, "ts": _us(start, u), "dur": _us(end - start, u)})
    for t, actor, name, args in tl.marks:
        if actor not in tids:
            continue
        pid, tid = tids[actor]
        body.append({"ph": "i", "s": "t", "name": name, "cat": "mark", "pid": pid, "tid": tid, "ts": _us(t, u), "args": {k: str(v) for k, v in args.items()}})
    flow = 0
    for sent, arrived, sender, target in tl.ipis:
        if sender not in tids or target not in tids:
            continue
        flow += 1
        (sp, st), (tp, tt) = tids[sender], tids[target]
        body.append({"ph": "s", "id": flow, "name": "IPI", "cat": "ipi", "pid": sp, "tid": st, "ts": _us(sent, u), "args": {"target": target}})
        body.append({"ph": "f", "bp": "e", "id": flow, "name": "IPI", "cat": "ipi", "pid": tp, "tid": tt, "ts": _us(arrived, u)})
    if tl.violation is not None:
        t, actor, text = tl.violation
        pid, tid = tids.get(actor, (1, 1))
        body.append({"ph": "i", "s": "g", "name": f"VIOLATION {text}", "cat": "violation", "pid": pid, "tid": tid, "ts": _us(t, u)})
    order = {"M": 0, "X": 1, "i": 2, "s": 3, "f": 4}
    body.sort(key=lambda e: (e["pid"], e["tid"], e["ts"], order[e["ph"]], -e.get("dur", 0)))
    return {
        "traceEvents": meta + body,
        "displayTimeUnit": "ns" if u == "ns" else "ms",
        "otherData": {"title": tl.title, "time_unit": "1 µs = 1 ns of simulated time / 1000" if u == "ns" else "1 µs = 1 step"},
    }


def write(tl: Timeline, path: Path) -> None:
    write_atomic(path, json.dumps(trace_events(tl), separators=(",", ":")) + "\n", "--perfetto")
