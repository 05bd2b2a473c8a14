"""What every command shares: the consoles, one-line errors, option parsing, progress."""

from __future__ import annotations

import sys
from typing import Any, NoReturn

from rich.console import Console

from vcoresim.engine.strategies.base import Stats

# Off a terminal (CI logs, pipes) keep tables readable rather than 80 columns wide.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(msg: str) -> NoReturn:
    """Bad input: one line on stderr, exit 2."""
    err.print(f"vcoresim: error: {msg}", markup=False)
    sys.exit(2)


def parse_patches(values: tuple[str, ...]) -> dict[str, bool]:
    patches: dict[str, bool] = {}
    for v in values:
        name, sep, state = v.partition("=")
        if not sep or state not in ("on", "off") or not name:
            fail(f"--patch: expected NAME=on|off, got {v!r}")
        patches[name] = state == "on"
    return patches


def progress_printer(enabled: bool, label: str) -> tuple[Any, Any]:
    if not enabled:
        return None, None
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    prog = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err, transient=True)
    task = prog.add_task(label, info="")

    def update(stats: Stats) -> None:
        prog.update(task, info=f"{stats.executions} executions, {stats.states} states, {stats.steps} steps")

    return prog, update
