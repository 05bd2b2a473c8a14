"""One line per step: index, actor, call stack, operation, location and value."""

from __future__ import annotations

from collections.abc import Iterator

from vcoresim.engine.msr import msr_str
from vcoresim.engine.runtime import Execution


def format_steps(ex: Execution, width: int = 60) -> Iterator[str]:
    """Steps are numbered from 1; a violation is reported after the step that
    caused it (``Violation.step`` is that step's number; 0: the initial state)."""
    viol_step = ex.violation.step if ex.violation else None
    if viol_step == 0:
        yield f"      ^^^ {ex.violation.kind} {ex.violation.name} in the initial state: {ex.violation.message}"  # type: ignore[union-attr]
    for rec in ex.records:
        for k, op in enumerate(rec.ops):
            head = f"{rec.index + 1:5d}" if k == 0 else "     "
            actor = rec.actor if k == 0 else ""
            stack = " > ".join(op.stack) or "-"
            if len(stack) > width:
                stack = "…" + stack[-(width - 1):]
            value = "" if op.value is None or op.op.startswith("store") else f" -> {op.value!r}"
            yield f"{head} {actor:<10} {stack:<{width}}  {op.op}{value}  [{msr_str(op.msr)}]"
        if viol_step is not None and rec.index == viol_step - 1:
            yield f"      ^^^ {ex.violation.kind} {ex.violation.name}: {ex.violation.message}"  # type: ignore[union-attr]
