"""Cost of exact preemption bounds in DPOR (``bounded_por=True``: BPOR's
conservative backtrack points, no sleep sets) against the default heuristic
bound, on every built-in scenario with a preemption bound: DPOR at bounds
0, 1, ... up to the scenario's, as ``auto``'s exhaustive phases (no
sampling phase), stopping at a violation.  Prints, per mode, the verdict of
the last phase, executions, states and CPU seconds; ``--cap`` seconds of
wall clock per scenario and mode (then "cut").

    PYTHONPATH=src python benchmarks/bpor.py [--cap 30] [SCENARIO...]
"""

from __future__ import annotations

import argparse
import time

from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.scenarios.registry import builtin_scenarios


def run(name: str, bpor: bool, cap: float) -> tuple[str, int, int, float]:
    sc = builtin_scenarios()[name]
    prog = sc.make({})
    k = sc.bounds.max_preemptions
    assert k is not None
    execs = states = 0
    t0, w0 = time.process_time(), time.monotonic()
    verdict = "holds"
    for limit in range(k + 1):
        left = cap - (time.monotonic() - w0)
        res = exhaustive(prog, Bounds(sc.bounds.max_steps, limit, None, max(left, 0.001)), dpor=True, cache=False, bounded_por=bpor)
        execs += res.stats.executions
        states += res.stats.states
        if res.violation is not None:
            verdict = f"violation {res.violation.name} (bound {limit})"
            break
        if not res.complete:
            verdict = f"cut at {cap:.0f} s (bound {limit})"
            break
        if res.stats.truncated:
            verdict = "bounded"
    return verdict, execs, states, time.process_time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cap", type=float, default=30.0)
    ap.add_argument("scenarios", nargs="*")
    args = ap.parse_args()
    names = args.scenarios or [n for n, s in builtin_scenarios().items() if s.bounds.max_preemptions is not None]
    tot = [0.0, 0.0]
    for name in names:
        k = builtin_scenarios()[name].bounds.max_preemptions
        for i, bpor in enumerate((False, True)):
            v, e, s, cpu = run(name, bpor, args.cap)
            tot[i] += cpu
            print(f"{name:32} k={k} {'bpor ' if bpor else 'plain'} {v:45} {e:>8,} execs {s:>9,} states {cpu:6.1f} s", flush=True)
    print(f"total CPU s: plain {tot[0]:.1f}, bpor {tot[1]:.1f}")


if __name__ == "__main__":
    main()
