"""KVM scenario benchmark: time to the first violation (or to cover the bounds).

    python benchmarks/kvm.py [SCENARIO ...]

Each case runs `check` with the scenario's default strategy, bounds and seed
in its own process, so the peak RSS column is that case's alone.  Wall time
is process start to verdict and trace written.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from rich.console import Console
from rich.table import Table

CASES = [
    "stray-ipi",
    "stray-ipi@2vcpu",
    "stray-ipi@guard-only",
    "stray-ipi@fixed",
    "stray-ipi@fixed-2vcpu",
    "p8-idle-lockup@buggy",
    "p8-idle-lockup@fixed",
    "p8-idle-lockup@before",
    "smt-vcore",
    "smt-vcore@4vcpu",
    "smt-vcore@late-join",
    "smt-vcore@late-join-fixed",
    "signal-entry-race",
    "signal-entry-race@fixed",
    "signal-entry-race@resched",
    "signal-entry-race@resched-fixed",
    "signal-entry-race@radix-fixed",
    "signal-entry-race@radix-nmi",
    "signal-entry-race@radix-nmi-fixed",
    "hmi-tb-resync",
    "hmi-tb-resync@fixed",
    "hmi-tb-resync@split2",
    "hmi-tb-resync@split2-fixed",
    "hmi-tb-resync@split4",
    "hmi-tb-resync@split4-fixed",
    "hmi-tb-resync@two-guests-fixed",
]

CHILD = """
import json, resource, sys, tempfile, pathlib
from vcoresim.check.driver import check
from vcoresim.scenarios.registry import get_scenario
sc = get_scenario(sys.argv[1])
out = pathlib.Path(tempfile.mkdtemp()) / "t.json"
r = check(sc.make({}), strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, trace_out=out)
print(json.dumps({"verdict": r.verdict, "invariant": r.invariant, "coverage": r.coverage,
                  "bounds": r.bounds, **r.stats.as_dict(),
                  "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main(cases: list[str]) -> None:
    t = Table(title="vcoresim KVM scenarios (default strategy, one process per case)", title_justify="left")
    for col in ("case", "verdict", "coverage", "max_preemptions", "wall s", "executions", "states", "steps", "steps/s", "peak RSS MiB"):
        t.add_column(col, justify="left" if col in ("case", "verdict", "coverage") else "right")
    for case in cases:
        start = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", CHILD, case], capture_output=True, text=True, check=True)
        wall = time.perf_counter() - start
        r = json.loads(p.stdout.strip().splitlines()[-1])
        verdict = r["verdict"] + (f" ({r['invariant']})" if r["invariant"] else "")
        rate = r["steps"] / r["seconds"] if r["seconds"] else 0
        t.add_row(case, verdict, r["coverage"], str(r["bounds"]["max_preemptions"]), f"{wall:.2f}", str(r["executions"]), str(r["states"]), str(r["steps"]), f"{rate:,.0f}", f"{r['rss_mib']:.0f}")
    Console(width=200).print(t)


if __name__ == "__main__":
    main(sys.argv[1:] or CASES)
