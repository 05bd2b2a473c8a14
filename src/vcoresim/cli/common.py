"""What every command shares: the consoles, one-line errors, option parsing, progress."""

from __future__ import annotations

import os
import sys
import time
from typing import Any, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from vcoresim.engine.strategies.base import Stats



def _width() -> int | None:
    """$COLUMNS when set; else the terminal's; off a terminal (CI logs, pipes) 160,
    so tables stay readable rather than 80 columns wide."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return int(cols)
    return None if sys.stdout.isatty() else 160


out = Console(highlight=False, soft_wrap=True, width=_width())
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


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


class ProgressDisplay:
    """The progress line of a long command, on stderr (transient):
    ``[k/N] item · phase · counts · rate · ETA``.

    ``start(item, k, n)`` begins an item (a scenario, a mutant, a run); the
    check driver calls ``phase(name, total)`` when a phase begins (random
    walks, DPOR at preemption bound k) and the instance itself with the
    phase's ``Stats``.  The ETA is the phase's when its size is known (a
    sample, an execution budget), else the remaining items' at the mean time
    per item so far."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.prog: Progress | None = None
        self.item = ""
        self.k: int | None = None
        self.n: int | None = None
        self.items_started = time.perf_counter()
        self.done_items = 0
        self.phase_name = ""
        self.total: int | None = None
        self.phase_start = time.perf_counter()
        self.note = ""
        if enabled:
            self.prog = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True)
            self.task = self.prog.add_task("", total=None)
            self.prog.start()

    def __enter__(self) -> ProgressDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.prog is not None:
            self.prog.stop()
            self.prog = None

    def start(self, item: str, k: int | None = None, n: int | None = None) -> None:
        if k is not None and k > 1:
            self.done_items = k - 1
        self.item, self.k, self.n = item, k, n
        self.phase_name, self.total, self.note = "", None, ""
        self.phase_start = time.perf_counter()
        self._show("")

    def phase(self, name: str, total: int | None = None) -> None:
        self.phase_name, self.total = name, total
        self.phase_start = time.perf_counter()
        self._show("")

    def __call__(self, stats: Stats) -> None:
        elapsed = max(time.perf_counter() - self.phase_start, 1e-6)
        rate = stats.executions / elapsed
        text = f"{stats.executions:,} executions, {stats.states:,} states · {rate:,.0f}/s"
        if self.total and rate > 0:
            text += f" · ETA {_clock(max(self.total - stats.executions, 0) / rate)}"
        self._show(text)

    def show(self, text: str) -> None:
        """A free-form status (counts of a command that has no ``Stats``)."""
        self._show(text)

    def _show(self, counts: str) -> None:
        if self.prog is None:
            return
        parts = []
        head = self.item
        if self.k is not None and self.n is not None:
            head = f"[{self.k}/{self.n}] {head}"
            if self.k > 1 and not self.total:
                per = (time.perf_counter() - self.items_started) / (self.k - 1)
                counts = (counts + " · " if counts else "") + f"all: ETA {_clock(per * (self.n - self.k + 1))}"
        parts.append(head)
        if self.phase_name:
            parts.append(self.phase_name)
        if counts:
            parts.append(counts)
        self.prog.update(self.task, description=escape(" · ".join(p for p in parts if p)))
