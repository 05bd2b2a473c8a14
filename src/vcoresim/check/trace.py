"""Counterexample traces: shrinking, the versioned JSON file, loading it back.

A trace holds everything needed to re-execute a run: the scenario and its
effective configuration, and the schedule (which actor moved at each step,
and which branch of a choice it took).  The per-step detail (call stack,
operation, location, value) is for people; replay re-derives it and compares.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from vcoresim.engine.msr import msr_str
from vcoresim.engine.runtime import Execution, Violation
from vcoresim.engine.strategies.base import run_schedule
from vcoresim.engine.world import Program
from vcoresim.errors import InputError
from vcoresim.files import MAX_TRACE_BYTES, excerpt, load_json, printable, read_text, show_path, write_atomic
from vcoresim.scenarios.loader import format_validation_error

FORMAT = "vcoresim-trace"
VERSION = 1
#: Longest schedule a trace may hold (steps).
MAX_SCHEDULE = 10_000_000

Schedule = list[tuple[int, int]]


class TraceError(InputError):
    """A trace file that cannot be used (malformed, truncated, foreign version,
    or a schedule that does not match the model); the message names the field."""


_Str = Annotated[str, Strict()]
_Nat = Annotated[int, Strict(), Field(ge=0)]


class _ViolationDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["invariant", "liveness", "deadlock"]
    invariant: Annotated[_Str, Field(min_length=1, max_length=200)]
    message: Annotated[_Str, Field(max_length=100_000)]
    step: _Nat
    #: A timed run's trace: the simulated time of the violation, in ns.
    t_ns: _Nat | None = None


class _TraceDoc(BaseModel):
    """The v1 trace file (``format`` and ``version`` are checked before, with their own messages)."""

    model_config = ConfigDict(extra="forbid")
    format: _Str
    version: Annotated[int, Strict()]
    scenario: Annotated[_Str, Field(min_length=1, max_length=200)]
    config: dict[_Str, Any]
    strategy: dict[_Str, Any] = Field(default_factory=dict)
    bounds: dict[_Str, Any] = Field(default_factory=dict)
    violation: _ViolationDoc | None = None
    shrink: dict[_Str, Any] = Field(default_factory=dict)
    schedule: Annotated[list[tuple[Annotated[_Str, Field(min_length=1, max_length=200)], _Nat]], Field(max_length=MAX_SCHEDULE)]
    steps: list[dict[_Str, Any]] = Field(default_factory=list)


def context_switches(schedule: Schedule) -> int:
    return sum(1 for i in range(1, len(schedule)) if schedule[i][0] != schedule[i - 1][0])


def _reproduces(program: Program, schedule: Schedule, name: str) -> Execution | None:
    ex = run_schedule(program, schedule, strict=False)
    if ex.violation is not None and ex.violation.name == name:
        return ex
    return None


class _Cut(Exception):
    """Shrinking ran out of its time or was interrupted."""


def shrink(
    program: Program,
    schedule: Schedule,
    violation: Violation,
    max_replays: int = 4000,
    *,
    deadline: float | None = None,
    stop: Callable[[], bool] | None = None,
    cut: list[str] | None = None,
) -> Schedule:
    """:func:`shrink_schedule` within a budget: ``deadline`` (a ``time.perf_counter()``
    value, what is left of the run's ``--max-seconds``) and ``stop`` (Ctrl-C) end it
    early, as does a second Ctrl-C (``KeyboardInterrupt``).  Then the best schedule
    found so far is returned (shortest, then fewest switches, among the candidates
    that reproduced: it was re-executed, so it reproduces) and the reason
    (``"budget"`` / ``"interrupted"``) is appended to ``cut``."""
    best = [list(schedule)]

    def guard() -> None:
        if deadline is not None and time.perf_counter() >= deadline:
            raise _Cut("budget")
        if stop is not None and stop():
            raise _Cut("interrupted")

    def found(s: Schedule) -> None:
        if (len(s), context_switches(s)) < (len(best[0]), context_switches(best[0])):
            best[0] = s

    try:
        guard()
        return shrink_schedule(program, schedule, violation, max_replays, guard=guard, found=found)
    except _Cut as e:
        reason = str(e)
    except KeyboardInterrupt:
        reason = "interrupted"
    if cut is not None:
        cut.append(reason)
    return best[0]


def shrink_schedule(
    program: Program,
    schedule: Schedule,
    violation: Violation,
    max_replays: int = 4000,
    guard: Callable[[], None] | None = None,
    found: Callable[[Schedule], None] | None = None,
) -> Schedule:
    """Fewer steps, then fewer context switches, keeping the same violated property.

    Steps are removed in chunks of halving size (delta debugging); entries
    whose actor is not enabled when reached are skipped by the replay, so
    removing one step can make others moot.  Then each step that switches
    actor is tried one place earlier, next to its own actor's previous run.
    Every candidate is checked by re-executing it.
    """
    name = violation.name
    best = list(schedule)
    replays = 0

    def attempt(cand: Schedule) -> Schedule | None:
        nonlocal replays
        if guard is not None:
            guard()  # budget or Ctrl-C: raises
        replays += 1
        ex = _reproduces(program, cand, name)
        got = list(ex.schedule) if ex is not None else None
        if got is not None and found is not None:
            found(got)
        return got

    chunk = max(1, len(best) // 2)
    while chunk >= 1 and replays < max_replays:
        i = 0
        changed = False
        while i < len(best) and replays < max_replays:
            cand = best[:i] + best[i + chunk :]
            got = attempt(cand)
            if got is not None and len(got) < len(best):
                best = got
                changed = True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    improved = True
    while improved and replays < max_replays:
        improved = False
        i = 1
        while i < len(best) and replays < max_replays:
            if best[i][0] == best[i - 1][0]:
                i += 1
                continue
            actor = best[i][0]
            j = i - 1
            while j >= 0 and best[j][0] != actor:
                j -= 1
            if j >= 0:
                cand = best[: j + 1] + [best[i]] + best[j + 1 : i] + best[i + 1 :]
                got = attempt(cand)
                if got is not None and (len(got), context_switches(got)) < (len(best), context_switches(best)):
                    # Keep scanning from here rather than from the start (one pass
                    # per round instead of one per improvement); rounds repeat
                    # until a pass improves nothing.
                    best = got
                    improved = True
            i += 1
    return best


def jsonable(v: Any) -> Any:
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    if isinstance(v, (tuple, list)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    return repr(v)


def steps_as_json(ex: Execution) -> list[dict[str, Any]]:
    out = []
    for rec in ex.records:
        out.append(
            {
                "i": rec.index + 1,  # steps are numbered from 1, as replay prints them
                "actor": rec.actor,
                "alt": rec.alt,
                "ops": [
                    {"stack": o.stack, "op": o.op, "loc": o.loc, "value": jsonable(o.value), "msr": msr_str(o.msr)}
                    for o in rec.ops
                ],
            }
        )
    return out


@dataclass
class Trace:
    scenario: str
    config: dict[str, Any]
    strategy: dict[str, Any]
    bounds: dict[str, Any]
    violation: dict[str, Any] | None
    schedule: list[tuple[str, int]]
    steps: list[dict[str, Any]]
    shrink: dict[str, Any]

    def to_json(self) -> str:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "scenario": self.scenario,
            "config": self.config,
            "strategy": self.strategy,
            "bounds": self.bounds,
            "violation": self.violation,
            "shrink": self.shrink,
            "schedule": [[a, alt] for a, alt in self.schedule],
            "steps": self.steps,
        }
        return json.dumps(doc, indent=1, sort_keys=False) + "\n"

    def write(self, path: Path, option: str = "--trace-out") -> Path:
        """Write atomically (a unique temporary file renamed over ``path``)."""
        return write_atomic(path, self.to_json(), option)

    def default_path(self, folder: Path = Path("traces")) -> Path:
        """``traces/<scenario>.<memory model>.<digest>.trace.json``: the digest is
        the file's own content (SHA-256), so two runs that write the same name
        write the same bytes, and a run never reports a path holding another
        run's counterexample; rerunning a deterministic check rewrites its file."""
        digest = hashlib.sha256(self.to_json().encode()).hexdigest()[:12]
        model = self.config.get("memory_model", "sc")
        removed = "".join(f".no-{safe_name(f'{f}-{k}-{line}')}" for f, k, line in self.config.get("removed_barriers", []))
        return folder / f"{safe_name(self.scenario)}.{safe_name(str(model))}{removed}.{digest}.trace.json"


def build_trace(
    program: Program,
    schedule: Schedule,
    *,
    strategy: dict[str, Any],
    bounds: dict[str, Any],
    original_length: int,
    original_switches: int,
) -> tuple[Trace, Execution]:
    ex = run_schedule(program, schedule, record=True)
    names = [a.name for a in ex.actors]
    trace = Trace(
        scenario=program.name,
        config=jsonable(program.config),
        strategy=strategy,
        bounds=bounds,
        violation=ex.violation.as_dict() if ex.violation else None,
        schedule=[(names[i], alt) for i, alt in ex.schedule],
        steps=steps_as_json(ex),
        shrink={
            "steps_before": original_length,
            "steps_after": len(ex.schedule),
            "context_switches_before": original_switches,
            "context_switches_after": context_switches(ex.schedule),
        },
    )
    return trace, ex


def load_trace(path: Path) -> Trace:
    """Read and validate a trace file: one ``TraceError`` line naming the file and the field."""
    src = show_path(path)
    try:
        doc = load_json(read_text(path, "trace", MAX_TRACE_BYTES), src)
    except InputError as e:
        raise TraceError(str(e)) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise TraceError(f"{src}: field 'format': not a vcoresim trace (it must be {FORMAT!r})")
    version = doc.get("version")
    if type(version) is not int or version != VERSION:
        raise TraceError(f"{src}: field 'version': trace version {excerpt(version)}; this vcoresim reads version {VERSION}")
    try:
        d = _TraceDoc.model_validate(doc)
    except ValidationError as e:
        raise TraceError(f"{src}: field {_field(e)}") from None
    viol = d.violation.model_dump() if d.violation is not None else None
    return Trace(
        scenario=d.scenario,
        config=d.config,
        strategy=d.strategy,
        bounds=d.bounds,
        violation=viol,
        schedule=[(a, alt) for a, alt in d.schedule],
        steps=d.steps,
        shrink=d.shrink,
    )


def _field(e: ValidationError) -> str:
    """``'schedule[3][1]': message`` for the first error (quoted the way the old loader did)."""
    text = format_validation_error(e)
    head, sep, rest = text.partition(": ")
    return f"'{head}': {rest}" if sep else text


def safe_name(name: str) -> str:
    """A scenario name as part of a file name (``/`` and anything unusual become ``-``)."""
    return re.sub(r"[^A-Za-z0-9_.@+-]", "-", name)[:100] or "scenario"


def schedule_indices(program_actors: list[str], trace: Trace, path: Path) -> Schedule:
    index = {n: i for i, n in enumerate(program_actors)}
    out: Schedule = []
    for n, (name, alt) in enumerate(trace.schedule):
        if name not in index:
            raise TraceError(f"{show_path(path)}: field 'schedule[{n}]' names actor {excerpt(name)}, which this scenario does not have")
        out.append((index[name], alt))
    return out


def config_difference(written: Any, built: Any, where: str = "config") -> str | None:
    """Where a trace's config differs from the config of the program rebuilt from
    it (``None``: used as written).  A key the trace leaves out takes its default."""
    if isinstance(written, dict) and isinstance(built, dict):
        for k, v in written.items():
            if k not in built:
                return f"'{where}.{printable(str(k))[:40]}': not a setting of this scenario (nothing reads it)"
            d = config_difference(v, built[k], f"{where}.{printable(str(k))[:40]}")
            if d is not None:
                return d
        return None
    if isinstance(written, list) and isinstance(built, list) and len(written) == len(built):
        for i, (w, b) in enumerate(zip(written, built, strict=True)):
            d = config_difference(w, b, f"{where}[{i}]")
            if d is not None:
                return d
        return None
    if written == built and type(written) is type(built):
        return None
    if where == "config.patches":
        return f"'config.patches': {excerpt(written, 80)} is not the patch set config.kernel gives ({excerpt(built, 120)}); edit config.kernel to change the kernel"
    return f"'{where}': {excerpt(written)} is not what it builds ({excerpt(built)})"
