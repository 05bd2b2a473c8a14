"""``vcoresim check``: explore scenarios, print verdicts, write counterexamples;
``--resume`` a checkpoint; ``--barrier-mutations``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from vcoresim.check.driver import STRATEGIES, CheckResult, check, not_run
from vcoresim.check.mutation import MUTANT_EXECUTIONS
from vcoresim.cli.common import INTERRUPT, ProgressDisplay, err, fail, out, output_path, parse_patches, say
from vcoresim.engine.mutants import KINDS as MUTATION_KINDS
from vcoresim.engine.strategies.base import Bounds
from vcoresim.errors import did_you_mean
from vcoresim.scenarios.registry import Scenario, ScenarioError, builtin_scenarios, get_scenario, program_for


@click.command("check")
@click.argument("scenarios", nargs=-1)
@click.option("--strategy", type=click.Choice(STRATEGIES), default=None, help="Exploration strategy (default: the scenario's; auto for the built-in scenarios: random walks, then DPOR at preemption bounds 0, 1, ...).")
@click.option("--seed", type=int, default=None, help="Seed for random and pct (default: the scenario's).")
@click.option("--max-steps", type=click.IntRange(1), default=None, help="Steps per execution (a bound).")
@click.option("--max-preemptions", type=click.IntRange(0), default=None, help="Preemptions per execution (a bound).")
@click.option("--max-executions", type=click.IntRange(1), default=None, help="Executions (a budget; for random/pct, the sample size).")
@click.option("--max-seconds", type=click.FloatRange(0, min_open=True), default=None, help="Wall-clock budget (makes results timing-dependent).")
@click.option("--pct-depth", type=click.IntRange(1), default=3, show_default=True, help="PCT bug depth d.")
@click.option("--cache/--no-cache", default=None, help="State cache and stateful DPOR (default: on for searches without a preemption bound).")
@click.option("--exact-bound", is_flag=True, default=False, help="Under a preemption bound, DPOR with bounded partial-order reduction and no sleep sets: the bound is exact, not a heuristic (can cost far more; docs/exploration.md).")
@click.option("--kernel", "kernel", default=None, help="Kernel release preset (overrides the scenario's kernel).")
@click.option("--patch", "patches", multiple=True, help="NAME=on|off, repeatable (overrides the scenario's kernel).")
@click.option("--trace-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Where to write the counterexample trace.")
@click.option("--no-shrink", is_flag=True, help="Write the counterexample as found, unshrunk.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object (a list for several scenarios).")
@click.option("--reproducible", is_flag=True, help="Leave wall-clock figures out of the output, so reruns are byte-identical.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.option("--workers", type=click.IntRange(1, 256), default=None, help="Run the exhaustive phases as the frontier search on N processes (with --ray: N Ray workers; default 1, on Ray one per CPU); docs/exploration.md.")
@click.option("--checkpoint", "checkpoint_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Where to write the checkpoint if a budget or Ctrl-C ends the search early (default checkpoints/<scenario>.<memory model>.<digest>.checkpoint.json).")
@click.option("--resume", "resume_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Continue the search saved in a checkpoint file.")
@click.option("--ray", "ray_address", default=None, metavar="auto|ADDRESS", help="Run the exhaustive search on a Ray cluster (needs vcoresim[ray]).")
@click.option("--memory-model", "memory_model", type=click.Choice(("sc", "tso", "pso", "power")), default="sc", show_default=True, help="Memory model (docs/memory-models.md).")
@click.option("--unreached/--no-unreached", "unreached", default=None, help="Record the model code the check reaches and list what it never executed, and vacuous invariants (default: on for one scenario).")
@click.option("--mutate", is_flag=True, help="Mutation analysis: check the scenario once per mutant of the operations it executes (drop a store or barrier, swap a store with the next operation, invert a loaded flag, skip an IPI) and report which mutants an invariant catches.")
@click.option("--mutations", "mutation_kinds", default=None, metavar="KIND,...", help=f"With --mutate: the kinds to apply (default: all of {', '.join(MUTATION_KINDS)}).")
@click.option("--sites", "sites", default=None, metavar="PATTERN,...", help="With --mutate: only mutants whose function, file:line or label matches (substring or shell pattern).")
@click.option("--mutant-executions", type=click.IntRange(1), default=None, help=f"With --mutate: execution budget of each mutant's check (default {MUTANT_EXECUTIONS}).")
@click.option("--mutant-seconds", type=click.FloatRange(0, min_open=True), default=None, help="With --mutate: wall-clock budget of each mutant's check (timing-dependent).")
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
    exact_bound: bool,
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
    unreached: bool | None,
    mutate: bool,
    mutation_kinds: str | None,
    sites: str | None,
    mutant_executions: int | None,
    mutant_seconds: float | None,
    barrier_mutations: bool,
) -> None:
    """Explore interleavings of SCENARIOS (default: every built-in scenario)."""
    reproducible = reproducible or os.environ.get("VCORESIM_REPRODUCIBLE") == "1"
    output_path(trace_out, "--trace-out")
    output_path(checkpoint_out, "--checkpoint")
    if resume_file is not None:
        if scenarios or kernel or patches or strategy or seed is not None or max_steps or max_preemptions is not None or barrier_mutations or memory_model != "sc":
            fail("--resume: the checkpoint fixes the scenario, strategy and bounds; give only budgets and output options")
        if cache:
            fail("--resume: the checkpoint fixes --cache")
        _resume(resume_file, max_executions, max_seconds, checkpoint_out, trace_out, no_shrink, as_json, reproducible, quiet, workers, ray_address)
        return
    if ray_address is not None:
        workers = workers or 0  # 0: one Ray worker per CPU of the cluster
        _connect_ray(ray_address)
    else:
        workers = workers or 1
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
    if mutate:
        _mutate(runs, strategy, seed, max_steps, max_preemptions, max_executions, max_seconds, as_json, reproducible, quiet, mutation_kinds, sites, mutant_executions, mutant_seconds, max(workers, 1))
    elif mutation_kinds or sites or mutant_executions or mutant_seconds:
        fail("--mutations/--sites/--mutant-executions/--mutant-seconds: only with --mutate")
    if barrier_mutations:
        _barrier_mutations(runs, strategy, seed, max_steps, max_preemptions, max_executions, max_seconds, as_json, reproducible, trace_out)
    results: list[CheckResult] = []
    show_progress = not quiet and not as_json and err.is_terminal
    stop = INTERRUPT
    with ProgressDisplay(show_progress) as display:
        for k, (sc, program) in enumerate(runs, start=1):
            # The scenario's [expect] holds for its own kernel under SC; overrides change what is checked.
            expected = sc.expected if not overrides and memory_model == "sc" else None
            expected_invariant = sc.expected_invariant if expected else None
            if stop():
                results.append(not_run(program.name, program.config, expected))
                continue
            b = sc.bounds
            bounds = _with_overrides(b, max_steps, max_preemptions, max_executions, max_seconds)
            display.start(sc.name, k, len(runs))
            try:
                res = check(
                    program,
                    strategy=strategy or sc.strategy,
                    bounds=bounds,
                    seed=seed if seed is not None else sc.seed,
                    pct_depth=pct_depth,
                    cache=cache,
                    bounded_por=exact_bound,
                    trace_out=trace_out,
                    do_shrink=not no_shrink,
                    expected=expected,
                    expected_invariant=expected_invariant,
                    progress=display if show_progress else None,
                    workers=workers,
                    stop=stop,
                    checkpoint_out=checkpoint_out,
                    checkpoint_dir=Path("checkpoints"),
                    ray=ray_address,
                    shield=INTERRUPT.shield,
                    coverage=unreached if unreached is not None else len(runs) == 1,
                )
            except ValueError as e:
                display.stop()
                fail(str(e))
            results.append(res)
    with INTERRUPT.shield():
        if as_json:
            docs = [r.as_dict(timing=not reproducible) for r in results]
            click.echo(json.dumps(docs[0] if len(docs) == 1 else docs, indent=1))
        elif len(results) == 1:
            _print_one(results[0], reproducible)
        else:
            _print_table(results, reproducible)
    sys.exit(exit_code(results))


def _with_overrides(b: Bounds, max_steps: int | None, max_preemptions: int | None, max_executions: int | None, max_seconds: float | None) -> Bounds:
    """The scenario's bounds ``b`` with the command line's options where given."""
    return Bounds(
        max_steps=max_steps or b.max_steps,
        max_preemptions=max_preemptions if max_preemptions is not None else b.max_preemptions,
        max_executions=max_executions or b.max_executions,
        max_seconds=max_seconds or b.max_seconds,
    )


def exit_code(results: list[CheckResult]) -> int:
    """One scenario: its verdict's code (1 also when the verdict contradicts its
    [expect]).  Several: 1 if a verdict contradicts its scenario's [expect] (or
    is a violation of a scenario that expects nothing), else 3 if any is
    inconclusive where it matters (an interruption left a scenario incomplete
    or not run, a bounded or sampled verdict), else 0."""
    if len(results) == 1:
        return results[0].exit_code
    if any(r.expectation_met is False or (r.expected is None and r.verdict == "violation") for r in results):
        return 1
    return 3 if any(r.interrupted or r.expectation_met is None or (r.expected is None and r.exit_code == 3) for r in results) else 0


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
    ray_address: str | None = None,
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
    if ((workers is not None and workers > 1) or ray_address is not None) and not parallel and search is not None:
        fail(f"{'--ray' if ray_address is not None else '--workers'}: this checkpoint's search ran in one process; resume it without {'--ray' if ray_address is not None else '--workers'}")
    if ray_address is not None:
        n_workers = workers or 0  # 0: one Ray worker per CPU of the cluster
        _connect_ray(ray_address)
    else:
        n_workers = workers or st.get("workers") or 1  # (a Ray run's checkpoint may say 0: one per CPU there)
    bounds = Bounds(max_steps=b["max_steps"], max_preemptions=b["max_preemptions"], max_executions=max_executions, max_seconds=max_seconds)
    display = ProgressDisplay(not quiet and not as_json and err.is_terminal)
    display.start(doc["scenario"])
    try:
        res = check(
            program,
            strategy=st["name"],
            bounds=bounds,
            seed=st["seed"],
            pct_depth=st.get("pct_depth", 3),
            cache=st.get("cache"),
            bounded_por=bool(isinstance(search, dict) and search.get("bounded_por")),  # (--exact-bound, as the search that wrote it)
            trace_out=trace_out or Path("traces") / f"{program.name.replace('/', '-')}.trace.json",
            do_shrink=not no_shrink,
            progress=display if display.enabled else None,
            stop=INTERRUPT,
            resume=doc["state"],
            workers=n_workers,
            ray=ray_address,
            checkpoint_out=checkpoint_out or path,
            shield=INTERRUPT.shield,
        )
    except ValueError as e:
        display.stop()
        fail(str(e))
    finally:
        display.stop()
    with INTERRUPT.shield():
        if as_json:
            click.echo(json.dumps(res.as_dict(timing=not reproducible), indent=1))
        else:
            _print_one(res, reproducible)
    sys.exit(res.exit_code)


def _print_one(r: CheckResult, reproducible: bool) -> None:
    from rich.markup import escape

    from vcoresim.report.verdict import COLOURS, verdict_lines

    colour = COLOURS[r.verdict]
    head = f"[bold]{escape(r.scenario)}[/]: [{colour}]{r.verdict}[/]"
    if r.expectation_met is False:
        head += " [bold red](unexpected)[/]"
    out.print(head)
    for label, text in verdict_lines(r, reproducible):
        say(f"{label}: {text}" if label else text, indent=2 if label else 4, hang=4 if label else 2)



def _print_table(results: list[CheckResult], reproducible: bool) -> None:
    from vcoresim.report.tables import check_table

    out.print(check_table(results, reproducible, out.width))
    bad = [r.scenario for r in results if r.expectation_met is False]
    cut = [r.scenario for r in results if r.interrupted]
    undecided = [r.scenario for r in results if r.expectation_met is None and not r.interrupted]
    unexpected_violations = [r.scenario for r in results if r.expected is None and r.verdict == "violation"]
    traces = sorted({str(Path(r.trace).parent) for r in results if r.trace})
    if traces:
        say(f"traces in {', '.join(traces)}/ (vcoresim replay FILE)", hang=2)
    if bad:
        say(f"unexpected verdicts (marked !): {', '.join(bad)}", hang=2, style="red")
    if cut:
        say(f"interrupted: {len(cut)} of {len(results)} scenarios not covered ({', '.join(cut)})", hang=2, style="yellow")
    if undecided:
        say(f"inconclusive, expectation not decided (marked ?): {', '.join(undecided)}", hang=2, style="yellow")
    if unexpected_violations:
        say(f"violations: {', '.join(unexpected_violations)}", hang=2, style="red")
    if not (bad or cut or undecided or unexpected_violations) and any(r.expected is not None for r in results):
        out.print("[green]every verdict as expected[/]")


# ------------------------------------------------------------ memory models
def _with_memory_model(runs: list[tuple[Scenario, Any]], model: str) -> list[tuple[Scenario, Any]]:
    if model == "sc":
        return runs  # the plain engine: engine/memory.py is not needed
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
    bounds = _with_overrides(b, max_steps, max_preemptions, max_executions, max_seconds or b.max_seconds or MUTATION_SECONDS)
    from vcoresim.report.verdict import COLOURS

    trace_dir = trace_out.parent if trace_out is not None else Path("traces")
    show = not as_json and err.is_terminal
    with ProgressDisplay(show) as display:
        report = mutate_barriers(
            program,
            strategy=strategy or sc.strategy,
            bounds=bounds,
            seed=seed if seed is not None else sc.seed,
            trace_dir=trace_dir,
            stop=INTERRUPT,
            progress=display if show else None,
        )
    if as_json:
        click.echo(json.dumps(report.as_dict(timing=not reproducible), indent=1))
    else:
        from rich.table import Table

        t = Table(title=f"barrier mutations: {program.name} under {report.model}", title_justify="left")
        for col in ("site", "line", "verdict", "invariant", "coverage", "executions", "trace"):
            t.add_column(col, justify="right" if col in ("line", "executions") else "left", overflow="fold")
        rows = [("(none removed)", None, report.baseline), *((m.site.label, m.site.line, m.result) for m in report.mutants)]
        for label, line, r in rows:
            colour = COLOURS[r.verdict]
            t.add_row(label, "-" if line is None else str(line), f"[{colour}]{r.verdict}[/]", r.invariant or "-", r.coverage, str(r.stats.executions), r.trace or "-")
        out.print(t)
        say(f"{len(report.mutants) + len(report.not_run)} barrier sites found in {report.discovery_executions} executions; removing {len(report.breaking)} of them breaks an invariant: {', '.join(m.site.label for m in report.breaking) or 'none'}", hang=2)
        if report.not_run:
            say(f"interrupted: {len(report.not_run)} sites not checked: {', '.join(s.label for s in report.not_run)}", hang=2)
    sys.exit(1 if report.baseline.verdict == "violation" else 3 if report.not_run or report.baseline.interrupted else 0)


def _mutate(
    runs: list[tuple[Scenario, Any]],
    strategy: str | None,
    seed: int | None,
    max_steps: int | None,
    max_preemptions: int | None,
    max_executions: int | None,
    max_seconds: float | None,
    as_json: bool,
    reproducible: bool,
    quiet: bool,
    kinds_text: str | None,
    sites: str | None,
    mutant_executions: int | None,
    mutant_seconds: float | None,
    workers: int,
) -> NoReturn:
    """``check --mutate``: the scenario, then one check per mutant of the operations it
    runs (``--workers N``: N mutants at a time, in processes)."""
    from vcoresim.check.mutation import mutate
    from vcoresim.report.tables import mutation_table

    if len(runs) != 1:
        fail("--mutate: give exactly one scenario")
    kinds = tuple(k.strip() for k in (kinds_text or ",".join(MUTATION_KINDS)).split(",") if k.strip())
    for k in kinds:
        if k not in MUTATION_KINDS:
            fail(f"--mutations: unknown mutation {k!r}{did_you_mean(k, MUTATION_KINDS)} (known: {', '.join(MUTATION_KINDS)})")
    sc, program = runs[0]
    b = sc.bounds
    bounds = _with_overrides(b, max_steps, max_preemptions, max_executions, max_seconds)
    per_mutant = Bounds(bounds.max_steps, bounds.max_preemptions, mutant_executions or MUTANT_EXECUTIONS, mutant_seconds)
    show = not quiet and not as_json and err.is_terminal
    with ProgressDisplay(show) as display:
        run = mutate(
            program,
            strategy=strategy or sc.strategy,
            bounds=bounds,
            mutant_bounds=per_mutant,
            seed=seed if seed is not None else sc.seed,
            trace_dir=Path("traces") / "mutants",
            kinds=kinds,
            sites=sites,
            progress=display if show else None,
            workers=workers,
            stop=INTERRUPT,
        )
    if as_json:
        click.echo(json.dumps(run.as_dict(timing=not reproducible), indent=1))
    else:
        say(f"{run.scenario} under {run.model}: baseline {run.baseline.verdict}; {run.sites} operation sites executed", hang=2)
        if run.outcomes:
            out.print(mutation_table(run, reproducible, out.width))
            if any(o.status == "survived" and o.result is not None and o.result.verdict != "holds" for o in run.outcomes):
                say("survived?: nothing caught it within the per-mutant budget (not a complete check)", hang=2)
            if any(o.caught_by == "max_steps" for o in run.outcomes):
                say("caught by max_steps: its executions no longer end within max_steps, where the scenario's all do (a livelock; no trace)", hang=2)
            kills = [o.result.trace for o in run.outcomes if o.result is not None and o.result.trace]
            if kills:
                say(f"a trace per kill by an invariant in {Path(kills[0]).parent}/ (vcoresim replay FILE)", hang=2)
        say(run.summary(), hang=2)
    sys.exit(1 if run.baseline.verdict == "violation" else 3 if run.not_run or run.baseline.interrupted else 0)
