"""Counterexample traces: shrinking, the versioned JSON file, loading it back.

A trace holds everything needed to re-execute a run: the scenario and its
effective configuration, and the schedule (which actor moved at each step,
and which branch of a choice it took).  The per-step detail (call stack,
operation, location, value) is for people; replay re-derives it and compares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vcoresim.engine.msr import msr_str
from vcoresim.engine.runtime import Execution, Violation
from vcoresim.engine.strategies.base import run_schedule
from vcoresim.engine.world import Program

FORMAT = "vcoresim-trace"
VERSION = 1

Schedule = list[tuple[int, int]]


class TraceError(Exception):
    """A trace file that cannot be used (malformed, truncated, foreign version)."""


def context_switches(schedule: Schedule) -> int:
    return sum(1 for i in range(1, len(schedule)) if schedule[i][0] != schedule[i - 1][0])


def _reproduces(program: Program, schedule: Schedule, name: str) -> Execution | None:
    ex = run_schedule(program, schedule, strict=False)
    if ex.violation is not None and ex.violation.name == name:
        return ex
    return None


def shrink(program: Program, schedule: Schedule, violation: Violation, max_replays: int = 4000) -> Schedule:
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
        replays += 1
        ex = _reproduces(program, cand, name)
        return list(ex.schedule) if ex is not None else None

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

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json())


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
    try:
        text = path.read_text()
    except OSError as e:
        raise TraceError(f"cannot read {path}: {e.strerror}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise TraceError(f"{path} is not valid JSON (line {e.lineno}: {e.msg}); truncated?") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise TraceError(f"{path} is not a vcoresim trace (field 'format' must be {FORMAT!r})")
    if doc.get("version") != VERSION:
        raise TraceError(f"{path} has trace version {doc.get('version')!r}; this vcoresim reads version {VERSION}")
    for key, kind in (("scenario", str), ("config", dict), ("schedule", list)):
        if not isinstance(doc.get(key), kind):
            raise TraceError(f"{path}: field '{key}' is missing or not a {kind.__name__}")
    sched: list[tuple[str, int]] = []
    for n, entry in enumerate(doc["schedule"]):
        if not (isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str) and isinstance(entry[1], int)):
            raise TraceError(f"{path}: field 'schedule[{n}]' must be [actor, branch]")
        sched.append((entry[0], entry[1]))
    viol = doc.get("violation")
    if viol is not None and not (isinstance(viol, dict) and isinstance(viol.get("invariant"), str)):
        raise TraceError(f"{path}: field 'violation' must be null or an object with 'invariant'")
    return Trace(
        scenario=doc["scenario"],
        config=doc["config"],
        strategy=doc.get("strategy") or {},
        bounds=doc.get("bounds") or {},
        violation=viol,
        schedule=sched,
        steps=doc.get("steps") or [],
        shrink=doc.get("shrink") or {},
    )


def schedule_indices(program_actors: list[str], trace: Trace, path: Path) -> Schedule:
    index = {n: i for i, n in enumerate(program_actors)}
    out: Schedule = []
    for n, (name, alt) in enumerate(trace.schedule):
        if name not in index:
            raise TraceError(f"{path}: schedule[{n}] names actor {name!r}, which this scenario does not have")
        out.append((index[name], alt))
    return out
