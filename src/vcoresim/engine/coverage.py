"""What the executions of a check reached: model code, changed state, armed properties.

Recording is opt-in and costs nothing otherwise: :func:`covering` returns a
program whose executions run a subclass of the program's own execution class
(sequentially consistent or weak) that, each time a generator yields an
operation, adds the (code object, instruction offset) of every frame of the
yielding chain to a set.  Those are exactly the *yield points* of model code:
every visible operation, every ``yield from`` call site on the way.  Line
coverage of code between yields (local computation) is not recorded: it
cannot change what other threads see, and the yield points around it are.

The same subclass notes which shared locations ever held a value other than
their value at the start of exploration (after boot) and which liveness
properties' triggers ever held:
the raw material of the vacuity report (``check/unreached.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from types import CodeType
from typing import Any

from vcoresim.engine.runtime import Execution
from vcoresim.engine.world import Actor, Liveness, Program, World


@dataclasses.dataclass
class Coverage:
    """Accumulates over every execution of a covered program."""

    #: (code object, offset of its YIELD_VALUE) of every frame that was suspended at a yield.
    points: set[tuple[CodeType, int]] = dataclasses.field(default_factory=set)
    #: Locations that held a value other than the initial one (pseudo-locations of a
    #: thread's mode count when the mode changed).
    changed: set[str] = dataclasses.field(default_factory=set)
    #: Liveness properties whose trigger held at least once.
    armed: set[str] = dataclasses.field(default_factory=set)
    #: Every invariant and liveness property installed, with the locations it reads.
    monitors: dict[str, tuple[str, tuple[str, ...]]] = dataclasses.field(default_factory=dict)
    initial: dict[str, Any] | None = None
    executions: int = 0


def covering(program: Program, cov: Coverage) -> Program:
    """``program`` with its executions recording into ``cov``.  The program is
    the same model (same config, same traces); only its execution class and
    world builder are wrapped."""
    base = program.execution or Execution
    cls = type(f"Covered{base.__name__}", (_Recording, base), {"coverage": cov})
    build = program.build
    copies: dict[int, tuple[Liveness, Liveness]] = {}  # a model may share its monitors between worlds

    def build_and_watch(w: World) -> None:
        build(w)
        _watch_monitors(w, cov, copies)

    return dataclasses.replace(program, build=build_and_watch, execution=cls)


def _watch_monitors(w: World, cov: Coverage, copies: dict[int, tuple[Liveness, Liveness]]) -> None:
    # An invariant is re-checked after every step that writes what it reads, so
    # "a location it reads changed" is "it was evaluated on a changed value".
    for inv in w.invariants:
        cov.monitors.setdefault(inv.name, ("invariant", inv.reads))
    watched = []
    for live in w.liveness:
        cov.monitors.setdefault(live.name, ("liveness", live.reads))
        # A copy whose trigger records when it holds; the same copy for the same
        # monitor (the model's own object stays as it was, for other programs).
        known = copies.get(id(live))
        if known is None or known[0] is not live:
            if len(copies) > 256:  # (a model that builds new monitors for every world)
                copies.clear()
            known = copies[id(live)] = (live, dataclasses.replace(live, trigger=_arming(live.trigger, live.name, cov.armed)))
        watched.append(known[1])
    w.liveness = watched


def _arming(trigger: Callable[[Any], bool], name: str, armed: set[str]) -> Callable[[Any], bool]:
    def watched(view: Any) -> bool:
        held = trigger(view)
        if held:
            armed.add(name)
        return held

    return watched


_GENERATOR = type(_ for _ in ())


class _Recording(Execution):
    """Mixed in before the program's execution class by :func:`covering`."""

    coverage: Coverage

    def __init__(self, program: Program, **kwargs: Any) -> None:
        cov = self.coverage
        self._points = cov.points
        self._inner: dict[int, Any] = {}
        self._last: dict[int, tuple[Any, Any]] = {}  # actor -> (top generator, its innermost one)
        super().__init__(program, **kwargs)
        if cov.initial is None:
            cov.initial = dict(self.mem)
        self._initial = cov.initial
        self._changed = cov.changed
        cov.executions += 1

    # A replayed prefix (``replaying``) reaches exactly what it reached when it
    # first ran in this process: nothing new to record.  The innermost frames
    # remembered in ``_inner`` may then be stale; a stale one still holding the
    # top of a chain means the chain around it has not moved since it was walked.
    def _advance(self, a: Actor, value: Any) -> None:
        super()._advance(a, value)
        if a.stack and not self.replaying:
            self._record(a)

    def _throw(self, a: Actor, exc: BaseException) -> None:
        super()._throw(a, exc)
        if a.stack and not self.replaying:
            self._record(a)

    def _record(self, a: Actor) -> None:
        # The frames around the innermost generator stay suspended where they are
        # while it runs: walk the whole chain only when the innermost one changed.
        top: Any = a.stack[-1].gen
        last = self._last.get(a.idx)
        if last is not None and last[0] is top:
            # The innermost generator last time, under the same top one: while it
            # has not finished, the chain down to it cannot have changed, and it
            # is still the innermost unless it now delegates to model code.
            g = last[1]
            f = g.gi_frame
            if f is not None:
                inner = g.gi_yieldfrom
                if inner is None or inner.__class__ is not _GENERATOR:
                    self._points.add((g.gi_code, f.f_lasti))
                    return
        g = top
        inner = g.gi_yieldfrom
        while inner is not None:
            if inner.__class__ is not _GENERATOR:
                break  # ``yield from`` something that is not model code
            g = inner
            inner = g.gi_yieldfrom
        f = g.gi_frame
        if f is None:
            return
        self._points.add((g.gi_code, f.f_lasti))
        self._last[a.idx] = (top, g)
        inners = self._inner
        if inners.get(a.idx) is g:
            return
        inners[a.idx] = g
        add = self._points.add
        g = top
        while g is not inners[a.idx]:
            add((g.gi_code, g.gi_frame.f_lasti))
            g = g.gi_yieldfrom

    def step(self, idx: int, alt: int = 0) -> None:
        super().step(idx, alt)
        mem, initial, changed = self.mem, self._initial, self._changed
        for loc in self.footprints[-1][1]:
            if loc in changed:
                continue
            if loc in mem:
                if loc not in initial or mem[loc] != initial[loc]:
                    changed.add(loc)
            elif loc.startswith("cpu:"):
                changed.add(loc)  # a thread's mode (or one facet of it) changed


__all__ = ["Coverage", "covering"]
