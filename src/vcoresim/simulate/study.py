"""The policy study seed 001 invites: guest throughput and latency against threads per vcore.

Under seed 001's gang-entry policy (a vcore's runnable vCPUs enter and leave
the guest together; the runner waits until no vCPU of the vcore is busy in
the host), one VM of N vCPUs runs on one core, N = 1, 2, 4 on POWER7 and
1, 2, 4, 8 on POWER8, with the workload of the ``smt-vcore`` scenario (or
``--scenario``'s).  Kernels: POWER7 runs the scenario's kernel; POWER8 runs
v4.17 (the POWER8 idle code needs the seed-000 guard and real-mode nap).
Every run: same seed, same duration; a run that stops early (an invariant
violated in the timed run) says so in ``outcome`` and ``end_ns``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from vcoresim.simulate.compare import run_config
from vcoresim.simulate.timed import Timing

GRID: tuple[tuple[str, tuple[int, ...]], ...] = (("POWER7", (1, 2, 4)), ("POWER8", (1, 2, 4, 8)))
POWER8_KERNEL = "v4.17"


def study(
    config: dict[str, Any],
    *,
    duration_ns: int,
    seed: int,
    timing: Timing,
    stop: Callable[[], bool] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[dict[str, Any]]:
    """One row per configuration of :data:`GRID`; ``stop`` (Ctrl-C) ends the study
    early (the rows not run are left out); ``progress(label, k, n)`` before the
    k-th of n runs."""
    rows = []
    total = sum(len(c) for _cpu, c in GRID)
    for cpu, counts in GRID:
        for n in counts:
            if stop is not None and stop():
                return rows
            if progress is not None:
                progress(f"{cpu}, {n} threads/vcore", len(rows) + 1, total)
            doc = copy.deepcopy(config)
            doc.pop("patches", None)
            doc["name"] = f"study[{cpu}, {n} threads/vcore]"
            doc["machine"] = {**doc["machine"], "cpu": cpu, "cores": 1, "threads_per_core": None, "split_core": 1}
            doc["vm"] = [{**doc["vm"][0], "vcpus": list(range(n))}]
            if cpu == "POWER8":
                doc["kernel"] = {"preset": POWER8_KERNEL, "patches": {}}
            doc["variants"] = {}
            m = run_config(doc, duration_ns=duration_ns, seed=seed, timing=timing, stop=stop)
            w, x = m.latencies["wake_to_entry"], m.latencies["exit_to_entry"]
            rows.append(
                {
                    "cpu": cpu,
                    "threads": n,
                    "guest_cpus": m.totals["guest_cpus"],
                    "guest_cpus_per_vcpu": round(m.totals["guest_cpus"] / n, 4),
                    "work_per_s": m.totals["work_per_s"],
                    "entries": m.totals["entries"],
                    "wake_to_entry_p50": w.p50,
                    "wake_to_entry_p99": w.p99,
                    "wake_to_entry_max": w.max,
                    "exit_to_entry_p99": x.p99,
                    "outcome": m.outcome,
                    "end_ns": m.end_ns,
                    "violation": (m.violation or {}).get("invariant"),
                }
            )
    return rows
