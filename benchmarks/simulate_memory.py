"""Memory of a long timed run: RSS against simulated time (issue 16).

    python benchmarks/simulate_memory.py                       # smt-vcore, 200 ms, streamed metrics
    python benchmarks/simulate_memory.py --keep-events         # the same, keeping the event log (what --plot/--perfetto need)
    python benchmarks/simulate_memory.py --scenario p8-idle-lockup@fixed --duration-ms 100

``vcoresim simulate`` computes its metrics as the run goes
(``simulate.metrics.MetricsStream``) and keeps the event log only when
``--perfetto`` or ``--plot`` asks for it, so RSS should plateau: it is
printed every ``--every-ms`` of simulated time, with the events, steps and
the growth over the second half of the run.  Each run is one process
(``resource.ru_maxrss`` is per process).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from vcoresim.scenarios.registry import get_scenario  # noqa: E402
from vcoresim.simulate.metrics import MetricsStream  # noqa: E402
from vcoresim.simulate.timed import TimedDriver  # noqa: E402


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="smt-vcore")
    ap.add_argument("--duration-ms", type=int, default=200)
    ap.add_argument("--every-ms", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-events", action="store_true", help="also keep the event log (as --perfetto/--plot do)")
    args = ap.parse_args()
    program = get_scenario(args.scenario).make({})
    stream = MetricsStream()
    driver = TimedDriver(program, seed=args.seed, sink=stream.feed, keep_events=args.keep_events)
    samples: list[tuple[float, float, int, int]] = []
    step = driver._step
    next_ms = [args.every_ms]

    def probe(a, t):  # type: ignore[no-untyped-def]
        step(a, t)
        if t >= next_ms[0] * 1_000_000:
            samples.append((t / 1e6, rss_mib(), driver.n_events, driver.counts["steps"]))
            next_ms[0] += args.every_ms

    driver._step = probe  # type: ignore[method-assign]
    start = time.perf_counter()
    result = driver.run(args.duration_ms * 1_000_000)
    metrics = stream.finish(result)
    wall = time.perf_counter() - start
    mode = "event log kept" if args.keep_events else "streamed metrics"
    print(f"{args.scenario}, {args.duration_ms} ms simulated, seed {args.seed}, {mode}: {wall:.1f} s wall, outcome {result.outcome}")
    print(f"{'simulated ms':>12} {'RSS MiB':>8} {'events':>8} {'steps':>9}")
    for ms, rss, ev, st in samples:
        print(f"{ms:>12.1f} {rss:>8.1f} {ev:>8} {st:>9}")
    half = [s for s in samples if s[0] >= args.duration_ms / 2]
    if len(half) >= 2:
        print(f"RSS growth over the second half: {half[-1][1] - half[0][1]:+.1f} MiB ({half[0][0]:.0f} -> {half[-1][0]:.0f} ms)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB; {result.counts['events']} events, {metrics.totals['entries']} guest entries")
    return 0


if __name__ == "__main__":
    sys.exit(main())
