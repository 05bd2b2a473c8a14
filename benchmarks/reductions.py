"""The scaled family of issue 13, before and after each reduction of the state cache.

    python benchmarks/reductions.py                    # every case, every configuration
    python benchmarks/reductions.py --budget 60        # seconds per run (default 300)
    python benchmarks/reductions.py --budget 60 --cpu  # ... of CPU time (a shared machine)
    python benchmarks/reductions.py --case stray-ipi-p8-r1@k1 --config stateful
    python benchmarks/reductions.py --before-src /path/to/old/src   # add that tree's --cache

Cases are scenario files under benchmarks/scenarios/ (``vcoresim check
benchmarks/scenarios/FILE.toml[@VARIANT]`` runs one by hand).  Configurations,
each adding one reduction to the one before:

  dpor        stateless DPOR with sleep sets (``--strategy exhaustive``, no cache)
  history     + state cache: states identified by per-frame histories, the dead
                ones dropped; DPOR falls back to full expansion
  snapshot    + frames identified by snapshots (code position, live locals, loop
                iterators); still full expansion
  stateful    + stateful DPOR: DPOR and the cache together (``--cache``)

Every run is an exhaustive search of the scenario's bounds in its own process
(one core), stopped after ``--budget`` seconds; a run that does not finish
says ``incomplete (budget)`` with what it covered.  States are distinct
fingerprints with the cache, nodes of the search tree without it.
Bytes/state are what the visited table holds (dict, keys, packed entries,
interned sleep sets and summaries) over the states it holds.  Peak RSS is
the process's.  The machine's load average is printed: other jobs on the
same cores slow every wall time, so compare ratios; CPU s (the child's user
plus system time) is what the search itself used, and moves less with load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"

#: (label, scenario file[@variant]) in the order of the issue.
CASES = [
    ("stray-ipi P8, K=1, N=1", "stray-ipi-p8-r1.toml@k1"),
    ("stray-ipi P8, K=2, N=1", "stray-ipi-p8-r1.toml@k2"),
    ("stray-ipi P8, K=3, N=1", "stray-ipi-p8-r1.toml@k3"),
    ("stray-ipi P8, K=3, N=2", "stray-ipi-p8-r2.toml@k3"),
    ("stray-ipi P8, K=3, N=3", "stray-ipi-p8-r3.toml@k3"),
    ("stray-ipi P8, K=4, N=3", "stray-ipi-p8-r3.toml@k4"),
    ("stray-ipi P8, 2 vCPUs, K=2, N=1, 1 preemption, v4.16", "stray-ipi-p8-2vcpu.toml@v4.16"),
    ("stray-ipi P8, 2 vCPUs, K=2, N=1, 1 preemption, v4.17", "stray-ipi-p8-2vcpu.toml@v4.17"),
    ("p8-idle-lockup@fixed, 2 stray IPIs, 2 rounds", "p8-idle-lockup-scaled.toml"),
    ("smt-vcore@4vcpu, scheduler any", "smt-vcore-4vcpu-any.toml"),
    ("signal-entry-race@fixed, signal + resched", "signal-entry-resched.toml"),
]

CONFIGS: dict[str, dict[str, Any]] = {
    "dpor": {"cache": False},
    "history": {"cache": True, "snapshots": False, "stateful": False},
    "snapshot": {"cache": True, "snapshots": True, "stateful": False},
    "stateful": {"cache": True, "snapshots": True, "stateful": True},
}

CHILD = r"""
import json, resource, sys, time
spec = json.loads(sys.argv[1])
t0 = time.perf_counter()
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.scenarios.registry import get_scenario
o = spec["options"]
kw = {"dpor": True, "cache": o.get("cache", False)}
if "snapshots" in o:
    from vcoresim.engine import fingerprint
    fingerprint.SNAPSHOTS = fingerprint.SNAPSHOTS and o["snapshots"]
if "stateful" in o:
    kw["stateful_dpor"] = o["stateful"]
sc = get_scenario(spec["scenario"])
program = sc.make({})
b = sc.bounds
def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime
curve = []
if spec.get("curve"):
    step = spec["budget"] / 10
    def progress(st, nxt=[step]):
        if cpu() >= nxt[0]:
            curve.append([round(cpu(), 1), st.executions, st.states])
            nxt[0] += step
    kw["progress"] = progress
if spec.get("cpu_budget"):
    # CPU seconds of this process, polled between executions: on a shared
    # machine a wall-clock budget measures the other jobs as much as the search.
    kw["stop"] = lambda: cpu() >= spec["budget"]
    wall_budget = None
else:
    wall_budget = spec["budget"]
r = exhaustive(program, Bounds(b.max_steps, b.max_preemptions, None, wall_budget), **kw)
print(json.dumps({"violation": r.violation.name if r.violation else None, "complete": r.complete, **r.stats.as_dict(),
                  "max_preemptions": b.max_preemptions, "cpu_budget": bool(spec.get("cpu_budget")),
                  "bytes_per_state": r.params.get("cache_bytes_per_state"), "wall": time.perf_counter() - t0, "curve": curve,
                  "cpu_s": cpu(),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(scenario: str, options: dict[str, Any], budget: float, src: str | None, curve: bool = False, cpu_budget: bool = False) -> dict[str, Any]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    spec = {"scenario": str(SCENARIOS / scenario), "options": options, "budget": budget, "curve": curve, "cpu_budget": cpu_budget}
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1], "wall": time.perf_counter() - start}
    return json.loads(p.stdout.strip().splitlines()[-1])


def row(t: Table, case: str, config: str, r: dict[str, Any], budget: float) -> None:
    if "error" in r:
        t.add_row(case, config, f"error: {r['error']}", "-", "-", "-", f"{r['wall']:.1f}", "-", "-", "-")
        return
    if r["violation"]:
        verdict, coverage = f"violation ({r['violation']})", "stopped at first violation"
    elif r["complete"]:
        bound = r.get("max_preemptions")
        verdict, coverage = "holds", "complete" if bound is None else f"complete, <= {bound} preemption(s)"
    else:
        used = r.get("cpu_s", 0.0) if r.get("cpu_budget") else r["seconds"]
        verdict, coverage = "incomplete (budget)" if used >= budget * 0.98 else "incomplete", "partial"
    bps = r.get("bytes_per_state")
    t.add_row(case, config, verdict, coverage, f"{r['states']:,}", f"{r['executions']:,}", f"{r['wall']:.1f}", f"{r['cpu_s']:.1f}" if "cpu_s" in r else "-", f"{r['rss_mib']:.0f}", "-" if bps is None else str(bps))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=300.0, help="seconds per run (default 300)")
    ap.add_argument("--cpu", action="store_true", help="--budget counts the run's CPU seconds, not wall-clock seconds (for a shared machine)")
    ap.add_argument("--case", action="append", help="scenario file[@variant] under benchmarks/scenarios (default: all)")
    ap.add_argument("--config", action="append", choices=list(CONFIGS), help="configurations to run (default: all)")
    ap.add_argument("--before-src", help="also run another source tree's exhaustive search with --cache (e.g. main before this work)")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON lines too (on stderr)")
    ap.add_argument("--curve", action="store_true", help="also print how executions and states grew over each run (ten samples)")
    args = ap.parse_args()
    wanted = {c.replace(".toml", "") for c in args.case or ()}
    cases = [(label, sc) for label, sc in CASES if not wanted or sc.replace(".toml", "") in wanted]
    configs = args.config or list(CONFIGS)
    con = Console(width=200)
    con.print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    t = Table(title=f"Scaled family: exhaustive search, one core, budget {args.budget:.0f} {'CPU ' if args.cpu else ''}s a run", title_justify="left")
    for col in ("case", "configuration", "verdict", "coverage", "states", "executions", "wall s", "CPU s", "peak RSS MiB", "bytes/state"):
        t.add_column(col, justify="left" if col in ("case", "configuration", "verdict", "coverage") else "right")
    curves: list[tuple[str, str, list[list[float]]]] = []
    for label, sc in cases:
        runs = [(name, CONFIGS[name], None) for name in configs]
        if args.before_src:
            runs.insert(0, ("before (--cache)", {"cache": True}, args.before_src))
        for name, options, src in runs:
            r = run(sc, options, args.budget, src, args.curve, args.cpu)
            row(t, label, name, r, args.budget)
            if args.curve and r.get("curve"):
                curves.append((label, name, r["curve"]))
            if args.json:
                print(json.dumps({"case": sc, "config": name, **r}), file=sys.stderr)
        t.add_section()
    con.print(t)
    for label, name, points in curves:
        con.print(f"{label}, {name}: " + "; ".join(f"{s:.0f} CPU s: {e:,} executions, {n:,} states" for s, e, n in points))
    con.print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
