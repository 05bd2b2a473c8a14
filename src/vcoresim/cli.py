"""Command line: ``vcoresim list | check | replay | simulate``.

Exit codes: 0 no violation within the bounds (or, for several scenarios,
every verdict as expected), 1 violation found (or an unexpected verdict),
2 bad input, 3 budget ran out before the bounds were covered.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from vcoresim.check.driver import STRATEGIES, CheckResult, check, replay
from vcoresim.check.trace import TraceError
from vcoresim.engine.strategies.base import Bounds, Stats
from vcoresim.scenarios.registry import Scenario, ScenarioError, builtin_scenarios, get_scenario, program_for

# Off a terminal (CI logs, pipes) keep tables readable rather than 80 columns wide.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(msg: str) -> NoReturn:
    """Bad input: one line on stderr, exit 2."""
    err.print(f"vcoresim: error: {msg}", markup=False)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vcoresim")
def main() -> None:
    """An executable, checkable model of KVM on IBM POWER (Book3S HV)."""


# ----------------------------------------------------------------------- list
@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def list_cmd(as_json: bool) -> None:
    """Show the built-in scenarios, patches, kernel presets and invariants."""
    from vcoresim import catalog

    doc = catalog.describe(builtin_scenarios())
    if as_json:
        click.echo(json.dumps(doc, indent=1))
        return
    t = Table(title="Scenarios", title_justify="left")
    for col in ("name", "kind", "expected", "strategy", "description"):
        t.add_column(col)
    for s in doc["scenarios"]:
        t.add_row(s["name"], s["kind"], s["expected"] or "-", s["strategy"], s["description"])
    out.print(t)
    for section, cols in (("patches", ("name", "seed", "default", "description")), ("presets", ("name", "patches", "description")), ("invariants", ("name", "kind", "description"))):
        if not doc[section]:
            continue
        t = Table(title=section.capitalize(), title_justify="left")
        for col in cols:
            t.add_column(col)
        for row in doc[section]:
            t.add_row(*[", ".join(row[c]) if isinstance(row[c], list) else str(row[c]) for c in cols])
        out.print(t)


# ---------------------------------------------------------------------- check
def _parse_patches(values: tuple[str, ...]) -> dict[str, bool]:
    patches: dict[str, bool] = {}
    for v in values:
        name, sep, state = v.partition("=")
        if not sep or state not in ("on", "off") or not name:
            fail(f"--patch: expected NAME=on|off, got {v!r}")
        patches[name] = state == "on"
    return patches


def _progress_printer(enabled: bool, label: str) -> tuple[Any, Any]:
    if not enabled:
        return None, None
    prog = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TextColumn("{task.fields[info]}"), TimeElapsedColumn(), console=err, transient=True)
    task = prog.add_task(label, info="")

    def update(stats: Stats) -> None:
        prog.update(task, info=f"{stats.executions} executions, {stats.states} states, {stats.steps} steps")

    return prog, update


@main.command("check")
@click.argument("scenarios", nargs=-1)
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None, help="Exploration strategy (default: the scenario's, usually exhaustive DPOR).")
@click.option("--seed", type=int, default=None, help="Seed for random and pct (default: the scenario's).")
@click.option("--max-steps", type=click.IntRange(1), default=None, help="Steps per execution (a bound).")
@click.option("--max-preemptions", type=click.IntRange(0), default=None, help="Preemptions per execution (a bound).")
@click.option("--max-executions", type=click.IntRange(1), default=None, help="Executions (a budget; for random/pct, the sample size).")
@click.option("--max-seconds", type=click.FloatRange(0, min_open=True), default=None, help="Wall-clock budget (makes results timing-dependent).")
@click.option("--pct-depth", type=click.IntRange(1), default=3, show_default=True, help="PCT bug depth d.")
@click.option("--cache/--no-cache", default=False, help="State caching by fingerprint (exhaustive strategies).")
@click.option("--kernel", "kernel", default=None, help="Kernel release preset (overrides the scenario's kernel).")
@click.option("--patch", "patches", multiple=True, help="NAME=on|off, repeatable (overrides the scenario's kernel).")
@click.option("--trace-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Where to write the counterexample trace.")
@click.option("--no-shrink", is_flag=True, help="Write the counterexample as found, unshrunk.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object (a list for several scenarios).")
@click.option("--reproducible", is_flag=True, help="Leave wall-clock figures out of the output, so reruns are byte-identical.")
@click.option("--quiet", is_flag=True, help="No progress display.")
# --- issue 8: parallel and resumable runs
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Split exhaustive search across N processes (same verdict and coverage).")
@click.option("--checkpoint", "checkpoint_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Where to write the checkpoint if a budget or Ctrl-C ends the search early (default checkpoints/<scenario>.checkpoint.json).")
@click.option("--resume", "resume_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Continue the search saved in a checkpoint file.")
@click.option("--ray", "ray_address", default=None, metavar="auto|ADDRESS", help="Run the exhaustive search on a Ray cluster (needs vcoresim[ray]).")
# --- end issue 8
@click.option("--memory-model", "memory_model", type=click.Choice(("sc", "tso", "pso", "power")), default="sc", show_default=True, help="Memory model (docs/memory-models.md).")
@click.option("--barrier-mutations", is_flag=True, help="Remove each barrier the scenario executes, one at a time, and report which removal breaks which invariant.")
def check_cmd(
    scenarios: tuple[str, ...],
    strategy: str | None,
    seed: int | None,
    max_steps: int | None,
    max_preemptions: int | None,
    max_executions: int | None,
    max_seconds: float | None,
    pct_depth: int,
    cache: bool,
    kernel: str | None,
    patches: tuple[str, ...],
    trace_out: Path | None,
    no_shrink: bool,
    as_json: bool,
    reproducible: bool,
    quiet: bool,
    workers: int,
    checkpoint_out: Path | None,
    resume_file: Path | None,
    ray_address: str | None,
    memory_model: str,
    barrier_mutations: bool,
) -> None:
    """Explore interleavings of SCENARIOS (default: every built-in scenario)."""
    reproducible = reproducible or os.environ.get("VCORESIM_REPRODUCIBLE") == "1"
    # --- issue 8: parallel and resumable runs
    if workers > 1 and cache:
        fail("--workers: the state cache runs in one process; drop --cache or --workers")
    if ray_address is not None:
        if cache or workers > 1:
            fail("--ray: runs without --cache and --workers (the cluster's CPUs are the workers)")
        try:
            from vcoresim.check.ray_backend import RayUnavailable, connect

            connect(ray_address)
        except RayUnavailable as e:
            fail(str(e))
    if resume_file is not None:
        if scenarios or kernel or patches or strategy or seed is not None or max_steps or max_preemptions is not None:
            fail("--resume: the checkpoint fixes the scenario, strategy and bounds; give only budgets and output options")
        if workers > 1:
            fail("--workers: a checkpoint resumes in one process")
        _resume(resume_file, max_executions, max_seconds, checkpoint_out, trace_out, no_shrink, as_json, reproducible, quiet)
        return
    if checkpoint_out is not None and len(scenarios) != 1:
        fail("--checkpoint: give one scenario when naming the checkpoint file")
    # --- end issue 8
    overrides: dict[str, Any] = {}
    if kernel is not None:
        overrides["kernel"] = kernel
    if patches:
        overrides["patches"] = _parse_patches(patches)
    try:
        chosen = [get_scenario(n) for n in scenarios] if scenarios else list(builtin_scenarios().values())
        runs: list[tuple[Scenario, Any]] = [(sc, sc.make(overrides)) for sc in chosen]
    except ScenarioError as e:
        fail(str(e))
    if trace_out is not None and len(runs) > 1:
        fail("--trace-out: give one scenario when naming the trace file")
    runs = _with_memory_model(runs, memory_model)  # issue 7
    if barrier_mutations:
        _barrier_mutations(runs, strategy, seed, max_steps, max_preemptions, max_executions, max_seconds, as_json, reproducible, trace_out)
    results: list[CheckResult] = []
    show_progress = not quiet and not as_json and err.is_terminal
    for sc, program in runs:
        b = sc.bounds
        bounds = Bounds(
            max_steps=max_steps or b.max_steps,
            max_preemptions=max_preemptions if max_preemptions is not None else b.max_preemptions,
            max_executions=max_executions or b.max_executions,
            max_seconds=max_seconds or b.max_seconds,
        )
        expected = sc.expected if not overrides and memory_model == "sc" else None
        prog, update = _progress_printer(show_progress, sc.name)
        try:
            if prog is not None:
                prog.start()
            stop = _sigint_flag()
            res = check(
                program,
                strategy=strategy or sc.strategy,
                bounds=bounds,
                seed=seed if seed is not None else sc.seed,
                pct_depth=pct_depth,
                cache=cache,
                trace_out=trace_out,
                do_shrink=not no_shrink,
                expected=expected,
                progress=update,
                workers=workers,
                stop=stop,
                checkpoint_out=checkpoint_out or Path("checkpoints") / f"{program.name.replace('/', '-')}.checkpoint.json",
                ray=ray_address,
            )
        except ValueError as e:
            fail(str(e))
        finally:
            _restore_sigint()
            if prog is not None:
                prog.stop()
        results.append(res)
        if stop():
            break  # Ctrl-C: report what is done, skip the rest
    if as_json:
        docs = [r.as_dict(timing=not reproducible) for r in results]
        click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=1))
    elif len(results) == 1:
        _print_one(results[0], reproducible)
    else:
        _print_table(results, reproducible)
    if len(results) == 1:
        sys.exit(results[0].exit_code)
    sys.exit(0 if all(r.expected is None or r.verdict == r.expected for r in results) else 1)


# --- issue 8: parallel and resumable runs
_interrupted = [False]


def _sigint_flag() -> Any:
    """Ctrl-C asks the search to stop at the next execution (and write a checkpoint)."""
    import signal

    _interrupted[0] = False

    def handler(_sig: int, _frame: Any) -> None:
        if _interrupted[0]:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        _interrupted[0] = True
        err.print("vcoresim: interrupted: finishing the current execution, then writing a checkpoint (Ctrl-C again to abort)", markup=False)

    signal.signal(signal.SIGINT, handler)
    return lambda: _interrupted[0]


def _restore_sigint() -> None:
    import signal

    signal.signal(signal.SIGINT, signal.default_int_handler)


def _resume(path: Path, max_executions: int | None, max_seconds: float | None, checkpoint_out: Path | None, trace_out: Path | None, no_shrink: bool, as_json: bool, reproducible: bool, quiet: bool) -> None:
    from vcoresim.check.checkpoint import CheckpointError, load_checkpoint

    try:
        doc = load_checkpoint(path)
        program = program_for(doc["scenario"], doc["config"])
        b = doc["bounds"]
        bounds = Bounds(max_steps=b["max_steps"], max_preemptions=b["max_preemptions"], max_executions=max_executions, max_seconds=max_seconds)
        st = doc["strategy"]
    except (CheckpointError, ScenarioError) as e:
        fail(str(e))
    except (KeyError, TypeError) as e:
        fail(f"{path}: malformed checkpoint ({e})")
    prog, update = _progress_printer(not quiet and not as_json and err.is_terminal, doc["scenario"])
    try:
        if prog is not None:
            prog.start()
        res = check(
            program,
            strategy=st["name"],
            bounds=bounds,
            seed=st["seed"],
            pct_depth=st.get("pct_depth", 3),
            cache=st.get("cache", False),
            trace_out=trace_out,
            do_shrink=not no_shrink,
            progress=update,
            stop=_sigint_flag(),
            resume=doc["state"],
            checkpoint_out=checkpoint_out or path,
        )
    except ValueError as e:
        fail(str(e))
    finally:
        _restore_sigint()
        if prog is not None:
            prog.stop()
    if as_json:
        click.echo(json.dumps(res.as_dict(timing=not reproducible), indent=1))
    else:
        _print_one(res, reproducible)
    sys.exit(res.exit_code)


# --- end issue 8


def _fmt_stats(r: CheckResult, reproducible: bool) -> str:
    s = r.stats
    secs = "" if reproducible else f", {s.seconds:.2f}s"
    return f"{s.executions} executions, {s.states} states, {s.steps} steps{secs}"


def _print_one(r: CheckResult, reproducible: bool) -> None:
    colour = {"holds": "green", "violation": "red", "incomplete": "yellow"}[r.verdict]
    out.print(f"[bold]{r.scenario}[/]: [{colour}]{r.verdict}[/]" + (f" — {r.invariant}: {r.message}" if r.invariant else ""))
    b = r.bounds
    bounds = ", ".join(f"{k}={v}" for k, v in b.items() if v is not None)
    out.print(f"  strategy {r.strategy['name']} ({', '.join(f'{k}={v}' for k, v in r.strategy.items() if k != 'name')}); bounds: {bounds}", markup=False)
    out.print(f"  coverage {r.coverage}: {_fmt_stats(r, reproducible)}", markup=False)
    if r.checkpoint:
        out.print(f"  checkpoint: {r.checkpoint}; continue with: vcoresim check --resume {r.checkpoint}", markup=False)
    if r.trace:
        sh = r.shrink
        out.print(f"  trace: {r.trace} ({sh.get('steps_after')} steps, shrunk from {sh.get('steps_before')}); replay with: vcoresim replay {r.trace}", markup=False)


def _print_table(results: list[CheckResult], reproducible: bool) -> None:
    t = Table(title="vcoresim check", title_justify="left")
    for col in ("scenario", "expected", "verdict", "invariant", "coverage", "executions", "states", "steps", "seconds", "trace"):
        t.add_column(col, justify="right" if col in ("executions", "states", "steps", "seconds") else "left", no_wrap=col == "scenario", overflow="fold")
    for r in results:
        colour = {"holds": "green", "violation": "red", "incomplete": "yellow"}[r.verdict]
        ok = r.expected is None or r.verdict == r.expected
        t.add_row(
            r.scenario,
            r.expected or "-",
            f"[{colour}]{r.verdict}[/]" + ("" if ok else " [bold red](unexpected)[/]"),
            r.invariant or "-",
            r.coverage,
            str(r.stats.executions),
            str(r.stats.states),
            str(r.stats.steps),
            "-" if reproducible else f"{r.stats.seconds:.2f}",
            r.trace or "-",
        )
    out.print(t)
    bad = [r.scenario for r in results if r.expected is not None and r.verdict != r.expected]
    out.print("[green]every verdict as expected[/]" if not bad else f"[red]unexpected verdicts: {', '.join(bad)}[/]")


# ------------------------------------------------- memory models (issue 7)
def _with_memory_model(runs: list[tuple[Scenario, Any]], model: str) -> list[tuple[Scenario, Any]]:
    from vcoresim.engine.memory import with_memory_model

    return [(sc, with_memory_model(p, model)) for sc, p in runs]


#: Default wall-clock budget of each check of a barrier mutation run (--max-seconds overrides).
MUTATION_SECONDS = 60.0


def _barrier_mutations(
    runs: list[tuple[Scenario, Any]],
    strategy: str | None,
    seed: int | None,
    max_steps: int | None,
    max_preemptions: int | None,
    max_executions: int | None,
    max_seconds: float | None,
    as_json: bool,
    reproducible: bool,
    trace_out: Path | None,
) -> NoReturn:
    """``check --barrier-mutations``: one check per barrier site, that barrier removed."""
    from vcoresim.check.mutation import mutate_barriers

    if len(runs) != 1:
        fail("--barrier-mutations: give exactly one scenario")
    sc, program = runs[0]
    b = sc.bounds
    bounds = Bounds(
        max_steps=max_steps or b.max_steps,
        max_preemptions=max_preemptions if max_preemptions is not None else b.max_preemptions,
        max_executions=max_executions or b.max_executions,
        max_seconds=max_seconds or b.max_seconds or MUTATION_SECONDS,
    )
    trace_dir = trace_out.parent if trace_out is not None else Path("traces")
    report = mutate_barriers(program, strategy=strategy or sc.strategy, bounds=bounds, seed=seed if seed is not None else sc.seed, trace_dir=trace_dir)
    if as_json:
        click.echo(json.dumps(report.as_dict(timing=not reproducible), indent=1))
    else:
        t = Table(title=f"barrier mutations: {program.name} under {report.model}", title_justify="left")
        for col in ("site", "line", "verdict", "invariant", "coverage", "executions", "trace"):
            t.add_column(col, justify="right" if col in ("line", "executions") else "left", overflow="fold")
        rows = [("(none removed)", None, report.baseline), *((m.site.label, m.site.line, m.result) for m in report.mutants)]
        for label, line, r in rows:
            colour = {"holds": "green", "violation": "red", "incomplete": "yellow"}[r.verdict]
            t.add_row(label, "-" if line is None else str(line), f"[{colour}]{r.verdict}[/]", r.invariant or "-", r.coverage, str(r.stats.executions), r.trace or "-")
        out.print(t)
        out.print(f"{len(report.mutants)} barrier sites found in {report.discovery_executions} executions; removing {len(report.breaking)} of them breaks an invariant: {', '.join(m.site.label for m in report.breaking) or 'none'}", markup=False)
    sys.exit(1 if report.baseline.verdict == "violation" else 0)


# --------------------------------------------------------------------- replay
@main.command("replay")
@click.argument("trace_file", type=click.Path(path_type=Path))
@click.option("--quiet", is_flag=True, help="Only the verdict line.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write a self-contained HTML swimlane page.")
@click.option("--perfetto", "perfetto_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write a Chrome trace-event JSON timeline.")
def replay_cmd(trace_file: Path, quiet: bool, html_out: Path | None, perfetto_out: Path | None) -> None:
    """Re-execute TRACE_FILE and print one line per step with its call stack."""
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
        if html_out is not None:
            visual.write_html(res, html_out)
        if perfetto_out is not None:
            visual.write_perfetto_replay(res, perfetto_out)
    colour = "green" if res.reproduced else "red"
    out.print(f"[{colour}]{res.summary}[/]", markup=True)
    sys.exit(0 if res.reproduced else 1)


# --- issue 8: swarm
@main.command("swarm")
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
    duplicate counterexamples (same property, same shrunk schedule) are folded."""
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
        from vcoresim.check.ray_backend import RayUnavailable, swarm_ray

        try:
            results = swarm_ray(ray_address, jobs)
        except RayUnavailable as e:
            fail(str(e))
    else:
        results = swarm_local(jobs, workers)
    merged = merge(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for ce in merged.counterexamples:
        path = out_dir / f"{ce.scenario.replace('/', '-')}-{ce.key.split(':')[1]}.trace.json"
        path.write_text(json.dumps(ce.trace, indent=1))
        rows.append({"scenario": ce.scenario, "invariant": ce.invariant, "key": ce.key, "found_by_seeds": ce.seeds, "message": ce.message, "trace": str(path)})
    doc = {"runs": merged.runs, "clean_runs": merged.clean, "executions": merged.executions, "steps": merged.steps, "distinct_counterexamples": rows}
    if as_json:
        click.echo(json.dumps(doc, indent=1))
    else:
        out.print(f"swarm: {merged.runs} runs ({strategy}, {max_executions} executions each), {merged.executions} executions, {merged.clean} runs found nothing; {len(rows)} distinct counterexamples", markup=False)
        for r in rows:
            out.print(f"  {r['scenario']}: {r['invariant']} [{r['key']}] found by {len(r['found_by_seeds'])} seeds ({', '.join(map(str, r['found_by_seeds'][:8]))}{', ...' if len(r['found_by_seeds']) > 8 else ''}); trace {r['trace']}", markup=False)
    sys.exit(1 if rows else 0)


# --- end issue 8


from vcoresim.simulate.cli import simulate_cmd  # noqa: E402  (last: it uses this module's helpers)
main.add_command(simulate_cmd)
from vcoresim.simulate.study_cli import study_cmd  # noqa: E402
main.add_command(study_cmd)

# ---------------------------------------------------------------- litmus (issue 7)
from vcoresim.litmus.cli import litmus_cmd  # noqa: E402

main.add_command(litmus_cmd)

if __name__ == "__main__":  # pragma: no cover
    main()
