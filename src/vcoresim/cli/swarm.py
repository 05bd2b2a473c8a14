"""``vcoresim swarm``: many seeded runs, duplicate counterexamples folded."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from vcoresim.cli.common import ProgressDisplay, err, fail, say
from vcoresim.engine.strategies.base import Bounds
from vcoresim.scenarios.registry import ScenarioError, get_scenario


@click.command("swarm")
@click.argument("scenarios", nargs=-1, required=True)
@click.option("--runs", type=click.IntRange(1), default=16, show_default=True, help="Seeds per scenario (seeds 0..runs-1).")
@click.option("--strategy", type=click.Choice(["random", "pct", "auto"]), default="random", show_default=True)
@click.option("--max-executions", type=click.IntRange(1), default=200, show_default=True, help="Executions per run.")
@click.option("--max-steps", type=click.IntRange(1), default=None, help="Steps per execution (default: the scenario's).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Local processes.")
@click.option("--ray", "ray_address", default=None, metavar="auto|ADDRESS", help="Run on a Ray cluster (needs vcoresim[ray]).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("traces/swarm"), show_default=True, help="Where the distinct counterexamples go.")
@click.option("--json", "as_json", is_flag=True)
def swarm_cmd(scenarios: tuple[str, ...], runs: int, strategy: str, max_executions: int, max_steps: int | None, workers: int, ray_address: str | None, out_dir: Path, as_json: bool) -> None:
    """Many seeded runs of SCENARIOS (variants count as scenarios), merged:
    counterexamples of the same race (same property, violated by a step running
    the same code) are folded, with the seeds that found them."""
    from vcoresim.check.swarm import merge, runs_for, swarm_local

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
            results = swarm_ray(ray_address, jobs)
        except RayUnavailable as e:
            fail(str(e))
    else:
        show = not as_json and err.is_terminal
        with ProgressDisplay(show) as display:
            found = [0]

            def done(k: int, r: dict[str, Any]) -> None:
                found[0] += r["trace"] is not None
                display.start(f"{r['scenario']} seed {r['seed']} done", k, len(jobs))
                display.show(f"{found[0]} of {k} runs found a violation")

            display.start(f"{len(jobs)} runs on {workers} process{'es' if workers > 1 else ''}", 0, len(jobs))
            results = swarm_local(jobs, workers, done if show else None)
    merged = merge(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for ce in merged.counterexamples:
        path = out_dir / f"{ce.scenario.replace('/', '-')}-{ce.key.split(':')[1]}.trace.json"
        path.write_text(json.dumps(ce.trace, indent=1))
        rows.append({"scenario": ce.scenario, "invariant": ce.invariant, "key": ce.key, "where": ce.where, "found_by_seeds": ce.seeds, "message": ce.message, "trace": str(path)})
    doc = {"runs": merged.runs, "clean_runs": merged.clean, "executions": merged.executions, "steps": merged.steps, "distinct_counterexamples": rows}
    if as_json:
        click.echo(json.dumps(doc, indent=1))
    else:
        say(f"swarm: {merged.runs} runs ({strategy}, {max_executions} executions each), {merged.executions:,} executions, {merged.clean} runs found nothing; {len(rows)} distinct {'race' if len(rows) == 1 else 'races'}", hang=2)
        for r in rows:
            seeds = ", ".join(map(str, r["found_by_seeds"][:8])) + (", ..." if len(r["found_by_seeds"]) > 8 else "")
            say(f"{r['scenario']}: {r['invariant']} at {r['where']} [{r['key']}], found by {len(r['found_by_seeds'])} seeds ({seeds}); trace {r['trace']}", indent=2, hang=4)
    sys.exit(1 if rows else 0)
