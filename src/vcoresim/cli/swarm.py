"""``vcoresim swarm``: many seeded runs, duplicate counterexamples folded."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from vcoresim.check.trace import safe_name
from vcoresim.cli.common import INTERRUPT, ProgressDisplay, err, fail, output_path, say
from vcoresim.engine.strategies.base import Bounds
from vcoresim.errors import InputError
from vcoresim.files import write_atomic
from vcoresim.scenarios.registry import ScenarioError, get_scenario


@click.command("swarm")
@click.argument("scenarios", nargs=-1, required=True)
@click.option("--runs", type=click.IntRange(1, 100_000), default=16, show_default=True, help="Seeds per scenario (seeds 0..runs-1).")
@click.option("--strategy", type=click.Choice(["random", "pct", "auto"]), default="random", show_default=True)
@click.option("--max-executions", type=click.IntRange(1), default=200, show_default=True, help="Executions per run.")
@click.option("--max-steps", type=click.IntRange(1), default=None, help="Steps per execution (default: the scenario's).")
@click.option("--workers", type=click.IntRange(1, 256), default=1, show_default=True, help="Local processes.")
@click.option("--ray", "ray_address", default=None, metavar="auto|ADDRESS", help="Run on a Ray cluster (needs vcoresim[ray]).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("traces/swarm"), show_default=True, help="Where the distinct counterexamples go.")
@click.option("--json", "as_json", is_flag=True)
def swarm_cmd(scenarios: tuple[str, ...], runs: int, strategy: str, max_executions: int, max_steps: int | None, workers: int, ray_address: str | None, out_dir: Path, as_json: bool) -> None:
    """Many seeded runs of SCENARIOS (variants count as scenarios), merged:
    counterexamples of the same race (same property, violated by a step running
    the same code) are folded, with the seeds that found them."""
    from vcoresim.check.swarm import merge, runs_for, swarm_local

    output_path(out_dir / "x.trace.json", "--out")
    try:
        chosen = [get_scenario(n) for n in scenarios]
        progs = [(sc, sc.make({})) for sc in chosen]
    except ScenarioError as e:
        fail(str(e))
    jobs: list[dict[str, Any]] = []
    for sc, p in progs:
        b = Bounds(max_steps=max_steps or sc.bounds.max_steps, max_preemptions=sc.bounds.max_preemptions, max_executions=max_executions)
        jobs += runs_for([(p.name, p.config)], range(runs), strategy, b)
    if ray_address is not None:
        from vcoresim.check.ray_backend import RayUnavailable
        from vcoresim.check.swarm import swarm_ray

        try:
            results = swarm_ray(ray_address, jobs, stop=INTERRUPT)
        except RayUnavailable as e:
            if not e.stuck:
                fail(str(e))
            err_exit(str(e), 2)
        except KeyboardInterrupt:
            err_exit("interrupted while connecting to Ray", 3)
    else:
        show = not as_json and err.is_terminal
        with ProgressDisplay(show) as display:
            found = [0]

            def done(k: int, r: dict[str, Any]) -> None:
                found[0] += r["trace"] is not None
                display.start(f"{r['scenario']} seed {r['seed']} done", k, len(jobs))
                display.show(f"{found[0]} of {k} runs found a violation")

            display.start(f"{len(jobs)} runs on {workers} process{'es' if workers > 1 else ''}", 0, len(jobs))
            results = swarm_local(jobs, workers, stop=INTERRUPT, done=done if show else None)
    interrupted = INTERRUPT() and len(results) < len(jobs)
    merged = merge(results)
    rows = []
    with INTERRUPT.shield():
        for ce in merged.counterexamples:
            path = out_dir / f"{safe_name(ce.scenario)}-{ce.key.split(':')[1]}.trace.json"
            try:
                write_atomic(path, json.dumps(ce.trace, indent=1), "--out")
            except InputError as e:
                fail(str(e))
            rows.append({"scenario": ce.scenario, "invariant": ce.invariant, "key": ce.key, "where": ce.where, "found_by_seeds": ce.seeds, "message": ce.message, "trace": str(path)})
    doc = {"runs": merged.runs, "clean_runs": merged.clean, "executions": merged.executions, "steps": merged.steps, "distinct_counterexamples": rows}
    if interrupted:
        doc["interrupted"] = True
        doc["runs_planned"] = len(jobs)
    if as_json:
        click.echo(json.dumps(doc, indent=1))
    else:
        say(f"swarm: {merged.runs} runs ({strategy}, {max_executions} executions each), {merged.executions:,} executions, {merged.clean} runs found nothing; {len(rows)} distinct {'race' if len(rows) == 1 else 'races'}", hang=2)
        for r in rows:
            seeds = ", ".join(map(str, r["found_by_seeds"][:8])) + (", ..." if len(r["found_by_seeds"]) > 8 else "")
            say(f"{r['scenario']}: {r['invariant']} at {r['where']} [{r['key']}], found by {len(r['found_by_seeds'])} seeds ({seeds}); trace {r['trace']}", indent=2, hang=4)
        if interrupted:
            say(f"interrupted: {merged.runs} of {len(jobs)} runs finished", hang=2)
    sys.exit(1 if rows else 3 if interrupted else 0)


def err_exit(msg: str, code: int) -> NoReturn:
    """One line, then exit without waiting for a Ray client stuck connecting."""
    import os

    print(f"vcoresim: {'error: ' if code == 2 else ''}{msg}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(code)
