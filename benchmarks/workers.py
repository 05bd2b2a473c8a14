"""Does the search speed up with workers?  The frontier search on 1 and 2
processes (and serial DPOR, the default search, for reference), then on a
local Ray cluster of 2 CPUs with 2, 3 and 4 worker processes.

    python benchmarks/workers.py                      # the stray and p8k1 cases, 3 rounds
    python benchmarks/workers.py --rounds 5 --case smt
    python benchmarks/workers.py --section processes  # processes | ray
    python benchmarks/workers.py --ray-workers 2 --ray-workers 8

Each run is its own process (``vcoresim check``'s code path: ``check()`` with
``workers``/``ray``); the table gives medians over the rounds (runs of a round
alternate between the configurations, so a drift in the machine's load hits
them alike) of wall time, CPU time of the run and its children, executions,
distinct states, the share of the time the workers were busy, and the
speed-up over one worker, with the load average.  "On free cores
(estimate)" is min(n, cores) x busy share x (steps of one worker / steps of
n): what the speed-up would be if each worker had a core to itself (the
duplicate work the lag of the shared visited set causes is in the steps).
The machine has 2 cores: beyond 2 workers only overhead can show.  "CPU s"
is the run's process and its children; Ray's worker processes are not its
children, so "worker CPU s" adds what the workers report for their batches
(every frontier row has it).  Ray's workers are started without a fixed
PYTHONHASHSEED: they share the visited set because the fingerprints are the
same in every process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

#: (key, label, scenario, config changes, bounds).  Searches of about a minute on one worker.
CASES: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    ("stray", "stray-ipi@fixed, 2 guest rounds, unbounded", "stray-ipi@fixed", {"workload": {"rounds": 2}}, {"max_preemptions": None}),
    ("p8k1", "stray-ipi-p8-r1@k1 (POWER8, 8 threads, 1 stray IPI, 1 round), unbounded", "benchmarks/scenarios/stray-ipi-p8-r1.toml@k1", {}, {"max_preemptions": None}),
    ("smt", "smt-vcore@late-join-fixed, 2 guest rounds, 0 preemptions", "smt-vcore@late-join-fixed", {"workload": {"rounds": 2}}, {"max_preemptions": 0}),
]
#: The cases run when none is named.
DEFAULT_CASES = ("stray", "p8k1")

CHILD = r"""
import json, resource, sys, time, tempfile, pathlib
spec = json.loads(sys.argv[1])
from vcoresim.check.driver import check
from vcoresim.engine.strategies.base import Bounds
from vcoresim.scenarios.registry import get_scenario

def merge(a, b):
    for k, v in b.items():
        a[k] = merge(dict(a.get(k) or {}), v) if isinstance(v, dict) else v
    return a

sc = get_scenario(spec["scenario"])
base = sc.make({}).config
cfg = merge(json.loads(json.dumps(base)), spec["config"]) if spec["config"] else base
program = sc.make(cfg)
if spec.get("ray_cpus"):
    import ray
    ray.init(num_cpus=spec["ray_cpus"], include_dashboard=False, logging_level="ERROR", log_to_driver=False)
b = sc.bounds
bounds = Bounds(b.max_steps, spec["bounds"].get("max_preemptions", b.max_preemptions), None, spec.get("budget"))
t0 = time.perf_counter()
r = check(program, strategy="exhaustive", bounds=bounds, trace_out=pathlib.Path(tempfile.mkdtemp()) / "t.json",
          workers=spec["workers"], ray="auto" if spec.get("ray_cpus") else None, checkpoint_out=pathlib.Path(tempfile.mkdtemp()) / "c.json")
search = time.perf_counter() - t0
ru, rc = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"verdict": r.verdict, "coverage": r.coverage, "search_s": search, **r.stats.as_dict(),
                  "cpu_s": ru.ru_utime + ru.ru_stime + rc.ru_utime + rc.ru_stime, "coordinator_cpu_s": ru.ru_utime + ru.ru_stime,
                  "rss_mib": max(ru.ru_maxrss, rc.ru_maxrss) / 1024, "params": r.strategy}))
"""


def run(spec: dict[str, Any]) -> dict[str, Any]:
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True, check=False)
    lines = p.stdout.strip().splitlines()
    if p.returncode not in (0, 1, 3) or not lines:
        return {"error": f"exit {p.returncode}: " + (p.stderr.strip().splitlines() or ["?"])[-1]}
    out = json.loads(lines[-1])
    out["wall"] = time.perf_counter() - start
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--case", action="append", choices=[c[0] for c in CASES])
    ap.add_argument("--section", action="append", choices=["processes", "ray"])
    ap.add_argument("--budget", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--ray-workers", type=int, action="append", help="Ray worker processes (repeatable; default 2, 3, 4 on a 2-CPU cluster)")
    args = ap.parse_args()
    sections = args.section or ["processes", "ray"]
    cases = args.case or list(DEFAULT_CASES)
    cores = os.cpu_count() or 1
    con = Console(width=200)
    con.print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    for key, label, scenario, config, bounds in CASES:
        if key not in cases:
            continue
        configs: list[tuple[str, dict[str, Any]]] = []
        if "processes" in sections:
            configs += [("DPOR, serial (default)", {"workers": 1, "dpor": True}), ("frontier, 1 worker", {"workers": 1, "frontier": True}), ("frontier, 2 procs", {"workers": 2})]
        if "ray" in sections:
            configs += [(f"Ray, {n} workers", {"workers": n, "ray_cpus": 2}) for n in (args.ray_workers or [2, 3, 4])]
        rows: dict[str, list[dict[str, Any]]] = {c: [] for c, _ in configs}
        loads: list[float] = []
        for _ in range(args.rounds):
            for name, opts in configs:
                spec = {"scenario": scenario, "config": config, "bounds": bounds, "budget": args.budget, **opts}
                if opts.get("frontier"):
                    spec["workers"] = 1  # the frontier search in one process: through the Python API below
                r = run_frontier_one(spec) if opts.get("frontier") else run(spec)
                rows[name].append(r)
                loads.append(os.getloadavg()[0])
                # One line a run as it ends (a long benchmark cut short still says something).
                p = r.get("params", {})
                con.print(f"  {name}: " + (r["error"] if "error" in r else f"{r['verdict']}, search {r['search_s']:.1f} s, CPU {r['cpu_s']:.1f} s, worker CPU {p.get('worker_cpu_s', '-')} s, steps {r['steps']:,}, states {r['states']:,}, busy {p.get('worker_busy', '-')}") + f", load {loads[-1]:.1f}")
        t = Table(title=f"{label}: medians of {args.rounds} rounds, 1-minute load average {statistics.median(loads):.1f} (median over the runs)", title_justify="left")
        for col in ("search", "verdict", "wall s", "CPU s", "worker CPU s", "executions", "steps", "steps vs 1 worker", "states", "workers busy", "speed-up vs 1 worker", "on free cores (estimate)", "peak RSS MiB"):
            t.add_column(col, justify="left" if col in ("search", "verdict") else "right")
        base = base_steps = None
        for name, opts in configs:
            rs = [r for r in rows[name] if "error" not in r]
            if not rs:
                t.add_row(name, f"error: {rows[name][0].get('error')}", *["-"] * 11)
                continue
            wall = statistics.median(r["search_s"] for r in rs)
            steps = statistics.median(r["steps"] for r in rs)
            if name == "frontier, 1 worker" or (base is None and "1 worker" in name):
                base, base_steps = wall, steps
            speed = "-" if base is None or name.startswith("DPOR") else f"{base / wall:.2f}x"
            busy = [r.get("params", {}).get("worker_busy") for r in rs]
            busy_m = statistics.median(b for b in busy if b is not None) if any(b is not None for b in busy) else None
            n = rs[0].get("params", {}).get("workers", 1)
            # n workers, busy that share of the time, doing steps/base_steps of the work of one.
            est = "-" if name.startswith("DPOR") or busy_m is None or not base_steps else f"{min(n, cores) * busy_m * base_steps / steps:.2f}x"
            wcpu = [r.get("params", {}).get("worker_cpu_s") for r in rs]
            wcpu_m = "-" if any(w is None for w in wcpu) else f"{statistics.median(wcpu):.1f}"
            ratio = "-" if name.startswith("DPOR") or not base_steps else f"{steps / base_steps:.3f}"
            r0 = rs[0]
            verdict = f"{r0['verdict']} ({r0['coverage']})"
            t.add_row(name, verdict, f"{wall:.1f}", f"{statistics.median(r['cpu_s'] for r in rs):.1f}", wcpu_m, f"{statistics.median(r['executions'] for r in rs):,.0f}",
                      f"{steps:,.0f}", ratio, f"{statistics.median(r['states'] for r in rs):,.0f}", "-" if busy_m is None else f"{busy_m:.3f}", speed, est, f"{max(r['rss_mib'] for r in rs):.0f}")
        con.print(t)
    con.print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


FRONTIER_ONE = r"""
import json, resource, sys, time
spec = json.loads(sys.argv[1])
from vcoresim.check.parallel import parallel_search
from vcoresim.engine.strategies.base import Bounds
from vcoresim.scenarios.registry import get_scenario

def merge(a, b):
    for k, v in b.items():
        a[k] = merge(dict(a.get(k) or {}), v) if isinstance(v, dict) else v
    return a

sc = get_scenario(spec["scenario"])
base = sc.make({}).config
program = sc.make(merge(json.loads(json.dumps(base)), spec["config"]) if spec["config"] else base)
b = sc.bounds
t0 = time.perf_counter()
r = parallel_search(program, Bounds(b.max_steps, spec["bounds"].get("max_preemptions", b.max_preemptions), None, spec.get("budget")), 1)
ru = resource.getrusage(resource.RUSAGE_SELF)
verdict = "violation" if r.violation else "holds" if r.complete else "incomplete"
print(json.dumps({"verdict": verdict, "coverage": "complete" if r.complete else "partial", "search_s": time.perf_counter() - t0, **r.stats.as_dict(),
                  "cpu_s": ru.ru_utime + ru.ru_stime, "rss_mib": ru.ru_maxrss / 1024, "params": r.params}))
"""


def run_frontier_one(spec: dict[str, Any]) -> dict[str, Any]:
    p = subprocess.run([sys.executable, "-c", FRONTIER_ONE, json.dumps(spec)], capture_output=True, text=True, check=False)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        return {"error": f"exit {p.returncode}: " + (p.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(lines[-1])


if __name__ == "__main__":
    main()
