"""Tables that fit the terminal: names are never cut; columns are dropped, by
priority, until the rest fits (a description column wraps instead).

``vcoresim check``'s verdict table and ``vcoresim list`` use :func:`fit_table`;
both are tested at 80 columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from vcoresim.check.driver import CheckResult
from vcoresim.simulate.window import fmt_ns

#: Narrowest a wrapping column (a description) may get before other columns go.
MIN_WRAP = 24


@dataclass(frozen=True)
class Column:
    name: str
    #: Lower is kept first; columns with the same priority go together.
    priority: int
    justify: str = "left"
    #: Wraps to the room left (a description); otherwise never cut.
    wrap: bool = False
    #: A shorter header for narrow terminals.
    short: str | None = None


def _plain(cell: str | Text) -> str:
    return cell.plain if isinstance(cell, Text) else Text.from_markup(cell).plain


def fit_table(title: str, columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], width: int | None) -> Table:
    """A borderless table of ``rows`` with the columns that fit ``width`` (None: all)."""
    natural = []
    for k, col in enumerate(columns):
        cells = [max((len(line) for line in _plain(r[k]).splitlines()), default=0) for r in rows]
        natural.append(max([len(col.short or col.name), *cells]))
    keep = set(range(len(columns)))
    short = False

    def needed(cols: set[int], use_short: bool) -> int:
        total = 0
        for k in cols:
            c = columns[k]
            if c.wrap:
                total += MIN_WRAP
            else:
                w = natural[k] if use_short or c.short is None else max(natural[k], len(c.name))
                total += w
        return total + 2 * max(len(cols) - 1, 0)  # two spaces between columns

    if width is not None:
        if needed(keep, False) > width:
            short = True
        for prio in sorted({c.priority for c in columns}, reverse=True):
            if needed(keep, short) <= width:
                break
            drop = {k for k, c in enumerate(columns) if c.priority == prio}
            if drop != keep:
                keep -= drop
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), collapse_padding=True, show_edge=False)
    for k, col in enumerate(columns):
        if k not in keep:
            continue
        header = col.short if short and col.short else col.name
        if col.wrap:
            t.add_column(header, justify=col.justify, overflow="fold", ratio=1, min_width=MIN_WRAP)  # type: ignore[arg-type]
        else:
            t.add_column(header, justify=col.justify, no_wrap=True, min_width=max(natural[k], len(header)))  # type: ignore[arg-type]
    for r in rows:
        t.add_row(*[r[k] for k in range(len(columns)) if k in keep])
    return t


CHECK_COLUMNS = (
    Column("scenario", 0),
    Column("verdict", 0),
    Column("invariant", 1),
    Column("stall needed", 8, short="stall"),
    Column("executions", 2, "right", short="execs"),
    Column("seconds", 3, "right", short="s"),
    Column("expected", 4),
    Column("coverage", 5),
    Column("states", 6, "right"),
    Column("steps", 6, "right"),
    Column("trace", 7),
)


def worst_stall(window: dict[str, Any] | None) -> str:
    """A timing window in a table cell: the longest stall a thread needs, or none."""
    if window is None:
        return "-"
    if window.get("note"):
        return "n/a"
    stalls = [n for n in window.get("needs") or [] if n["kind"] == "stall"]
    faults = [n for n in window.get("needs") or [] if n["kind"] == "fault"]
    if not stalls:
        return f"fault {fmt_ns(max(n['ns'] for n in faults))}" if faults else "none"
    worst = max(stalls, key=lambda n: n["ns"])
    return f"{worst['actor']} {fmt_ns(worst['ns'])}"


def check_table(results: Sequence[CheckResult], reproducible: bool, width: int | None) -> Table:
    """``vcoresim check``'s table of several verdicts, fitted to ``width``.

    A verdict that contradicts the scenario's expectation is marked ``!``, an
    inconclusive one that cannot decide it ``?`` (both listed under the table)."""
    from vcoresim.report.verdict import COLOURS

    rows = []
    for r in results:
        colour = COLOURS[r.verdict]
        mark = "!" if r.expectation_met is False else "?" if r.expectation_met is None else ""
        rows.append(
            [
                r.scenario,
                f"[{colour}]{r.verdict}[/]" + (f"[bold red]{mark}[/]" if mark else ""),
                r.invariant or "-",
                worst_stall(r.window),
                f"{r.stats.executions:,}",
                "-" if reproducible else f"{r.stats.seconds:.2f}",
                r.expected or "-",
                r.coverage,
                f"{r.stats.states:,}",
                f"{r.stats.steps:,}",
                r.trace or "-",
            ]
        )
    return fit_table("vcoresim check", CHECK_COLUMNS, rows, width)


MUTATION_COLUMNS = (
    Column("mutation", 0),
    Column("site", 0),
    Column("result", 0),
    Column("caught by", 1),
    Column("executions", 2, "right", short="execs"),
    Column("file", 3),
    Column("seconds", 4, "right", short="s"),
    Column("operation", 5, wrap=True),
    Column("trace", 6),
)

#: Rich colour of each mutant status.
STATUS_COLOURS = {"killed": "green", "crashed": "green", "survived": "red", "equivalent": "dim"}


def mutation_table(run: Any, reproducible: bool, width: int | None) -> Table:
    """``check --mutate``'s table: one row per mutant (``check.mutation.MutationRun``).
    ``survived?``: nothing caught it, but its check did not cover the bounded
    space (a budget ran out, or executions were cut at max_steps)."""
    rows = []
    for o in run.outcomes:
        r = o.result
        result = o.status
        if o.status == "survived" and r is not None and r.verdict != "holds":
            result += "?"  # within the budget only (bounded, sampled or incomplete)
        caught = o.caught_by or "-"
        rows.append(
            [
                o.mutant.kind,
                f"{o.mutant.site.name}:{o.mutant.site.line}",
                f"[{STATUS_COLOURS.get(o.status, 'white')}]{result}[/]",
                caught,
                f"{r.stats.executions:,}" if r is not None else "-",
                o.mutant.site.file,
                "-" if reproducible else f"{o.seconds:.2f}",
                o.mutant.what,
                (r.trace if r is not None and r.trace else "-"),
            ]
        )
    return fit_table(f"mutants of {run.scenario} under {run.model}", MUTATION_COLUMNS, rows, width)
