"""What every command shares: the consoles, one-line errors, usage errors,
interruptions (Ctrl-C and SIGTERM), option parsing, progress.

Exit codes (README): 0 no violation within the bounds (several scenarios:
every verdict as expected), 1 a violation (or an unexpected verdict), 2 bad
input, 3 the run was cut short (a budget or an interruption) before the
bounds were covered, 4 an internal error (a bug in vcoresim: its traceback is
printed).  When a run is both interrupted and found a violation, 1 wins.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import textwrap
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Self

import click

from vcoresim.errors import InputError
from vcoresim.files import ensure_folder, one_line, show_path

if TYPE_CHECKING:  # the engine and rich load when a command prints, not for --help or --json
    from rich.console import Console
    from rich.progress import Progress

    from vcoresim.engine.strategies.base import Stats


def _width() -> int | None:
    """$COLUMNS when set; else the terminal's; off a terminal (CI logs, pipes) 160,
    so tables stay readable rather than 80 columns wide."""
    cols = os.environ.get("COLUMNS", "")
    if cols.isdigit() and int(cols) > 0:
        return int(cols)
    return None if sys.stdout.isatty() else 160


class _LazyConsole:
    """rich's ``Console``, made when first used: a command that prints only
    JSON (``check --json``) or one error line never imports rich (about 30 ms)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console(), name)

    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console


out: Console = _LazyConsole(highlight=False, emoji=False, soft_wrap=True, width=_width())  # type: ignore[assignment]
err: Console = _LazyConsole(stderr=True, highlight=False, emoji=False, soft_wrap=True)  # type: ignore[assignment]

EXIT_OK, EXIT_VIOLATION, EXIT_BAD_INPUT, EXIT_INCOMPLETE, EXIT_INTERNAL = 0, 1, 2, 3, 4


#: Longest error message after ``vcoresim: error: `` (the line stays under 400 characters).
MESSAGE_CHARS = 380


def say(text: str, indent: int = 0, hang: int = 4, style: str | None = None) -> None:
    """Print prose wrapped at the console's width, continuation lines indented
    ``indent + hang`` (so a label stays readable at 80 columns)."""
    width = out.width or 80
    lines = textwrap.wrap(text, width=max(width, 40), initial_indent=" " * indent, subsequent_indent=" " * (indent + hang), break_on_hyphens=False) or [""]
    for ln in lines:
        out.print(ln, markup=False, style=style)


def fail(msg: str) -> NoReturn:
    """Bad input: one printable line on stderr, exit 2."""
    err.print(f"vcoresim: error: {one_line(msg, MESSAGE_CHARS)}", markup=False, soft_wrap=True)
    sys.exit(EXIT_BAD_INPUT)


#: What ``--plot`` can write (matplotlib's formats vcoresim offers).
PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def output_path(path: Path | None, option: str) -> None:
    """Check before a long run that an output file's folder exists or can be made
    (and, for ``--plot``, that the file name says a picture format)."""
    if path is None:
        return
    if option == "--plot" and path.suffix.lower() not in PLOT_SUFFIXES:
        fail(f"--plot: {show_path(path)}: give a file name ending in {', '.join(PLOT_SUFFIXES)}")
    try:
        ensure_folder(path, option)
    except InputError as e:
        fail(str(e))


def parse_patches(values: tuple[str, ...]) -> dict[str, bool]:
    from vcoresim.files import excerpt

    patches: dict[str, bool] = {}
    for v in values:
        name, sep, state = v.partition("=")
        if not sep or state not in ("on", "off") or not name:
            fail(f"--patch: expected NAME=on|off, got {excerpt(v)}")
        patches[name] = state == "on"
    return patches


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def _real(console: Console) -> Console:
    """The rich ``Console`` behind ``out`` / ``err`` (what rich's own classes take)."""
    return console.console() if isinstance(console, _LazyConsole) else console


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
            from rich.progress import Progress, SpinnerColumn, TextColumn

            self.prog = Progress(SpinnerColumn(), TextColumn("{task.description}"), console=_real(err), transient=True)
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
        self.prog.update(self.head, description=_escape(head))
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
        self.prog.update(self.body, description=_escape(line))


# ------------------------------------------------------------ interruptions
class Interrupt:
    """Ctrl-C (SIGINT) and SIGTERM, for a whole command.

    The first one sets a flag (calling the object returns it: it is the
    ``stop`` callback every search, shrink and timed run polls) and the run
    winds down: it finishes the current execution, keeps every violation
    found with its trace, writes the checkpoint when asked, and exits 3 (1
    if a violation was found).  A second one raises ``KeyboardInterrupt``
    where the program is, to stop now: the command still writes what it has
    (a violation being shrunk is written as shrunk so far).  Inside
    :meth:`shield` (writing results) further signals are noted, not raised.
    """

    def __init__(self) -> None:
        self.count = 0
        self.name = ""
        self._shielded = 0
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.count > 0

    def install(self) -> None:
        self.count = 0
        self.name = ""
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handler)

    def uninstall(self) -> None:
        for sig, h in self._previous.items():
            signal.signal(sig, h)
        self._previous.clear()

    def _say(self, text: str) -> None:
        # Not through rich: a signal handler may run while the console holds its lock.
        try:
            os.write(2, f"vcoresim: {text}\n".encode())
        except OSError:
            pass

    def _handler(self, signum: int, _frame: Any) -> None:
        self.count += 1
        self.name = signal.Signals(signum).name
        if self.count == 1:
            self._say(f"interrupted ({self.name}): finishing the current execution, then writing what was found (Ctrl-C again to stop now)")
            return
        if self._shielded:
            self._say("writing what was found; it takes a moment")
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def shield(self) -> Iterator[None]:
        """Results being written: a signal now is noted, not raised."""
        self._shielded += 1
        try:
            yield
        finally:
            self._shielded -= 1


#: The command's interrupt handler (installed by ``Main.invoke``).
INTERRUPT = Interrupt()


# ------------------------------------------------------------- usage errors
_LONG_QUOTE = re.compile(r"""(['"])([^'"]{41,})\1""")


def _short_quotes(text: str) -> str:
    return _LONG_QUOTE.sub(lambda m: f"{m.group(1)}{m.group(2)[:37]}...{m.group(1)}", text)


def _param_name(p: click.Parameter | None, ctx: click.Context | None) -> str | None:
    if p is None:
        return None
    if isinstance(p, click.Option):
        return max(p.opts, key=len)
    return (p.human_readable_name or p.name or "ARGUMENT").upper()


def _decap(s: str) -> str:
    return s[:1].lower() + s[1:] if s[:2] != s[:2].upper() else s


def usage_line(e: click.UsageError) -> str:
    """A click usage error as ``<option or argument>: <message>``."""
    ctx = e.ctx
    where = ctx.command_path if ctx is not None else "vcoresim"
    if isinstance(e, click.NoSuchOption):
        hint = f" (did you mean {', '.join(sorted(e.possibilities))}?)" if e.possibilities else ""
        return f"{e.option_name}: no such option for '{where}'{hint}"
    if isinstance(e, click.BadOptionUsage):
        msg = re.sub(r"^[Oo]ption '[^']*' ", "", e.message)
        return f"{e.option_name}: {_decap(msg).rstrip('.')}"
    if isinstance(e, click.MissingParameter):
        name = _param_name(e.param, ctx) or "argument"
        kind = "option" if isinstance(e.param, click.Option) else "argument"
        return f"{name}: missing {kind} of '{where}'"
    if isinstance(e, click.BadParameter):
        name = (e.param_hint if isinstance(e.param_hint, str) else None) or _param_name(e.param, ctx) or where
        return f"{name}: {_decap(e.message).rstrip('.')}"
    msg = e.message.rstrip(".")
    m = re.match(r"No such command '(.*)'", msg, re.S)
    if m is not None:
        group = ctx.command if ctx is not None else None
        known = ", ".join(group.list_commands(ctx)) if isinstance(group, click.Group) and ctx is not None else ""
        return f"command {m.group(1)!r}: no such command" + (f" (commands: {known})" if known else "")
    m = re.match(r"Got unexpected extra arguments? \((.*)\)", msg, re.S)
    if m is not None:
        return f"{where}: unexpected extra argument {m.group(1)!r}"
    return f"{where}: {_decap(msg)}"


class Main(click.Group):
    """The ``vcoresim`` group: every usage mistake, bad input and interruption ends
    in one line and a documented exit code; an internal error prints its traceback
    and exits 4 (never 1, which means a violation)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        try:
            rv = super().main(args=args, prog_name=prog_name or "vcoresim", complete_var=complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:
            click.echo(e.ctx.get_help() if e.ctx is not None else "")
            rv = EXIT_OK
        except click.UsageError as e:
            err.print(f"vcoresim: error: {one_line(_short_quotes(usage_line(e)), MESSAGE_CHARS)}", markup=False, soft_wrap=True)
            rv = EXIT_BAD_INPUT
        except click.ClickException as e:
            err.print(f"vcoresim: error: {one_line(_short_quotes(e.format_message()), MESSAGE_CHARS)}", markup=False, soft_wrap=True)
            rv = EXIT_BAD_INPUT
        except InputError as e:
            err.print(f"vcoresim: error: {one_line(str(e), MESSAGE_CHARS)}", markup=False, soft_wrap=True)
            rv = EXIT_BAD_INPUT
        except (click.exceptions.Abort, KeyboardInterrupt):
            INTERRUPT._say("interrupted: stopped")
            rv = EXIT_INCOMPLETE
        except BrokenPipeError:
            _quiet_pipes()
            rv = EXIT_INCOMPLETE
        except SystemExit:
            raise
        except Exception as e:  # a bug: say so, show where, and do not exit 1 (a violation)
            traceback.print_exc()
            err.print(f"vcoresim: internal error (a bug in vcoresim; please report it with the traceback above): {one_line(f'{type(e).__name__}: {e}', 200)}", markup=False, soft_wrap=True)
            rv = EXIT_INTERNAL
        finally:
            INTERRUPT.uninstall()
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        INTERRUPT.install()
        return super().invoke(ctx)


def _quiet_pipes() -> None:
    """The reader of stdout went away: drop what is left, silently."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
