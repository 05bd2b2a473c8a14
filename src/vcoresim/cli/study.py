"""``vcoresim study``: the threads-per-vcore policy study (table, --json, --csv, --plot)."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from vcoresim.cli.common import INTERRUPT, ProgressDisplay, err, fail, out, output_path
from vcoresim.errors import InputError
from vcoresim.files import write_atomic
from vcoresim.scenarios.registry import ScenarioError, get_scenario
from vcoresim.simulate.study import study
from vcoresim.simulate.timed import Timing


@click.command("study")
@click.option("--scenario", default="smt-vcore", show_default=True, help="KVM scenario whose workload and timing the study uses.")
@click.option("--duration-us", type=click.IntRange(1, 1_000_000_000), default=20_000, show_default=True, help="Simulated time per configuration.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--csv", "csv_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the rows as CSV.")
@click.option("--plot", "plot_out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write the plot (PNG; needs vcoresim[plot]).")
def study_cmd(scenario: str, duration_us: int, seed: int, as_json: bool, csv_out: Path | None, plot_out: Path | None) -> None:
    """Guest throughput and latency for 1, 2, 4 threads per vcore on POWER7 and up to 8 on POWER8 (seed 001's gang entry)."""
    output_path(csv_out, "--csv")
    output_path(plot_out, "--plot")
    try:
        sc = get_scenario(scenario)
        program = sc.make({})
    except ScenarioError as e:
        fail(str(e))
    if "machine" not in program.config:
        fail(f"--scenario: {scenario} is not a KVM scenario")
    cfg = program.config.get("simulate") or {}
    try:
        timing = Timing().replace(**dict(cfg.get("timing") or {}))
    except (TypeError, ValueError) as e:
        fail(f"simulate.{e}")
    try:
        with ProgressDisplay(not as_json and err.is_terminal) as display:
            rows = study(program.config, duration_ns=duration_us * 1000, seed=seed, timing=timing, stop=INTERRUPT, progress=display.start)
    except ScenarioError as e:
        fail(str(e))
    interrupted = INTERRUPT()
    if csv_out is not None and rows:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
        try:
            with INTERRUPT.shield():
                write_atomic(csv_out, buf.getvalue(), "--csv")
        except InputError as e:
            fail(str(e))
    if plot_out is not None and rows:
        from vcoresim.report.plots import PlotUnavailable, write_study_plot

        try:
            write_study_plot(rows, plot_out, f"Threads per vcore under gang entry ({scenario} workload, {duration_us} µs, seed {seed})")
        except PlotUnavailable as e:
            fail(f"--plot: {e}")
        except OSError as e:
            fail(f"--plot: cannot write {plot_out}: {e.strerror}")
    if as_json:
        click.echo(json.dumps({"scenario": scenario, "duration_ns": duration_us * 1000, "seed": seed, "rows": rows}, indent=1))
    else:
        _table(rows, scenario, duration_us, seed, out)
        if interrupted:
            out.print(f"interrupted: {len(rows)} configurations run", markup=False)
    if any(r["outcome"] in ("violation", "deadlock") for r in rows):
        sys.exit(1)
    if interrupted:
        sys.exit(3)
    sys.exit(0 if all(r["outcome"] == "duration" for r in rows) else 1)


def _us(v: int | None) -> str:
    return "-" if v is None else f"{v / 1000:.1f} µs"


def _table(rows: list[dict[str, Any]], scenario: str, duration_us: int, seed: int, console: Any) -> None:
    t = Table(title=f"Threads per vcore, one core, gang entry ({scenario} workload, {duration_us} µs, seed {seed})", title_justify="left")
    for col in ("cpu", "threads/vcore", "guest CPUs", "per vCPU", "work/s", "wake→entry p50", "p99", "max", "exit→entry p99", "outcome"):
        t.add_column(col, justify="left" if col == "cpu" else "right")
    for r in rows:
        t.add_row(
            r["cpu"], str(r["threads"]), f"{r['guest_cpus']:.3f}", f"{r['guest_cpus_per_vcpu']:.3f}", f"{r['work_per_s']:,.0f}",
            _us(r["wake_to_entry_p50"]), _us(r["wake_to_entry_p99"]), _us(r["wake_to_entry_max"]), _us(r["exit_to_entry_p99"]),
            r["outcome"] if r["outcome"] == "duration" else f"{r['outcome']} {r['violation'] or ''} at {r['end_ns'] / 1e6:.3f} ms",
        )
    console.print(t)
