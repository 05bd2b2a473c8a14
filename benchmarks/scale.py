"""Exploration at scale: one table of every built-in scenario, a scaled family,
the reductions' effect and --workers.

    python benchmarks/scale.py                       # every section
    python benchmarks/scale.py --section builtin     # builtin | scaled | reductions | workers
    python benchmarks/scale.py --budget 30           # seconds per scaled/reduction case (default 60)

Every case runs in its own process (so peak RSS is that case's alone), one
core unless the case says workers.  Wall time is process start to verdict
and trace written (imports, search, shrinking, trace file).  Unpatched
variants run to the first violation; patched ones to full coverage of their
bounds; a case that runs out of ``--budget`` says ``incomplete (budget)``
with what it covered.  States are the distinct states the search created
(nodes of the search tree; with the state cache, distinct fingerprints).
The machine's load average is printed with the table: other jobs running on
the same cores slow every figure.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kvm import CASES as BUILTIN  # noqa: E402  (one list of built-in cases for both benchmarks)


def _scaled() -> list[tuple[str, str, dict[str, Any]]]:
    """(label, base scenario, changes to its configuration): each step grows one dimension."""
    return [
        ("stray-ipi@fixed, 2 stray IPIs", "stray-ipi@fixed", {"faults": {"stray_ipi": 2}}),
        ("stray-ipi@fixed, 3 stray IPIs", "stray-ipi@fixed", {"faults": {"stray_ipi": 3}}),
        ("stray-ipi@fixed, 2 guest rounds", "stray-ipi@fixed", {"workload": {"rounds": 2}}),
        ("stray-ipi@fixed, 3 guest rounds", "stray-ipi@fixed", {"workload": {"rounds": 3}}),
        ("stray-ipi@fixed, 3 vCPUs", "stray-ipi@fixed", {"vm": [{"name": "vm0", "vcpus": [0, 1, 2]}]}),
        ("stray-ipi@fixed on POWER8 (8 threads)", "stray-ipi@fixed", {"machine": {"cpu": "POWER8"}, "kernel": {"preset": "v4.17", "patches": {}}}),
        ("stray-ipi (bug), 2 stray IPIs", "stray-ipi", {"faults": {"stray_ipi": 2}}),
        ("stray-ipi (bug), 3 stray IPIs", "stray-ipi", {"faults": {"stray_ipi": 3}}),
        ("stray-ipi (bug), 2 guest rounds", "stray-ipi", {"workload": {"rounds": 2}}),
        ("p8-idle-lockup@buggy, 2 guest rounds", "p8-idle-lockup@buggy", {"workload": {"rounds": 2}}),
        ("p8-idle-lockup@buggy, 3 guest rounds", "p8-idle-lockup@buggy", {"workload": {"rounds": 3}}),
        ("p8-idle-lockup@fixed, 2 guest rounds", "p8-idle-lockup@fixed", {"workload": {"rounds": 2}}),
        ("p8-idle-lockup@fixed, 1 signal", "p8-idle-lockup@fixed", {"faults": {"signal": 1}}),
        ("smt-vcore, 1 guest round", "smt-vcore", {"workload": {"rounds": 1}}),
        ("smt-vcore, 3 guest rounds", "smt-vcore", {"workload": {"rounds": 3}}),
        ("smt-vcore, 3 vCPUs", "smt-vcore", {"vm": [{"name": "vm0", "vcpus": [0, 1, 2]}]}),
        ("smt-vcore on POWER8 (8 threads)", "smt-vcore", {"machine": {"cpu": "POWER8"}, "kernel": {"preset": "v4.17", "patches": {}}}),
    ]


def _reductions() -> list[tuple[str, str, dict[str, Any]]]:
    """The same patched scenarios under each search configuration (bounded: max_preemptions=1 unless noted)."""
    out = []
    for sc in ("stray-ipi@fixed", "p8-idle-lockup@fixed"):
        out += [
            (f"{sc}: dfs, sleep sets only", sc, {"strategy": "dfs", "max_preemptions": 1, "cache": False}),
            (f"{sc}: dfs + state cache", sc, {"strategy": "dfs", "max_preemptions": 1, "cache": True}),
            (f"{sc}: DPOR + sleep sets", sc, {"strategy": "exhaustive", "max_preemptions": 1, "cache": False}),
            (f"{sc}: DPOR, source sets", sc, {"strategy": "exhaustive", "max_preemptions": 1, "source_sets": True}),
            (f"{sc}: DPOR + cache (stateful DPOR)", sc, {"strategy": "exhaustive", "max_preemptions": 1, "cache": True}),
            (f"{sc}: auto (random, bounds 0, 1)", sc, {"strategy": "auto", "max_preemptions": 1}),
        ]
    return out


def _workers() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for sc, pre in (("stray-ipi@fixed", None), ("smt-vcore", 0)):
        for w in (1, 2):
            out.append((f"{sc} exhaustive, preemptions {pre if pre is not None else 'unbounded'}, {w} worker{'s' if w > 1 else ''}", sc, {"strategy": "exhaustive", "max_preemptions": pre, "workers": w}))
    return out


CHILD = r"""
import json, resource, sys, tempfile, pathlib, time
spec = json.loads(sys.argv[1])
from vcoresim.check.driver import check
from vcoresim.engine.strategies import dpor
from vcoresim.engine.strategies.base import Bounds
from vcoresim.scenarios.registry import get_scenario

def merge(a, b):
    for k, v in b.items():
        a[k] = merge(dict(a.get(k) or {}), v) if isinstance(v, dict) and k != "kernel" else v
    return a

sc = get_scenario(spec["scenario"])
overrides = {}
if spec.get("config"):
    base = sc.make({}).config
    overrides = merge(json.loads(json.dumps(base)), spec["config"])
    overrides["name"] = spec["label"]
program = sc.make(overrides)
o = spec.get("options", {})
b = sc.bounds
bounds = Bounds(b.max_steps, o.get("max_preemptions", b.max_preemptions), b.max_executions, spec.get("budget") or b.max_seconds)
if o.get("source_sets"):
    _orig = dpor.exhaustive
    def _src(*a, **k):
        k["source_sets"] = True
        return _orig(*a, **k)
    import vcoresim.check.driver as drv
    drv.exhaustive = _src
out = pathlib.Path(tempfile.mkdtemp()) / "t.json"
r = check(program, strategy=o.get("strategy", sc.strategy), bounds=bounds, seed=sc.seed, cache=o.get("cache"),
          trace_out=out, workers=o.get("workers", 1), checkpoint_out=pathlib.Path(tempfile.mkdtemp()) / "c.json")
print(json.dumps({"verdict": r.verdict, "invariant": r.invariant, "coverage": r.coverage, "bounds": r.bounds, **r.stats.as_dict(),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "children_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def run_case(label: str, scenario: str, config: dict[str, Any] | None, options: dict[str, Any], budget: float | None) -> dict[str, Any]:
    spec = {"label": label, "scenario": scenario, "config": config, "options": options, "budget": budget}
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["?"])[-1], "wall": wall}
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["wall"] = wall
    return r


def _row(t: Table, label: str, r: dict[str, Any], budget: float | None) -> None:
    if "error" in r:
        t.add_row(label, f"error: {r['error']}", "-", "-", f"{r['wall']:.2f}", "-", "-", "-", "-")
        return
    verdict = r["verdict"] + (f" ({r['invariant']})" if r["invariant"] else "")
    if r["verdict"] == "incomplete" and budget and r["seconds"] >= budget * 0.98:
        verdict = "incomplete (budget)"
    rate = r["steps"] / r["seconds"] if r["seconds"] else 0
    pmax = r["bounds"]["max_preemptions"]
    rss = max(r["rss_mib"], r.get("children_rss_mib", 0))
    t.add_row(label, verdict, r["coverage"], "-" if pmax is None else str(pmax), f"{r['wall']:.2f}", f"{r['executions']:,}", f"{r['states']:,}", f"{rate:,.0f}", f"{rss:.0f}")


def _table(title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("case", "verdict", "coverage", "max preemptions", "wall s", "executions", "states", "steps/s", "peak RSS MiB"):
        t.add_column(col, justify="left" if col in ("case", "verdict", "coverage") else "right")
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--section", action="append", choices=["builtin", "scaled", "reductions", "workers"])
    ap.add_argument("--budget", type=float, default=60.0, help="seconds per scaled / reduction / workers case")
    ap.add_argument("cases", nargs="*", help="only these built-in cases")
    args = ap.parse_args()
    sections = args.section or ["builtin", "scaled", "reductions", "workers"]
    con = Console(width=220)
    con.print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    if "builtin" in sections:
        t = _table("Built-in scenarios: default strategy and bounds, one core (to the first violation / to full coverage of the bounds)")
        for case in args.cases or BUILTIN:
            _row(t, case, run_case(case, case, None, {}, None), None)
        con.print(t)
    if "scaled" in sections:
        t = _table(f"Scaled family: default strategy, budget {args.budget:.0f} s a case")
        for label, base, cfg in _scaled():
            _row(t, label, run_case(label, base, cfg, {}, args.budget), args.budget)
        con.print(t)
    if "reductions" in sections:
        t = _table(f"Reductions: one scenario, each search configuration, budget {args.budget:.0f} s a case")
        for label, base, opts in _reductions():
            _row(t, label, run_case(label, base, None, opts, args.budget), args.budget)
        con.print(t)
    if "workers" in sections:
        t = _table(f"--workers: the same exhaustive search in 1 and 2 processes, budget {args.budget:.0f} s a case")
        for label, base, opts in _workers():
            _row(t, label, run_case(label, base, None, opts, args.budget), args.budget)
        con.print(t)
    con.print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
