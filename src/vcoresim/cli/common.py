"""What every command shares: the consoles, one-line errors, option parsing, progress."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from typing import NoReturn, Self

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn

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


def say(text: str, indent: int = 0, hang: int = 4, style: str | None = None) -> None:
    """Print prose wrapped at the console's width, continuation lines indented
    ``indent + hang`` (so a label stays readable at 80 columns)."""
    width = out.width or 80
    lines = textwrap.wrap(text, width=max(width, 40), initial_indent=" " * indent, subsequent_indent=" " * (indent + hang), break_on_hyphens=False) or [""]
    for ln in lines:
        out.print(ln, markup=False, style=style)


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
    """The progress of a long command, on stderr (transient), in two lines:
    ``[k/N] item  (all: ETA)`` and ``phase · counts · rate · ETA``.

    ``start(item, k, n)`` begins an item (a scenario, a mutant, a run); the
    check driver calls ``phase(name, total)`` when a phase begins (random
    walks, DPOR at preemption bound k) and the instance itself with the
    phase's ``Stats``.  The phase's ETA is shown when its size is known (a
    sample, an execution budget); the items' from the mean time per item so
    far."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.prog: Progress | None = None
        self.item = ""
        self.k: int | None = None
        self.n: int | None = None
        self.items_started = time.perf_counter()
        self.phase_name = ""
        self.total: int | None = None
        self.phase_start = time.perf_counter()
        if enabled:
            self.prog = Progress(SpinnerColumn(), TextColumn("{task.description}"), console=err, transient=True)
            self.head = self.prog.add_task("", total=None)
            self.body = self.prog.add_task("", total=None)
            self.prog.start()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.prog is not None:
            self.prog.stop()
            self.prog = None

    def start(self, item: str, k: int | None = None, n: int | None = None) -> None:
        self.item, self.k, self.n = item, k, n
        self.phase_name, self.total = "", None
        self.phase_start = time.perf_counter()
        if self.prog is None:
            return
        head = f"[{k}/{n}] {item}" if k is not None and n is not None else item
        if k is not None and n is not None and k > 1:
            per = (time.perf_counter() - self.items_started) / (k - 1)
            head += f"  (all: ETA {_clock(per * (n - k + 1))})"
        self.prog.update(self.head, description=escape(head))
        self.prog.update(self.body, description="")

    def phase(self, name: str, total: int | None = None) -> None:
        self.phase_name, self.total = name, total
        self.phase_start = time.perf_counter()
        self.show("")

    def __call__(self, stats: Stats) -> None:
        elapsed = max(time.perf_counter() - self.phase_start, 1e-6)
        rate = stats.executions / elapsed
        text = f"{stats.executions:,}" + (f"/{self.total:,}" if self.total else "") + f" executions · {rate:,.0f}/s"
        if self.total and rate > 0:
            text += f" · ETA {_clock(max(self.total - stats.executions, 0) / rate)}"
        self.show(text)

    def show(self, text: str) -> None:
        """The second line: the phase and ``text`` (counts, rate, ETA)."""
        if self.prog is None:
            return
        line = " · ".join(p for p in (self.phase_name, text) if p)
        self.prog.update(self.body, description=escape(line))
