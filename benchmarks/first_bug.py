"""Time to each seed bug, end to end: process start to shrunk trace written.

    python benchmarks/first_bug.py                    # every seed bug, 5 runs each
    python benchmarks/first_bug.py --runs 9 stray-ipi p8-idle-lockup
    python benchmarks/first_bug.py --vs /path/to/other/src   # before/after

Each run is ``vcoresim check NAME --quiet --json`` in a fresh process (the
console script's interpreter, no shell), from a scratch directory; the table
gives the median wall time and the median CPU time (user + system) of the
process, the search's executions and steps, and the trace's length (and
before shrinking); "CPU s (text)" is the same without ``--json`` (the verdict
printed as text, through rich).  Then the floor: the same process doing
nothing but importing what ``check`` imports and building one scenario.  CPU
time is what "on one core" means here: on a shared machine wall time also
counts the other jobs (the load average is printed).  ``--vs SRC`` runs the
same with ``PYTHONPATH=SRC`` (another checkout's ``src``) and prints the
ratio per scenario.

Python's bytecode cache is on, in a scratch folder per source tree
(``PYTHONPYCACHEPREFIX``; one run first fills it), as for an installed
package: a checkout run with ``PYTHONDONTWRITEBYTECODE=1`` and no
``__pycache__`` compiles every module at every start (about 0.1 s more).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SEED_BUGS = [
    "stray-ipi",
    "stray-ipi@2vcpu",
    "stray-ipi@guard-only",
    "p8-idle-lockup",
    "smt-vcore@late-join",
    "signal-entry-race",
    "signal-entry-race@resched",
    "signal-entry-race@radix-nmi",
    "hmi-tb-resync",
    "hmi-tb-resync@split2",
    "hmi-tb-resync@split4",
]


_CACHES: dict[str | None, str] = {}


def _env(src: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    # Absolute: the runs start in a scratch folder (a relative "src" would
    # silently fall back to the installed package).
    env["PYTHONPATH"] = os.pathsep.join(str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if src not in _CACHES:
        _CACHES[src] = tempfile.mkdtemp(prefix="vcoresim-pycache-")
    env["PYTHONPYCACHEPREFIX"] = _CACHES[src]
    return env


def _run(argv: list[str], src: str | None) -> tuple[float, float, str]:
    env = _env(src)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run(argv, cwd=d, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, p.stdout


def _argv(name: str, *flags: str) -> list[str]:
    exe = str(Path(sys.executable).with_name("vcoresim"))
    head = [exe] if Path(exe).exists() else [sys.executable, "-m", "vcoresim.cli"]
    return [*head, "check", name, "--quiet", *flags]


def measure(name: str, runs: int, src: str | None) -> dict[str, Any]:
    _run(_argv(name, "--json"), src)  # fills the bytecode cache (not counted)
    walls, cpus, texts = [], [], []
    doc: dict[str, Any] = {}
    for _ in range(runs):
        wall, cpu, out = _run(_argv(name, "--json"), src)
        walls.append(wall)
        cpus.append(cpu)
        try:
            doc = json.loads(out)
        except json.JSONDecodeError:
            doc = {"verdict": "error"}
        texts.append(_run(_argv(name), src)[1])
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "text": statistics.median(texts), "doc": doc}


def floor(runs: int, src: str | None) -> tuple[float, float]:
    code = "import vcoresim.cli.check, vcoresim.kvm.model; from vcoresim.scenarios.registry import get_scenario; get_scenario('stray-ipi').make({})"
    _run([sys.executable, "-c", code], src)
    res = [_run([sys.executable, "-c", code], src) for _ in range(runs)]
    return statistics.median(r[0] for r in res), statistics.median(r[1] for r in res)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", default=SEED_BUGS)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vs", metavar="SRC", help="also run with PYTHONPATH=SRC and print the ratio")
    args = ap.parse_args()
    con = Console(width=200)
    con.print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    t = Table(title=f"Seed bugs end to end (vcoresim check NAME): medians of {args.runs} runs", title_justify="left")
    cols = ["scenario", "verdict", "wall s", "CPU s", "CPU s (text)", "executions", "steps", "trace steps (found)"]
    if args.vs:
        cols += ["CPU s (--vs)", "CPU ratio"]
    for c in cols:
        t.add_column(c, justify="left" if c in ("scenario", "verdict") else "right")
    for name in args.scenarios:
        r = measure(name, args.runs, None)
        d = r["doc"]
        stats = d.get("stats") or {}
        sh = d.get("shrink") or {}
        row = [name, f"{d.get('verdict')} ({d.get('invariant')})", f"{r['wall']:.2f}", f"{r['cpu']:.2f}", f"{r['text']:.2f}", f"{stats.get('executions', '-')}", f"{stats.get('steps', '-')}", f"{sh.get('steps_after', '-')} ({sh.get('steps_before', '-')})"]
        if args.vs:
            o = measure(name, args.runs, args.vs)
            row += [f"{o['cpu']:.2f}", f"{r['cpu'] / o['cpu']:.2f}"]
        t.add_row(*row)
    con.print(t)
    w, c = floor(args.runs, None)
    line = f"floor (importing what check imports and building one scenario): wall {w:.2f} s, CPU {c:.2f} s"
    if args.vs:
        w2, c2 = floor(args.runs, args.vs)
        line += f"; --vs: wall {w2:.2f} s, CPU {c2:.2f} s"
    con.print(line)
    for d in _CACHES.values():
        shutil.rmtree(d, ignore_errors=True)
    con.print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
