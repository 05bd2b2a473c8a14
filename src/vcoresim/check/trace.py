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
from typing import TYPE_CHECKING, Any

from vcoresim.engine.msr import msr_str
from vcoresim.engine.runtime import GLOBAL, Execution, Violation
from vcoresim.engine.strategies.base import run_schedule
from vcoresim.engine.world import Program
from vcoresim.errors import InputError
from vcoresim.files import MAX_TRACE_BYTES, excerpt, load_json, printable, read_text, show_path, write_atomic
from vcoresim.scenarios.loader import format_validation_error

if TYPE_CHECKING:  # pydantic: only to read a trace back (tracedoc.py)
    from pydantic import ValidationError

FORMAT = "vcoresim-trace"
VERSION = 1

Schedule = list[tuple[int, int]]


class TraceError(InputError):
    """A trace file that cannot be used (malformed, truncated, foreign version,
    or a schedule that does not match the model); the message names the field."""


def context_switches(schedule: Schedule) -> int:
    return sum(1 for i in range(1, len(schedule)) if schedule[i][0] != schedule[i - 1][0])


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
    budget: int | None = None,
) -> Schedule:
    """:func:`shrink_schedule` within a budget (``budget``: replayed steps, see there): ``deadline`` (a ``time.perf_counter()``
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
        return shrink_schedule(program, schedule, violation, max_replays, guard=guard, found=found, budget=budget)
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
    budget: int | None = None,
) -> Schedule:
    """Fewer steps, then fewer context switches, keeping the same violated property.

    Cheap moves first, each checked by one replay: the causal slice (only the
    steps the violation depends on) and the same steps regrouped into fewer
    context switches (an equivalent execution).  Then steps are removed in
    chunks of halving size (delta debugging); entries whose actor is not
    enabled when reached are skipped by the replay, so removing one step can
    make others moot.  Then the steps are regrouped again and each step that
    still switches actor is tried one place earlier, next to its own actor's
    previous run.  Every candidate is checked by re-executing it.

    ``budget``: replayed steps the delta debugging and the moves may spend
    (the driver gives a quarter of what the search spent, at least 2,000): a trace
    from a short search is not worth a long shrink.  Without
    one, each phase runs to its end (at most ``max_replays`` candidates).
    """
    name = violation.name
    best = list(schedule)
    replays = 0
    spent = 0

    def attempt(cand: Schedule) -> Schedule | None:
        nonlocal replays, spent
        if guard is not None:
            guard()  # budget or Ctrl-C: raises
        replays += 1
        ex = run_schedule(program, cand, strict=False)
        spent += ex.steps
        if ex.violation is None or ex.violation.name != name:
            return None
        got = list(ex.schedule)
        if found is not None:
            found(got)
        return got

    def better(got: Schedule | None) -> bool:
        return got is not None and (len(got), context_switches(got)) < (len(best), context_switches(best))

    def more() -> bool:
        return replays < max_replays and (budget is None or spent < budget)

    for cand in _cheap_moves(program, best, name):
        got = attempt(cand)
        if better(got):
            best = got  # type: ignore[assignment]
    chunk = max(1, len(best) // 2)
    while chunk >= 1 and more():
        i = 0
        changed = False
        while i < len(best) and more():
            cand = best[:i] + best[i + chunk :]
            got = attempt(cand)
            if got is not None and len(got) < len(best):
                best = got
                changed = True
            else:
                i += chunk
        if not changed:
            chunk //= 2
    if replays > 2:  # delta debugging changed the interleaving: regroup it again
        for cand in _cheap_moves(program, best, name, slice_first=False):
            got = attempt(cand)
            if better(got):
                best = got  # type: ignore[assignment]
    improved = True
    while improved and more():
        improved = False
        i = 1
        while i < len(best) and more():
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
                if better(got):
                    # Keep scanning from here rather than from the start (one pass
                    # per round instead of one per improvement); rounds repeat
                    # until a pass improves nothing.
                    best = got  # type: ignore[assignment]
                    improved = True
            i += 1
    return best


def _cheap_moves(program: Program, schedule: Schedule, name: str, slice_first: bool = True) -> list[Schedule]:
    """Candidates that need no search: the causal slice and the regrouped
    order of the steps (of the slice, when it is shorter)."""
    ex = run_schedule(program, schedule, strict=False)
    if ex.violation is None or ex.violation.name != name:
        return []
    steps, fps = list(ex.schedule), list(ex.footprints)
    out = []
    if slice_first:
        keep = causal_slice(ex, name)
        if keep is not None and sum(keep) < len(steps):
            steps = [t for t, k in zip(steps, keep, strict=True) if k]
            fps = [f for f, k in zip(fps, keep, strict=True) if k]
            out.append(steps)
    grouped = regroup(steps, fps)
    if context_switches(grouped) < context_switches(steps):
        out.append(grouped)
    return out


def causal_slice(ex: Execution, name: str) -> list[bool] | None:
    """Which steps of the execution ``ex`` (ended by a violation of invariant
    ``name``) the violation depends on.

    The violation shows after the last step; what the invariant reads was
    last written by some steps.  Those steps and, transitively, every earlier
    step they depend on (the same actor, or footprints that conflict: the
    dependency partial-order reduction uses) form a prefix of an execution
    equivalent to this one, so they reach the same values of everything the
    invariant reads.  None when there is nothing to slice by (a deadlock or
    liveness violation, an invariant that reads everything)."""
    if ex.violation is None or ex.violation.kind != "invariant" or not ex.schedule:
        return None
    inv = next((i for i in ex.world.invariants if i.name == name), None)
    if inv is None or not inv.reads:
        return None
    steps = ex.schedule
    fps = ex.footprints
    n = len(steps)
    cpu_locs = {a.cpu_loc: a.idx for a in ex.actors}
    seeds = {n - 1}
    for loc in inv.reads:
        owner = cpu_locs.get(loc)  # an invariant reading a thread's whole mode: its last step
        for j in range(n - 1, -1, -1):
            if loc in fps[j][1] or steps[j][0] == owner or any(w.startswith(loc + ":") for w in fps[j][1]):
                seeds.add(j)
                break
    keep = [False] * n
    actors: set[int] = set()
    reads: set[str] = set()
    writes: set[str] = set()
    everything = False
    for j in range(n - 1, -1, -1):
        r, w = fps[j]
        if not (everything or j in seeds or steps[j][0] in actors or (GLOBAL in w and actors) or not writes.isdisjoint(r) or not writes.isdisjoint(w) or not reads.isdisjoint(w)):
            continue
        keep[j] = True
        actors.add(steps[j][0])
        reads.update(r)
        writes.update(w)
        everything = everything or GLOBAL in w
    return keep


def regroup(steps: Schedule, fps: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> Schedule:
    """The same steps in an order with fewer context switches, keeping every
    dependency (same actor, conflicting footprints) in its order: an
    equivalent execution, so it reaches the same state.  Greedy: let the
    running actor go on while its next step's predecessors have run, else
    switch to the earliest step that can run."""
    n = len(steps)
    preds: list[set[int]] = [set() for _ in range(n)]
    last_of: dict[int, int] = {}
    last_write: dict[str, int] = {}
    reads_since: dict[str, list[int]] = {}
    last_global = -1
    for j, ((q, _alt), (r, w)) in enumerate(zip(steps, fps, strict=True)):
        p = preds[j]
        if GLOBAL in w:
            p.update(range(j))
        elif last_global >= 0:
            p.add(last_global)
        if q in last_of:
            p.add(last_of[q])
        for loc in r:
            if loc in last_write:
                p.add(last_write[loc])
        for loc in w:
            if loc in last_write:
                p.add(last_write[loc])
            p.update(reads_since.get(loc, ()))
        last_of[q] = j
        for loc in r:
            if loc not in w:
                reads_since.setdefault(loc, []).append(j)
        for loc in w:
            last_write[loc] = j
            reads_since[loc] = []
        if GLOBAL in w:
            last_global = j
    waiting = [len(p) for p in preds]
    after: list[list[int]] = [[] for _ in range(n)]
    for j, p in enumerate(preds):
        for i in p:
            after[i].append(j)
    ready = {j for j in range(n) if not waiting[j]}
    order: list[int] = []
    cur = steps[0][0] if steps else -1
    while ready:
        mine = [j for j in ready if steps[j][0] == cur]
        j = min(mine) if mine else min(ready)
        ready.discard(j)
        order.append(j)
        cur = steps[j][0]
        for k in after[j]:
            waiting[k] -= 1
            if not waiting[k]:
                ready.add(k)
    return [steps[j] for j in order]


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
    #: The delays the counterexample needs (simulate/window.py); written, not read back.
    window: dict[str, Any] | None = None

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
            **({"window": self.window} if self.window is not None else {}),
            "schedule": [[a, alt] for a, alt in self.schedule],
            "steps": self.steps,
        }
        return json.dumps(doc, indent=1, sort_keys=False) + "\n"

    def write(self, path: Path, option: str = "--trace-out", text: str | None = None) -> Path:
        """Write atomically (a unique temporary file renamed over ``path``);
        ``text``: ``to_json()`` if the caller has it already (a long trace's
        JSON takes tens of ms)."""
        return write_atomic(path, text if text is not None else self.to_json(), option)

    def default_path(self, folder: Path = Path("traces"), text: str | None = None) -> Path:
        """``traces/<scenario>.<memory model>.<digest>.trace.json``: the digest is
        the file's own content (SHA-256), so two runs that write the same name
        write the same bytes, and a run never reports a path holding another
        run's counterexample; rerunning a deterministic check rewrites its file."""
        digest = hashlib.sha256((text if text is not None else self.to_json()).encode()).hexdigest()[:12]
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
    from vcoresim.check.tracedoc import TraceDoc, ValidationError

    try:
        d = TraceDoc.model_validate(doc)
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
        window=d.window,
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
