"""Operation mutants, applied by the engine while the model runs.

A mutant changes what one *site* of model code does (a site: the model
function, its source line and the kind of operation it yields there), every
time any thread reaches it, as if that line had been edited:

- ``drop-store``: a ``Store`` is not performed (the model's code goes on as if it had been);
- ``drop-barrier``: a barrier is not executed (nothing changes under ``sc``: equivalent there);
- ``swap``: a ``Store`` is performed after the thread's next visible operation instead of before it
  (moved past any barrier in between; not past a nap or task switch);
- ``invert-load``: a ``Load`` of a flag (it only ever read 0/1 or False/True) returns the opposite truth value;
- ``skip-ipi``: a ``SendIPI`` is not sent.

The model source is never edited and never asked: the execution swaps the
operation the generator yields (as ``Program.removed_barriers`` does), so a
trace records the mutated run and replays it (the trace's ``config`` names the
mutant).  Monitors read state only; they cannot tell a mutant from the
original.  ``Program.config["mutation"]`` carries the mutant.
"""

from __future__ import annotations

import dataclasses
import re
from functools import cache
from pathlib import Path
from typing import Any

from vcoresim.engine import ops as O
from vcoresim.engine.runtime import RFID, Execution
from vcoresim.engine.world import DONE, IRQ, RUN, Actor, Frame, Program

KINDS = ("drop-store", "drop-barrier", "swap", "invert-load", "skip-ipi")
#: The operation classes each kind applies to.
TARGETS: dict[str, tuple[type[O.Op], ...]] = {
    "drop-store": (O.Store, O.StoreN),
    "drop-barrier": (O.Barrier,),
    "swap": (O.Store, O.StoreN),
    "invert-load": (O.Load,),
    "skip-ipi": (O.SendIPI,),
}
#: A swapped store is delayed past the thread's next visible operation (and past
#: the barriers, notes, delays and MSR changes before it), but not past a
#: context change (nap, a task switch, a saved or resumed frame): then it is
#: performed first.
_NO_SWAP_PAST = (O.Nap, O.ContextSwitch, O.ResumeFrame, O.SaveFrame)
_CARRIED_PAST = (O.Barrier, O.Note, O.Delay, O.SetTimer, O.MtMsr, O.IrqDisable, O.IrqEnable)


@dataclasses.dataclass(frozen=True)
class Site:
    """Where model code yields an operation: file (short), function, line."""

    file: str
    function: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def name(self) -> str:
        """The function's own name (``proc`` of ``_store_buffering.<locals>.proc``)."""
        return self.function.rsplit(".", 1)[-1]


@dataclasses.dataclass(frozen=True)
class Mutant:
    kind: str
    site: Site
    #: What the site does, for people (``store paca[*].kvm_hstate.hwthread_req = 1``).
    what: str = ""

    @property
    def label(self) -> str:
        return f"{self.kind} {self.site.name} {self.site.where}"

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "file": self.site.file, "function": self.site.function, "line": self.site.line, "what": self.what, "label": self.label}

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Mutant:
        kind = d.get("kind")
        if kind not in KINDS:
            raise ValueError(f"mutation.kind: unknown mutation {kind!r} (known: {', '.join(KINDS)})")
        try:
            site = Site(str(d["file"]), str(d["function"]), int(d["line"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError("mutation: expected kind, file, function and line") from None
        return Mutant(str(kind), site, str(d.get("what", "")))


def site_of(gen: Any) -> Site:
    """The site of the operation the innermost generator of ``gen``'s chain yields."""
    g = gen
    while True:
        inner = getattr(g, "gi_yieldfrom", None)
        if inner is None or not hasattr(inner, "gi_code"):
            break
        g = inner
    frame = g.gi_frame
    return Site(short_file(g.gi_code.co_filename), g.gi_code.co_qualname, frame.f_lineno if frame is not None else 0)


_PACKAGE = Path(__file__).resolve().parent.parent


@cache
def short_file(path: str) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(_PACKAGE))
    except ValueError:
        return str(p)


def is_flag(value: Any) -> bool:
    return value is True or value is False or (type(value) is int and value in (0, 1))


def invert(value: Any) -> Any:
    return (not value) if isinstance(value, bool) else 1 - value


def mutated(program: Program, mutant: Mutant) -> Program:
    """``program`` with ``mutant`` applied at run time (the config names it, so traces replay)."""
    base = program.execution or Execution
    cls = type(f"Mutated{base.__name__}", (_Mutating, base), {"mutant": mutant})
    config = {**program.config, "mutation": mutant.as_dict()}
    return dataclasses.replace(program, config=config, execution=cls)


def split_mutation(config: dict[str, Any]) -> tuple[dict[str, Any], Mutant | None]:
    """Inverse of :func:`mutated` on a trace's config: (the rest, the mutant)."""
    if "mutation" not in config:
        return config, None
    rest = {k: v for k, v in config.items() if k != "mutation"}
    m = config["mutation"]
    if not isinstance(m, dict):
        raise ValueError("mutation: expected a table with kind, file, function and line")  # noqa: TRY004 - bad input, reported as ScenarioError
    return rest, Mutant.from_dict(m)


@dataclasses.dataclass
class SiteInfo:
    """What discovery saw at a site."""

    op: str  # the operation class's name: Store, Load, ...
    what: str  # its description, thread indices folded (``paca[*]``)
    count: int = 0
    #: Loads only: every value read was a flag (0/1, False/True).
    flag: bool = True


def discovering(program: Program, found: dict[Site, SiteInfo]) -> Program:
    """``program`` with its executions noting every site of a mutable operation in ``found``."""
    base = program.execution or Execution
    cls = type(f"Discovering{base.__name__}", (_Discovering, base), {"found": found})
    return dataclasses.replace(program, execution=cls)


_ANY_TARGET = frozenset(c for cs in TARGETS.values() for c in cs)
_INDEX = re.compile(r"\[\d+\]")


class _Discovering(Execution):
    found: dict[Site, SiteInfo]

    def __init__(self, program: Program, **kwargs: Any) -> None:
        self._sites: dict[tuple[Any, int], Site] = {}
        self._loads: dict[int, tuple[O.Op, SiteInfo]] = {}
        super().__init__(program, **kwargs)

    def _advance(self, a: Actor, value: Any) -> None:
        fr = a.stack[-1]
        done = fr.op
        if done is not None and done.__class__ is O.Load:
            seen = self._loads.pop(id(done), None)
            if seen is not None and seen[0] is done and not is_flag(value):
                seen[1].flag = False
        super()._advance(a, value)
        if not a.stack:
            return
        fr = a.stack[-1]
        op = fr.op
        if op is None or op.__class__ not in _ANY_TARGET:
            return
        g: Any = fr.gen
        while True:
            inner = g.gi_yieldfrom
            if inner is None or not hasattr(inner, "gi_code"):
                break
            g = inner
        f = g.gi_frame
        if f is None:
            return
        key = (g.gi_code, f.f_lasti)
        site = self._sites.get(key)
        if site is None:
            site = self._sites[key] = Site(short_file(g.gi_code.co_filename), g.gi_code.co_qualname, f.f_lineno)
        info = self.found.get(site)
        if info is None:
            info = self.found[site] = SiteInfo(op.__class__.__name__, _INDEX.sub("[*]", op.describe()))
        info.count += 1
        if op.__class__ is O.Load:
            self._loads[id(op)] = (op, info)


def mutants_of(found: dict[Site, SiteInfo], kinds: tuple[str, ...] = KINDS) -> list[Mutant]:
    """Every mutant of the discovered sites, in source order (file, line, kind)."""
    out = []
    for site in sorted(found, key=lambda s: (s.file, s.line, s.function)):
        info = found[site]
        for kind in kinds:
            if info.op not in {c.__name__ for c in TARGETS[kind]}:
                continue
            if kind == "invert-load" and not info.flag:
                continue
            out.append(Mutant(kind, site, info.what))
    return out


class _Mutating(Execution):
    """Mixed in before the program's execution class by :func:`mutated`."""

    mutant: Mutant

    def __init__(self, program: Program, **kwargs: Any) -> None:
        m = self.mutant
        self._kind = m.kind
        self._targets = TARGETS[m.kind]
        self._site = m.site
        #: Operations this execution put in place of the model's: id -> (op, value to send back).
        self._stand_in: dict[int, tuple[O.Op, Any]] = {}
        #: Loads whose value the model sees inverted: id -> op.
        self._inverted: dict[int, O.Op] = {}
        #: Swaps in progress per frame: id(frame) -> [state, store op, operation ahead of it, held value].
        self._swap: dict[int, list[Any]] = {}
        super().__init__(program, **kwargs)

    def _at_site(self, fr: Frame) -> bool:
        op = fr.op
        if op is None or op.__class__ not in self._targets:
            return False
        g: Any = fr.gen
        while True:
            inner = g.gi_yieldfrom
            if inner is None or not hasattr(inner, "gi_code"):
                break
            g = inner
        site = self._site
        f = g.gi_frame
        return f is not None and f.f_lineno == site.line and g.gi_code.co_qualname == site.function and short_file(g.gi_code.co_filename) == site.file

    def _advance(self, a: Actor, value: Any) -> None:
        fr = a.stack[-1]
        done = fr.op
        if done is not None:
            key = id(done)
            stand = self._stand_in.get(key)
            if stand is not None and stand[0] is done:
                del self._stand_in[key]
                value = stand[1]
            elif self._inverted.get(key) is done:
                del self._inverted[key]
                value = invert(value)
            sw = self._swap.get(id(fr))
            if sw is not None and done is sw[1 if sw[0] != "ahead" else 2]:
                handled, value = self._swap_next(a, fr, sw, done, value)
                if handled:
                    return
        super()._advance(a, value)
        if a.stack and a.stack[-1] is fr and self._at_site(fr):
            self._mutate(a, fr)

    def _swap_next(self, a: Actor, fr: Frame, sw: list[Any], done: O.Op, value: Any) -> tuple[bool, Any]:
        """An operation of a swap finished: present the next one (True), or let
        the generator resume with the value it is owed (False, value)."""
        state = sw[0]
        if state == "ahead":
            if done.__class__ not in _CARRIED_PAST:
                sw[0], sw[3] = "store", value  # the visible operation ran: now the store
                fr.op = sw[1]
                return True, None
            # A barrier, note, delay or MSR change: the store moves past it too.
            self._next_for_swap(a, fr, sw, value)
            return True, None
        del self._swap[id(fr)]
        if state == "store":
            return False, sw[3]  # the generator gets the visible operation's result
        if state == "store-then-op":  # the generator already waits at its next operation
            fr.op = sw[2]
            return True, None
        # "store-then-end": the code had ended right after the store
        if fr.kind == IRQ:
            fr.op = RFID
        else:
            a.stack.pop()
            if not a.stack:
                a.status = DONE
        return True, None

    def _next_for_swap(self, a: Actor, fr: Frame, sw: list[Any], value: Any) -> None:
        """Run the generator on to its next operation (the store still held) and
        decide: carry the store past it, or perform the store first."""
        depth = len(a.stack)
        super()._advance(a, value)
        if len(a.stack) < depth or fr.op is RFID:
            # The code ended: perform the store, then end.
            if len(a.stack) < depth:
                a.stack.append(fr)
                a.status = RUN
            sw[0] = "store-then-end"
            fr.op = sw[1]
            return
        nxt = fr.op
        if nxt.__class__ in _NO_SWAP_PAST:
            sw[0], sw[2] = "store-then-op", nxt
            fr.op = sw[1]
            return
        sw[0], sw[2] = "ahead", nxt

    def _mutate(self, a: Actor, fr: Frame) -> None:
        op = fr.op
        assert op is not None
        kind = self._kind
        if kind == "invert-load":
            self._inverted[id(op)] = op
            return
        if kind == "swap":
            self._start_swap(a, fr, op)
            return
        stand_in = O.Note(f"{op.describe()} (mutation: {kind})")
        self._stand_in[id(stand_in)] = (stand_in, op.value if op.__class__ in (O.Store, O.SendIPI) else None)  # type: ignore[attr-defined]
        fr.op = stand_in

    def _start_swap(self, a: Actor, fr: Frame, store: O.Op) -> None:
        sw: list[Any] = ["ahead", store, None, None]
        self._swap[id(fr)] = sw
        self._next_for_swap(a, fr, sw, store.value if store.__class__ is O.Store else None)  # type: ignore[attr-defined]

    def _throw(self, a: Actor, exc: BaseException) -> None:
        # An exception unwinding the frame (a guest exit) loses a swapped store in flight.
        if a.stack:
            self._swap.pop(id(a.stack[-1]), None)
        super()._throw(a, exc)

    def fingerprint(self) -> int:
        # A swap in flight (a store held back) is local state the observation
        # history does not show: the state cache must tell it apart.
        base = super().fingerprint()
        if not self._swap:
            return base
        held = tuple(sorted((sw[0], sw[1].describe(), sw[2].describe() if sw[2] is not None else "") for sw in self._swap.values()))
        return hash((base, held))

    def _log(self, a: Actor, op: O.Op, value: Any, suffix: str = "") -> None:
        if self._inverted.get(id(op)) is op:
            suffix += f" (mutation invert-load: the model sees {invert(value)!r})"
        super()._log(a, op, value, suffix)


__all__ = ["KINDS", "TARGETS", "Mutant", "Site", "SiteInfo", "discovering", "is_flag", "mutants_of", "mutated", "site_of", "split_mutation"]
