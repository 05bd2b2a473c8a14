"""``vcoresim simulate SCENARIO``: a timed run and its metrics.

Exit codes: 0 the run ended normally (duration reached or everything
finished), 1 an invariant was violated or the system deadlocked, 2 bad input,
3 interrupted (Ctrl-C, SIGTERM: the metrics cover the time simulated so far).

Memory: the metrics are computed as the run goes; the event log is kept only
when ``--perfetto`` or ``--plot`` asks for it, so a long run's memory does
not grow with simulated time (see ``simulate.metrics.MetricsStream``).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from vcoresim.cli.common import INTERRUPT, ProgressDisplay, err, fail, out, output_path, parse_patches, say
from vcoresim.errors import InputError
from vcoresim.kvm.config import MAX_DURATION_US
from vcoresim.scenarios.registry import ScenarioError, get_scenario
from vcoresim.simulate import compare
from vcoresim.simulate.metrics import render, render_compare, render_patch_compare, run, write_csv
from vcoresim.simulate.timed import Timing

#: Used when neither the command line nor the scenario gives a duration (matches SimulateConfig).
DEFAULT_DURATION_US = 10_000


def _sim_config(config: dict[str, Any]) -> dict[str, Any]:
    """The scenario's ``[simulate]`` table, if its program carries one."""
    sim = config.get("simulate")
    if sim is None:
        return {}
    if not isinstance(sim, dict):
        from vcoresim.kvm.config import dump

        sim = dump(sim)
    return dict(sim) if isinstance(sim, dict) else {}


@click.command("simulate")
@click.argument("scenario")
@click.option("--duration-us", type=click.IntRange(1, MAX_DURATION_US), default=None, help=f"Simulated time in µs (default: the scenario's, else {DEFAULT_DURATION_US}).")
@click.option("--seed", type=int, default=None, help="Seed for workload draws and tie-breaks (default: the scenario's).")
@click.option("--kernel", "kernel", default=None, help="Kernel release preset (overrides the scenario's kernel).")
@click.option("--patch", "patches", multiple=True, help="NAME=on|off, repeatable (overrides the scenario's kernel).")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as one JSON object.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the metrics as CSV (section,name,metric,value).")
@click.option(
    "--compare-smt",
    "compare_smt",
    type=click.IntRange(0, 8),
    default=None,
    help="Also simulate a guest of N vCPUs with smt-guests on vs off (default: the scenario's simulate.compare_smt_guests; 0: no).",
)
@click.option(
    "--compare-patch",
    "compare_patch",
    default=None,
    metavar="NAME",
    help="Also run the scenario with patch NAME off and on, side by side (default: the scenario's simulate.compare_patch; 'none': no).",
)
@click.option("--through-violations", is_flag=True, help="Do not check invariants: measure through violations (figures, not a verdict); overrides [simulate] check_invariants.")
@click.option("--trace-out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Where to write the trace of a violation that stops the run (default traces/<scenario>.simulate.trace.json); vcoresim replay re-runs it.")
@click.option("--perfetto", "perfetto_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the run as a Chrome trace-event JSON timeline (opens in ui.perfetto.dev).")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write a PNG: latency CDFs and guest utilisation over time (needs vcoresim[plot]).")
def simulate_cmd(
    scenario: str,
    duration_us: int | None,
    seed: int | None,
    kernel: str | None,
    patches: tuple[str, ...],
    as_json: bool,
    csv_out: Path | None,
    compare_smt: int | None,
    compare_patch: str | None,
    through_violations: bool,
    trace_out: Path | None,
    perfetto_out: Path | None,
    plot_out: Path | None,
) -> None:
    """Run SCENARIO under the timed driver and print guest time, IPIs, naps and latencies."""
    overrides: dict[str, Any] = {}
    if kernel is not None:
        overrides["kernel"] = kernel
    if patches:
        overrides["patches"] = parse_patches(patches)
    for path, option in ((csv_out, "--csv"), (perfetto_out, "--perfetto"), (plot_out, "--plot")):
        output_path(path, option)
    try:
        sc = get_scenario(scenario)
        program = sc.make(overrides)
    except ScenarioError as e:
        fail(str(e))
    cfg = _sim_config(program.config)
    dur_us = duration_us if duration_us is not None else int(cfg.get("duration_us") or DEFAULT_DURATION_US)
    run_seed = seed if seed is not None else int(cfg.get("seed", sc.seed))
    try:
        timing = Timing().replace(**dict(cfg.get("timing") or {}))
    except (TypeError, ValueError) as e:
        fail(f"simulate.{e}" if str(e).startswith("timing") else f"simulate.timing: {e}")
    check_invariants = bool(cfg.get("check_invariants", True)) and not through_violations
    if not check_invariants:  # the scenario measures through violations: figures, not a verdict
        program = dataclasses.replace(program, select=())
    keep = perfetto_out is not None or plot_out is not None  # the pictures need the event log
    with ProgressDisplay(not as_json and err.is_terminal) as display:
        display.start(f"{sc.name}: {dur_us:,} µs simulated")
        started = time.perf_counter()

        def progress(now_ns: int, steps: int) -> None:
            wall = time.perf_counter() - started
            done = now_ns / (dur_us * 1_000)
            eta = f" · ETA {wall * (1 - done) / done:.0f} s" if done > 0 else ""
            display.show(f"{now_ns / 1e6:.3f} of {dur_us / 1e3:.3f} ms ({done:.0%}) · {steps / wall:,.0f} steps/s{eta}")

        result, metrics = run(
            program,
            duration_ns=dur_us * 1_000,
            seed=run_seed,
            timing=timing,
            keep_events=keep,
            record_states=perfetto_out is not None,
            stop=INTERRUPT,
            progress=progress if display.enabled else None,
        )
    trace_path: Path | None = None
    if result.outcome in ("violation", "deadlock"):
        from vcoresim.simulate.trace import write_if_violated

        with INTERRUPT.shield():
            trace_path = write_if_violated(program, result, trace_out, timing=timing)
    if perfetto_out is not None:
        from vcoresim.report.visual import write_perfetto_sim

        try:
            with INTERRUPT.shield():
                write_perfetto_sim(result, perfetto_out)
        except InputError as e:
            fail(str(e))
    if plot_out is not None:
        from vcoresim.report.plots import PlotUnavailable, write_run_plot

        try:
            write_run_plot(result, metrics, plot_out)
        except PlotUnavailable as e:
            fail(f"--plot: {e}")
        except OSError as e:
            fail(f"--plot: cannot write {plot_out}: {e.strerror}")
    smt_source = "--compare-smt" if compare_smt is not None else "simulate.compare_smt_guests"
    n_cmp = compare_smt if compare_smt is not None else int(cfg.get("compare_smt_guests") or 0)
    rows: list[compare.Row] = []
    if n_cmp and not INTERRUPT():
        if "machine" not in program.config:
            fail(f"{smt_source}: {sc.name} is not a KVM scenario")
        try:
            rows = compare.smt_guests(program.config, vcpus=n_cmp, duration_ns=dur_us * 1_000, seed=run_seed, timing=timing, stop=INTERRUPT)
        except ScenarioError as e:
            fail(f"{smt_source}: {e}")
    patch_source = "--compare-patch" if compare_patch is not None else "simulate.compare_patch"
    patch_name = compare_patch if compare_patch is not None else cfg.get("compare_patch")
    patch_rows: list[compare.PatchRow] = []
    if patch_name and patch_name != "none" and not INTERRUPT():
        if "machine" not in program.config:
            fail(f"{patch_source}: {sc.name} is not a KVM scenario")
        try:
            patch_rows = compare.patch_onoff(program.config, patch_name, duration_ns=dur_us * 1_000, seed=run_seed, timing=timing, check_invariants=check_invariants, stop=INTERRUPT)
        except ScenarioError as e:
            fail(f"{patch_source}: {e}")
    if csv_out is not None:
        extra = [("smt_guests", r.label, k, v) for r in rows for k, v in r.as_dict().items() if k != "label"]
        extra += [("patch", r.label, k, v) for r in patch_rows for k, v in r.as_dict().items() if k not in ("label", "tb")]
        extra += [("patch_timebase", f"{r.label}: {name}", k, v) for r in patch_rows for name, d in r.as_dict()["tb"].items() for k, v in d.items()]
        try:
            with INTERRUPT.shield():
                write_csv(metrics, csv_out, extra=extra)
        except InputError as e:
            fail(str(e))
    if as_json:
        doc = {
            "scenario": sc.name,
            "seed": run_seed,
            "duration_ns": result.duration_ns,
            "config": program.config,
            "timing": timing.as_dict(),
            "counts": result.counts,
            "metrics": metrics.as_dict(),
        }
        if rows:
            doc["smt_guests"] = {"vcpus": n_cmp, "rows": [r.as_dict() for r in rows]}
        if patch_rows:
            doc["compare_patch"] = {"patch": patch_name, "rows": [r.as_dict() for r in patch_rows]}
        doc["invariants_checked"] = check_invariants
        if INTERRUPT():
            doc["interrupted"] = True
        doc["outcome"] = result.outcome
        doc["violation"] = result.violation
        doc["trace"] = str(trace_path) if trace_path else None
        click.echo(json.dumps(doc, indent=1, default=str))
    else:
        if not check_invariants:
            why = "--through-violations" if through_violations else "the scenario's [simulate] check_invariants = false"
            say(f"invariants not checked ({why}): the run measures through violations", hang=2)
        render(metrics, out)
        if rows:
            render_compare(rows, n_cmp, out)
        if patch_rows:
            render_patch_compare(patch_rows, out)
        if INTERRUPT():
            say("interrupted: the figures cover the simulated time up to the interruption", hang=2)
        if trace_path is not None:
            say(f"the run stopped at the violation; trace: {trace_path}; replay with: vcoresim replay {trace_path}; measure through it with --through-violations", hang=2)
        elif patch_rows and any(r.outcome in ("violation", "deadlock") for r in patch_rows):
            say("a compared run stopped at a violation: --through-violations measures through it", hang=2)
    if result.outcome in ("violation", "deadlock"):
        sys.exit(1)
    sys.exit(3 if INTERRUPT() else 0)
