"""``vcoresim replay TRACE``: re-execute a counterexample, one line per step;
``--states`` adds what each step changed and the state at the end; ``--json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from vcoresim.check.trace import TraceError, steps_as_json
from vcoresim.cli.common import INTERRUPT, fail, out, output_path, say
from vcoresim.errors import InputError
from vcoresim.scenarios.registry import ScenarioError, program_for


@click.command("replay")
@click.argument("trace_file", type=click.Path(path_type=Path))
@click.option("--quiet", is_flag=True, help="Only the verdict line.")
@click.option("--states", is_flag=True, help="After each step, the shared locations it changed (old -> new); at the end, the whole state, grouped by structure.")
@click.option("--json", "as_json", is_flag=True, help="Print the replay as one JSON object: every step with its operations and changes, the state at the end.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write a self-contained HTML swimlane page.")
@click.option("--perfetto", "perfetto_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write a Chrome trace-event JSON timeline.")
def replay_cmd(trace_file: Path, quiet: bool, states: bool, as_json: bool, html_out: Path | None, perfetto_out: Path | None) -> None:
    """Re-execute TRACE_FILE and print one line per step with its call stack."""
    output_path(html_out, "--html")
    output_path(perfetto_out, "--perfetto")
    from vcoresim.check.states import change_text, state_text, trace_states

    try:
        res = _replay(trace_file)
    except (TraceError, ScenarioError) as e:
        fail(str(e))
    ex = res.execution
    timed = res.trace.strategy.get("name") == "simulate"
    ts = trace_states(ex.program, ex.schedule) if (states or as_json or html_out is not None) and not timed else None
    if timed and states:
        fail("--states: a timed run's trace replays by simulating again; its states are not available")
    if as_json:
        v = ex.violation
        per_step = {s.step: s.as_dict() for s in ts.steps} if ts is not None else {}
        state = ts.as_dict() if ts is not None else {"final": None, "store_buffers": {}}
        steps = [{**s, "changes": per_step.get(s["i"], {}).get("changes", {}), "modes": per_step.get(s["i"], {}).get("modes", {})} for s in steps_as_json(ex)]
        doc = {
            "trace": str(trace_file),
            "scenario": res.trace.scenario,
            "config": res.trace.config,
            "reproduced": res.reproduced,
            "summary": res.summary,
            "violation": v.as_dict() if v is not None else None,
            "steps": steps,
            "state": state["final"],
            "threads": ts.threads if ts is not None else None,
            "store_buffers": state["store_buffers"],
        }
        click.echo(json.dumps(doc, indent=1))
    elif not quiet:
        from vcoresim.report.text import format_steps, header

        for line in header(res.trace.scenario, res.trace.config):
            say(line, hang=2)
        after = None
        if ts is not None:
            changes = {s.step: change_text(s) for s in ts.steps}

            def after(step: int) -> list[str]:
                return ["changed: " + "; ".join(changes[step])] if changes.get(step) else []

        for line in format_steps(ex, after=after, columns=out.width):
            stripped = line.lstrip(" ")
            if len(line) > (out.width or 80) and not line[:5].strip().isdigit():
                say(stripped, indent=len(line) - len(stripped), hang=2 if stripped.startswith("changed: ") else 4)
            else:
                click.echo(line)
        if ts is not None:
            say("state at the violation:" if ex.violation is not None else "state at the end:")
            for line in state_text(ts):
                say(line, indent=2, hang=4)
    if html_out is not None or perfetto_out is not None:
        try:
            from vcoresim.report import visual
        except ImportError:
            fail("--html/--perfetto: the visual reports are not available in this build")
        try:
            with INTERRUPT.shield():
                if html_out is not None:
                    visual.write_html(res, html_out, ts)
                if perfetto_out is not None:
                    visual.write_perfetto_replay(res, perfetto_out)
        except InputError as e:
            fail(str(e))
    if not as_json:
        say(res.summary, hang=2, style="green" if res.reproduced else "red")
    sys.exit(0 if res.reproduced else 1)



def _replay(path: Path) -> Any:
    from vcoresim.simulate.trace import replay_any

    return replay_any(path, program_for)
