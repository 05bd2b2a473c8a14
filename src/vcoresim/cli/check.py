"""``vcoresim check``: explore scenarios, print verdicts, write counterexamples;
``--resume`` a checkpoint; ``--barrier-mutations``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.table import Table

from vcoresim.check.driver import STRATEGIES, CheckResult, check, not_run
from vcoresim.cli.common import INTERRUPT, err, fail, out, output_path, parse_patches, progress_printer
from vcoresim.engine.strategies.base import Bounds
from vcoresim.errors import InputError
from vcoresim.scenarios.registry import Scenario, ScenarioError, builtin_scenarios, get_scenario, program_for


@click.command("check")
@click.argument("scenarios", nargs=-1)
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None, help="Exploration strategy (default: the scenario's, usually exhaustive DPOR).")
@click.option("--seed", type=int, default=None, help="Seed for random and pct (default: the scenario's).")
@click.option("--max-steps", type=click.IntRange(1), default=None, help="Steps per execution (a bound).")
@click.option("--max-preemptions", type=click.IntRange(0), default=None, help="Preemptions per execution (a bound).")
@click.option("--max-executions", type=click.IntRange(1), default=None, help="Executions (a budget; for random/pct, the sample size).")
@click.option("--max-seconds", type=click.FloatRange(0, min_open=True), default=None, help="Wall-clock budget (makes results timing-dependent).")
@click.option("--pct-depth", type=click.IntRange(1), default=3, show_default=True, help="PCT bug depth d.")
@click.option("--cache/--no-cache", default=None, help="State cache and stateful DPOR (default: on for searches without a preemption bound).")
@click.option("--kernel", "kernel", default=None, help="Kernel release preset (overrides the scenario's kernel).")
@click.option("--patch", "patches", multiple=True, help="NAME=on|off, repeatable (overrides the scenario's kernel).")
@click.option("--trace-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Where to write the counterexample trace.")
@click.option("--no-shrink", is_flag=True, help="Write the counterexample as found, unshrunk.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object (a list for several scenarios).")
@click.option("--reproducible", is_flag=True, help="Leave wall-clock figures out of the output, so reruns are byte-identical.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Split exhaustive search across N processes (same verdict and coverage; default 1).")
@click.option("--checkpoint", "checkpoint_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Where to write the checkpoint if a budget or Ctrl-C ends the search early (default checkpoints/<scenario>.<memory model>.<digest>.checkpoint.json).")
@click.option("--resume", "resume_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Continue the search saved in a checkpoint file.")
@click.option("--ray", "ray_address", default=None, metavar="auto|ADDRESS", help="Run the exhaustive search on a Ray cluster (needs vcoresim[ray]).")
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
    cache: bool | None,
    kernel: str | None,
    patches: tuple[str, ...],
    trace_out: Path | None,
    no_shrink: bool,
    as_json: bool,
    reproducible: bool,
    quiet: bool,
    workers: int | None,
    checkpoint_out: Path | None,
    resume_file: Path | None,
    ray_address: str | None,
    memory_model: str,
    barrier_mutations: bool,
) -> None:
    """Explore interleavings of SCENARIOS (default: every built-in scenario)."""
    reproducible = reproducible or os.environ.get("VCORESIM_REPRODUCIBLE") == "1"
    output_path(trace_out, "--trace-out")
    output_path(checkpoint_out, "--checkpoint")
    if resume_file is not None:
        if scenarios or kernel or patches or strategy or seed is not None or max_steps or max_preemptions is not None or barrier_mutations or memory_model != "sc":
            fail("--resume: the checkpoint fixes the scenario, strategy and bounds; give only budgets and output options")
        if ray_address is not None or cache:
            fail("--resume: the checkpoint fixes --cache; --ray cannot resume a checkpoint")
        _resume(resume_file, max_executions, max_seconds, checkpoint_out, trace_out, no_shrink, as_json, reproducible, quiet, workers)
        return
    workers = workers or 1
    if workers > 1 and cache:
        fail("--workers: the state cache runs in one process; drop --cache or --workers")
    if ray_address is not None:
        if cache or workers > 1:
            fail("--ray: runs without --cache and --workers (the cluster's CPUs are the workers)")
        _connect_ray(ray_address)
    if checkpoint_out is not None and len(scenarios) != 1:
        fail("--checkpoint: give one scenario when naming the checkpoint file")
    overrides: dict[str, Any] = {}
    if kernel is not None:
        overrides["kernel"] = kernel
    if patches:
        overrides["patches"] = parse_patches(patches)
    try:
        chosen = [get_scenario(n) for n in scenarios] if scenarios else list(builtin_scenarios().values())
        runs: list[tuple[Scenario, Any]] = [(sc, sc.make(overrides)) for sc in chosen]
    except ScenarioError as e:
        fail(str(e))
    if trace_out is not None and len(runs) > 1:
        fail("--trace-out: give one scenario when naming the trace file")
    runs = _with_memory_model(runs, memory_model)
    if barrier_mutations:
        _barrier_mutations(runs, strategy, seed, max_steps, max_preemptions, max_executions, max_seconds, as_json, reproducible, trace_out)
    results: list[CheckResult] = []
    show_progress = not quiet and not as_json and err.is_terminal
    stop = INTERRUPT
    for sc, program in runs:
        expected = sc.expected if not overrides and memory_model == "sc" else None
        if stop():
            results.append(not_run(program.name, program.config, expected))
            continue
        b = sc.bounds
        bounds = Bounds(
            max_steps=max_steps or b.max_steps,
            max_preemptions=max_preemptions if max_preemptions is not None else b.max_preemptions,
            max_executions=max_executions or b.max_executions,
            max_seconds=max_seconds or b.max_seconds,
        )
        prog, update = progress_printer(show_progress, sc.name)
        try:
            if prog is not None:
                prog.start()
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
                checkpoint_out=checkpoint_out,
                checkpoint_dir=Path("checkpoints"),
                ray=ray_address,
                shield=INTERRUPT.shield,
            )
        except ValueError as e:
            fail(str(e))
        finally:
            if prog is not None:
                prog.stop()
        results.append(res)
    with INTERRUPT.shield():
        if as_json:
            docs = [r.as_dict(timing=not reproducible) for r in results]
            click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=1))
        elif len(results) == 1:
            _print_one(results[0], reproducible)
        else:
            _print_table(results, reproducible)
    sys.exit(_exit_code(results))


def _unexpected(r: CheckResult) -> bool:
    """A verdict other than expected (an interrupted scenario has no verdict to compare)."""
    return not r.interrupted and r.expected is not None and r.verdict != r.expected


def _exit_code(results: list[CheckResult]) -> int:
    """One scenario: its verdict's code.  Several: 1 for an unexpected verdict, else
    3 if an interruption cut the run short (a scenario incomplete or not run), else 0."""
    if len(results) == 1:
        return results[0].exit_code
    if any(_unexpected(r) for r in results):
        return 1
    return 3 if any(r.interrupted for r in results) else 0


def _connect_ray(address: str) -> None:
    from vcoresim.check.ray_backend import RayUnavailable, connect

    try:
        connect(address, stop=INTERRUPT)
    except RayUnavailable as e:
        if not e.stuck:
            fail(str(e))
        err.print(f"vcoresim: error: {e}", markup=False)
        _hard_exit(2)
    except KeyboardInterrupt:  # Ctrl-C while ray.init is still trying in its thread
        err.print("vcoresim: interrupted while connecting to Ray", markup=False)
        _hard_exit(3)


def _hard_exit(code: int) -> NoReturn:
    """Exit without waiting for a Ray client stuck in a connection attempt (its threads
    and atexit hooks would hold the process)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _resume(
    path: Path,
    max_executions: int | None,
    max_seconds: float | None,
    checkpoint_out: Path | None,
    trace_out: Path | None,
    no_shrink: bool,
    as_json: bool,
    reproducible: bool,
    quiet: bool,
    workers: int | None,
) -> None:
    from vcoresim.check.checkpoint import CheckpointError, check_against, load_checkpoint

    try:
        doc = load_checkpoint(path)
        program = program_for(doc["scenario"], doc["config"])
        check_against(doc, program, path)
    except (CheckpointError, ScenarioError) as e:
        fail(str(e))
    b = doc["bounds"]
    st = doc["strategy"]
    search = doc["state"]["search"]
    parallel = isinstance(search, dict) and search.get("kind") == "parallel"
    if workers is not None and workers > 1 and not parallel and search is not None:
        fail("--workers: this checkpoint's search ran in one process; resume it without --workers")
    n_workers = workers or st.get("workers", 1)
    bounds = Bounds(max_steps=b["max_steps"], max_preemptions=b["max_preemptions"], max_executions=max_executions, max_seconds=max_seconds)
    prog, update = progress_printer(not quiet and not as_json and err.is_terminal, doc["scenario"])
    try:
        if prog is not None:
            prog.start()
        res = check(
            program,
            strategy=st["name"],
            bounds=bounds,
            seed=st["seed"],
            pct_depth=st.get("pct_depth", 3),
            cache=st.get("cache"),
            trace_out=trace_out,
            do_shrink=not no_shrink,
            progress=update,
            stop=INTERRUPT,
            resume=doc["state"],
            workers=n_workers,
            checkpoint_out=checkpoint_out or path,
            shield=INTERRUPT.shield,
        )
    except ValueError as e:
        fail(str(e))
    finally:
        if prog is not None:
            prog.stop()
    with INTERRUPT.shield():
        if as_json:
            click.echo(json.dumps(res.as_dict(timing=not reproducible), indent=1))
        else:
            _print_one(res, reproducible)
    sys.exit(res.exit_code)


def _fmt_stats(r: CheckResult, reproducible: bool) -> str:
    s = r.stats
    secs = "" if reproducible else f", {s.seconds:.2f}s"
    return f"{s.executions} executions, {s.states} states, {s.steps} steps{secs}"


COLOURS = {"holds": "green", "violation": "red", "incomplete": "yellow", "not run": "yellow"}


def _print_one(r: CheckResult, reproducible: bool) -> None:
    colour = COLOURS[r.verdict]
    out.print(f"[bold]{r.scenario}[/]: [{colour}]{r.verdict}[/]" + (f" — {r.invariant}: {r.message}" if r.invariant else ""))
    b = r.bounds
    bounds = ", ".join(f"{k}={v}" for k, v in b.items() if v is not None)
    out.print(f"  strategy {r.strategy['name']} ({', '.join(f'{k}={v}' for k, v in r.strategy.items() if k != 'name')}); bounds: {bounds}", markup=False)
    out.print(f"  coverage {r.coverage}: {_fmt_stats(r, reproducible)}", markup=False)
    if r.interrupted:
        out.print("  interrupted: the search stopped before covering its bounds", markup=False)
    if r.checkpoint:
        out.print(f"  checkpoint: {r.checkpoint}; continue with: vcoresim check --resume {r.checkpoint}", markup=False)
    if r.trace:
        sh = r.shrink
        stopped = f", shrinking stopped early ({sh['stopped']})" if sh.get("stopped") else ""
        out.print(f"  trace: {r.trace} ({sh.get('steps_after')} steps, shrunk from {sh.get('steps_before')}{stopped}); replay with: vcoresim replay {r.trace}", markup=False)


def _print_table(results: list[CheckResult], reproducible: bool) -> None:
    t = Table(title="vcoresim check", title_justify="left")
    for col in ("scenario", "expected", "verdict", "invariant", "coverage", "executions", "states", "steps", "seconds", "trace"):
        t.add_column(col, justify="right" if col in ("executions", "states", "steps", "seconds") else "left", no_wrap=col == "scenario", overflow="fold")
    for r in results:
        colour = COLOURS[r.verdict]
        ok = not _unexpected(r)
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
    bad = [r.scenario for r in results if _unexpected(r)]
    cut = [r.scenario for r in results if r.interrupted]
    if bad:
        out.print(f"[red]unexpected verdicts: {', '.join(bad)}[/]")
    if cut:
        out.print(f"[yellow]interrupted: {len(cut)} of {len(results)} scenarios not covered ({', '.join(cut)})[/]")
    if not bad and not cut:
        out.print("[green]every verdict as expected[/]")


# ------------------------------------------------------------ memory models
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
    report = mutate_barriers(program, strategy=strategy or sc.strategy, bounds=bounds, seed=seed if seed is not None else sc.seed, trace_dir=trace_dir, stop=INTERRUPT)
    if as_json:
        click.echo(json.dumps(report.as_dict(timing=not reproducible), indent=1))
    else:
        t = Table(title=f"barrier mutations: {program.name} under {report.model}", title_justify="left")
        for col in ("site", "line", "verdict", "invariant", "coverage", "executions", "trace"):
            t.add_column(col, justify="right" if col in ("line", "executions") else "left", overflow="fold")
        rows = [("(none removed)", None, report.baseline), *((m.site.label, m.site.line, m.result) for m in report.mutants)]
        for label, line, r in rows:
            colour = COLOURS[r.verdict]
            t.add_row(label, "-" if line is None else str(line), f"[{colour}]{r.verdict}[/]", r.invariant or "-", r.coverage, str(r.stats.executions), r.trace or "-")
        out.print(t)
        out.print(f"{len(report.mutants) + len(report.not_run)} barrier sites found in {report.discovery_executions} executions; removing {len(report.breaking)} of them breaks an invariant: {', '.join(m.site.label for m in report.breaking) or 'none'}", markup=False)
        if report.not_run:
            out.print(f"interrupted: {len(report.not_run)} sites not checked: {', '.join(s.label for s in report.not_run)}", markup=False)
    sys.exit(1 if report.baseline.verdict == "violation" else 3 if report.not_run or report.baseline.interrupted else 0)
