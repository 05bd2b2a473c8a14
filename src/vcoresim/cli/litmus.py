"""``vcoresim litmus FILE...``: run C litmus tests under each memory model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from vcoresim.cli.common import INTERRUPT, ProgressDisplay, err, fail, out
from vcoresim.engine.memory import MODELS
from vcoresim.engine.runtime import ModelError
from vcoresim.litmus.parser import Litmus, LitmusError, parse_file
from vcoresim.litmus.runner import Outcome, expected_for, run, shipped


@click.command("litmus")
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@click.option("--memory-model", "models", multiple=True, type=click.Choice(MODELS), help="Model to run (repeatable; default: all of sc, tso, pso, power).")
@click.option("--max-seconds", type=click.FloatRange(0, min_open=True), default=None, help="Budget per test and model (an exhausted budget gives Unknown).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list of results.")
@click.option("--reproducible", is_flag=True, help="Leave wall-clock seconds out of the output.")
def litmus_cmd(files: tuple[Path, ...], models: tuple[str, ...], max_seconds: float | None, as_json: bool, reproducible: bool) -> None:
    """Run C litmus tests (herd7's C dialect as the kernel's tests use it;
    default: the shipped ones) and report Never / Sometimes / Always per memory
    model, checked against each file's expectations.

    \b
    Language: READ_ONCE/WRITE_ONCE, smp_load_acquire/smp_store_release,
    rcu_dereference/rcu_assign_pointer, the smp_* fences, xchg*/cmpxchg* and
    atomic_* (with _relaxed/_acquire/_release), spin_lock/unlock/trylock/
    is_locked, if/else, pointers in registers and memory, an initial state,
    'locations', 'filter', and exists/~exists/forall (/\\, \\/, ~).
    Refused with one line naming the construct and line: synchronize_rcu,
    SRCU, loops, arrays, plain C accesses.
    Expectations: a comment line 'Expected: sc=Never tso=Sometimes ...'; a
    'Result:' line (the LKMM's answer) is compared with the power model.
    Exit 0 when every result matches, 1 on a mismatch (or Unknown), 2 on a bad file.
    """
    paths = list(files) or shipped()
    tests: list[Litmus] = []
    for p in paths:
        try:
            tests.append(parse_file(p))
        except LitmusError as e:
            fail(str(e))
    chosen = list(models) or list(MODELS)
    rows: list[tuple[Litmus, list[Outcome]]] = []
    bad = 0
    not_run: list[Litmus] = []
    display = ProgressDisplay(not as_json and err.is_terminal)
    for k, lit in enumerate(tests, start=1):
        if INTERRUPT():
            not_run.append(lit)
            continue
        display.start(lit.name, k, len(tests))
        outcomes = []
        for m in chosen:
            display.phase(f"memory model {m}")
            try:
                outcomes.append(run(lit, m, max_seconds=max_seconds, stop=INTERRUPT))
            except ModelError as e:  # e.g. a load through a register that holds no address
                display.stop()
                fail(f"{lit.path}: {e}")
        if INTERRUPT() and any(o.verdict == "Unknown" for o in outcomes):
            not_run.append(lit)  # cut short: no verdict to report
            continue
        for o in outcomes:
            want = expected_for(lit, o.model)
            if o.verdict == "Unknown" or (want is not None and want != o.verdict):
                bad += 1
        rows.append((lit, outcomes))
    display.stop()
    if as_json:
        doc = [
            {
                "test": lit.name,
                "file": lit.path,
                "exists": lit.cond.text,
                "result_line": lit.result,
                "models": {
                    o.model: {
                        "verdict": o.verdict,
                        "expected": expected_for(lit, o.model),
                        "executions": o.executions,
                        "states": o.states,
                        "seconds": None if reproducible else round(o.seconds, 3),
                        "witness": o.witness,
                    }
                    for o in outs
                },
            }
            for lit, outs in rows
        ]
        if not_run:
            doc.append({"not_run": [lit.name for lit in not_run], "interrupted": True})  # type: ignore[dict-item]
        click.echo(json.dumps(doc, indent=1))
    else:
        t = Table(title="vcoresim litmus", title_justify="left")
        t.add_column("test", no_wrap=True)
        for m in chosen:
            t.add_column(m)
        t.add_column("executions", justify="right")
        if not reproducible:
            t.add_column("seconds", justify="right")
        for lit, outs in rows:
            cells = []
            for o in outs:
                want = expected_for(lit, o.model)
                ok = o.verdict != "Unknown" and (want is None or want == o.verdict)
                cell = o.verdict if ok else f"[bold red]{o.verdict} (expected {want or 'a verdict'})[/]"
                cells.append(cell if want is not None or not ok else f"{o.verdict} [dim](no expectation)[/]")
            extra = [str(sum(o.executions for o in outs))]
            if not reproducible:
                extra.append(f"{sum(o.seconds for o in outs):.2f}")
            t.add_row(lit.name, *cells, *extra)
        for lit in not_run:
            t.add_row(lit.name, *(["not run"] * len(chosen)), "-", *([] if reproducible else ["-"]))
        out.print(t)
        out.print("[green]every result as expected[/]" if not bad else f"[red]{bad} result(s) differ from the expectation[/]")
        if not_run:
            out.print(f"interrupted: {len(not_run)} test(s) not run", markup=False)
    sys.exit(1 if bad else 3 if not_run else 0)
