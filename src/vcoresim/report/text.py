"""One line per step: index, actor, call stack, operation, location and value."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from typing import Any

from vcoresim.engine.msr import msr_str
from vcoresim.engine.runtime import Execution


def header(scenario: str, config: dict[str, Any]) -> list[str]:
    """What a replayed trace is a run of: scenario, memory model, patches, mutant."""
    lines = [f"scenario {scenario}, memory model {config.get('memory_model', 'sc')}"]
    patches = config.get("patches")
    if isinstance(patches, list):
        lines.append("patches: " + (", ".join(patches) or "none"))
    removed = config.get("removed_barriers")
    if removed:
        lines.append("barriers removed: " + ", ".join(f"{f}:{k} line {ln}" for f, k, ln in removed))
    m = config.get("mutation")
    if isinstance(m, dict):
        lines.append(f"mutation: {m.get('kind')} at {m.get('function')} {m.get('file')}:{m.get('line')} ({m.get('what')})")
    return lines


def format_steps(ex: Execution, width: int = 60, after: Callable[[int], list[str]] | None = None, columns: int | None = None) -> Iterator[str]:
    """Steps are numbered from 1; a violation is reported after the step that
    caused it (``Violation.step`` is that step's number; 0: the initial state).
    ``after(step)``: extra lines printed under each step (what it changed).
    ``columns`` under 120: two lines per operation (the operation, then its
    call stack), so a step reads at 80 columns."""
    narrow = columns is not None and columns < 120
    viol_step = ex.violation.step if ex.violation else None
    if viol_step == 0:
        yield f"      ^^^ {ex.violation.kind} {ex.violation.name} in the initial state: {ex.violation.message}"  # type: ignore[union-attr]
    for rec in ex.records:
        for k, op in enumerate(rec.ops):
            head = f"{rec.index + 1:5d}" if k == 0 else "     "
            actor = rec.actor if k == 0 else ""
            stack = " > ".join(op.stack) or "-"
            value = "" if op.value is None or op.op.startswith("store") else f" -> {op.value!r}"
            if narrow:
                room = max(columns - 17, 20)  # type: ignore[operator]
                if len(stack) > room:
                    stack = "…" + stack[-(room - 1):]
                line = f"{head} {actor:<10} {op.op}{value}  [{msr_str(op.msr)}]"
                yield from textwrap.wrap(line, columns, subsequent_indent=" " * 19, break_on_hyphens=False) or [line]  # type: ignore[arg-type]
                yield f"{'':16} {stack}"
                continue
            if len(stack) > width:
                stack = "…" + stack[-(width - 1):]
            yield f"{head} {actor:<10} {stack:<{width}}  {op.op}{value}  [{msr_str(op.msr)}]"
        if after is not None:
            for extra in after(rec.index + 1):
                yield f"        {extra}"
        if viol_step is not None and rec.index == viol_step - 1:
            yield f"      ^^^ {ex.violation.kind} {ex.violation.name}: {ex.violation.message}"  # type: ignore[union-attr]
