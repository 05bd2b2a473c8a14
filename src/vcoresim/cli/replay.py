"""``vcoresim replay TRACE``: re-execute a counterexample, one line per step."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from vcoresim.check.driver import replay
from vcoresim.check.trace import TraceError
from vcoresim.cli.common import INTERRUPT, fail, out, output_path
from vcoresim.errors import InputError
from vcoresim.scenarios.registry import ScenarioError, program_for


@click.command("replay")
@click.argument("trace_file", type=click.Path(path_type=Path))
@click.option("--quiet", is_flag=True, help="Only the verdict line.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write a self-contained HTML swimlane page.")
@click.option("--perfetto", "perfetto_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write a Chrome trace-event JSON timeline.")
def replay_cmd(trace_file: Path, quiet: bool, html_out: Path | None, perfetto_out: Path | None) -> None:
    """Re-execute TRACE_FILE and print one line per step with its call stack."""
    output_path(html_out, "--html")
    output_path(perfetto_out, "--perfetto")
    try:
        res = replay(trace_file, program_for)
    except (TraceError, ScenarioError) as e:
        fail(str(e))
    if not quiet:
        from vcoresim.report.text import format_steps

        for line in format_steps(res.execution):
            click.echo(line)
    if html_out is not None or perfetto_out is not None:
        try:
            from vcoresim.report import visual
        except ImportError:
            fail("--html/--perfetto: the visual reports are not available in this build")
        try:
            with INTERRUPT.shield():
                if html_out is not None:
                    visual.write_html(res, html_out)
                if perfetto_out is not None:
                    visual.write_perfetto_replay(res, perfetto_out)
        except InputError as e:
            fail(str(e))
    colour = "green" if res.reproduced else "red"
    out.print(f"[{colour}]{res.summary}[/]", markup=True)
    sys.exit(0 if res.reproduced else 1)
