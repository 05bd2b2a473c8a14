"""The shared state along a trace: what each step changed, and the whole state at the end.

TLC prints every variable at each state of an error trace; here a step
changes a few of hundreds of locations, so each step lists the locations it
changed (old -> new) and the threads whose mode changed, and the state where
the trace ends (at the violation) is given in full.  Locations are grouped as
the kernel's structures are: ``paca[3].kvm_hstate.hwthread_req`` is field
``hwthread_req`` of ``paca[3].kvm_hstate``, ``vcore[0].entry_exit_count`` of
``vcore[0]``, ``xics[1].mfrr`` of ``xics[1]``.  ``ghost[...]`` groups are the
model's bookkeeping for its monitors, not kernel state.

Under a weak memory model the state is memory as committed; each thread's
store buffer (stores not yet visible to others) is listed with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vcoresim.check.trace import jsonable
from vcoresim.engine.msr import msr_str
from vcoresim.engine.runtime import Execution
from vcoresim.engine.world import DONE, NAP, Program

_STATUS = {0: "run", NAP: "nap", DONE: "done"}


def split_location(loc: str) -> tuple[str, str]:
    """``paca[3].kvm_hstate.hwthread_req`` -> (``paca[3].kvm_hstate``, ``hwthread_req``); ``x`` -> ("", ``x``)."""
    head, dot, tail = loc.rpartition(".")
    return (head, tail) if dot else ("", loc)


def group(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Locations -> {structure: {field: value}}, structures in first-declared order."""
    out: dict[str, dict[str, Any]] = {}
    for loc, v in values.items():
        g, f = split_location(loc)
        out.setdefault(g, {})[f] = v
    return out


def mode(status: int, msr: int) -> str:
    """A thread's mode as a trace shows it: ``run [HV|IR|DR|EE]``, ``nap``, ``done``."""
    st = _STATUS.get(status, str(status))
    return f"{st} [{msr_str(msr)}]" if st == "run" else st


@dataclass
class StepState:
    step: int  # numbered from 1, as replay prints steps
    actor: str
    #: location -> (before, after), in declaration order
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    #: thread -> (mode before, mode after)
    modes: dict[str, tuple[str, str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "actor": self.actor,
            "changes": {loc: [jsonable(a), jsonable(b)] for loc, (a, b) in self.changes.items()},
            "modes": {t: [a, b] for t, (a, b) in self.modes.items()},
        }


@dataclass
class TraceStates:
    initial: dict[str, Any]
    steps: list[StepState]
    final: dict[str, Any]
    threads: dict[str, str]  # thread -> mode at the end
    buffers: dict[str, list[tuple[str, Any]]]  # thread -> stores not yet visible (weak memory)
    initial_threads: dict[str, str] = field(default_factory=dict)  # thread -> mode at the start

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.as_dict() for s in self.steps],
            "final": {g: {f: jsonable(v) for f, v in fields.items()} for g, fields in group(self.final).items()},
            "threads": dict(self.threads),
            "store_buffers": {t: [[loc, jsonable(v)] for loc, v in b] for t, b in self.buffers.items()},
        }


def _modes(ex: Execution) -> list[str]:
    return [mode(a.status, a.msr) for a in ex.actors]


def _buffers(ex: Execution) -> dict[str, list[tuple[str, Any]]]:
    bufs = getattr(ex, "buf", None)
    if not bufs:
        return {}
    return {ex.actors[i].name: [(e[1], e[2]) for e in b] for i, b in enumerate(bufs) if b}


def trace_states(program: Program, schedule: list[tuple[int, int]]) -> TraceStates:
    """Re-execute ``schedule`` of ``program`` noting what each step changed."""
    ex = Execution(program)
    initial = dict(ex.mem)
    start = {a.name: mode(a.status, a.msr) for a in ex.actors if a.role not in ("store-buffer", "propagation")}
    steps: list[StepState] = []
    for n, (idx, alt) in enumerate(schedule, start=1):
        if ex.violation is not None:
            break
        before = dict(ex.mem)
        modes_before = _modes(ex)
        ex.step(idx, alt)
        st = StepState(n, ex.actors[idx].name)
        for loc, v in ex.mem.items():
            old = before.get(loc, v)
            if loc not in before or old != v or type(old) is not type(v):
                st.changes[loc] = (before.get(loc), v)
        for a, old_mode, new_mode in zip(ex.actors, modes_before, _modes(ex)):
            if old_mode != new_mode and a.role not in ("store-buffer", "propagation"):
                st.modes[a.name] = (old_mode, new_mode)
        steps.append(st)
    threads = {a.name: mode(a.status, a.msr) for a in ex.actors if a.role not in ("store-buffer", "propagation")}
    return TraceStates(initial, steps, dict(ex.mem), threads, _buffers(ex), start)


def _value(v: Any) -> str:
    if isinstance(v, (bool, int, float)) or v is None:
        return str(v)
    if isinstance(v, str):
        return repr(v)
    return str(jsonable(v))


def change_text(st: StepState) -> list[str]:
    """One phrase per change: ``paca[1].kvm_hstate.hwthread_req 0 -> 1``, ``cpu1 run [HV|IR|DR] -> nap``."""
    out = [f"{loc} {_value(a)} -> {_value(b)}" for loc, (a, b) in st.changes.items()]
    out += [f"{t} {a} -> {b}" for t, (a, b) in st.modes.items()]
    return out


def state_text(ts: TraceStates) -> list[str]:
    """The state at the end, one structure per line: ``vcore[0]: lock = 0, n_runnable = 1, ...``."""
    lines = [f"{g or '(globals)'}: " + ", ".join(f"{f} = {_value(v)}" for f, v in fields.items()) for g, fields in group(ts.final).items()]
    lines.append("threads: " + ", ".join(f"{t} {m}" for t, m in ts.threads.items()))
    for t, buf in ts.buffers.items():
        lines.append(f"store buffer of {t}: " + ", ".join(f"{loc} = {_value(v)}" for loc, v in buf))
    return lines
