"""Engine throughput: ``python benchmarks/engine.py [--quick] [--profile]``.

For each example model under random and exhaustive: executions, steps, steps/s,
executions/s, wall time and peak traced memory; then a synthetic throughput case
(4 actors x 500 visible loads/stores on 4 locations) under random, which measures
raw steps/s of the engine's step loop.  Single process, one core.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import resource
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # run from a checkout too

from vcoresim.engine.ops import Load, Store  # noqa: E402
from vcoresim.engine.strategies.base import Bounds, Exploration  # noqa: E402
from vcoresim.engine.strategies.dpor import exhaustive  # noqa: E402
from vcoresim.engine.strategies.sampling import random_walk  # noqa: E402
from vcoresim.engine.world import Body, Program, World  # noqa: E402
from vcoresim.examples import EXAMPLES, example_program  # noqa: E402


def synthetic(actors: int = 4, ops: int = 500, locs: int = 4) -> Program:
    """Many visible steps and no monitors: what the step loop itself costs."""

    def body(i: int) -> Body:
        for k in range(ops // 2):
            loc = f"l{(i + k) % locs}"
            v = yield Load(loc)
            yield Store(loc, v + 1)

    def build(w: World) -> None:
        for j in range(locs):
            w.loc(f"l{j}", 0)
        for i in range(actors):
            w.spawn(f"A{i}", body(i))

    return Program("synthetic", build)


def measure(run: Callable[[], Exploration]) -> tuple[Exploration, float, int]:
    """Wall time measured without tracemalloc (it slows allocation ~2x); peak memory
    from a second, traced run."""
    gc.collect()
    t0 = time.perf_counter()
    res = run()
    wall = time.perf_counter() - t0
    tracemalloc.start()
    run()
    _cur, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return res, wall, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer executions (a smoke run)")
    ap.add_argument("--profile", action="store_true", help="cProfile the synthetic case, print the top functions")
    args = ap.parse_args()
    n_random = 500 if args.quick else 5000
    n_synth = 5 if args.quick else 40

    t = Table(title=f"vcoresim engine (Python {sys.version.split()[0]}, one core)", title_justify="left")
    for col in ("model", "strategy", "verdict", "executions", "steps", "steps/s", "executions/s", "wall s", "peak MiB"):
        t.add_column(col, justify="left" if col in ("model", "strategy", "verdict") else "right")

    cases: list[tuple[str, str, Callable[[], Exploration]]] = []
    for name in EXAMPLES:
        prog = example_program(name)
        # the sampler stops at the first violation, so only the models that hold
        # run the whole sample; the buggy ones show the cost of finding their bug
        cases.append((name, "random", lambda p=prog: random_walk(p, Bounds(max_executions=n_random), seed=1)))
        cases.append((name, "exhaustive", lambda p=prog: exhaustive(p, Bounds())))
    synth = synthetic()
    cases.append(("synthetic 4x500", "random", lambda: random_walk(synth, Bounds(max_executions=n_synth, max_steps=10_000), seed=1)))

    for name, strat, run in cases:
        res, wall, peak = measure(run)
        s = res.stats
        verdict = res.violation.name if res.violation else ("holds" if res.complete else "incomplete")
        t.add_row(
            name,
            strat,
            verdict,
            f"{s.executions:,}",
            f"{s.steps:,}",
            f"{s.steps / wall:,.0f}",
            f"{s.executions / wall:,.0f}",
            f"{wall:.3f}",
            f"{peak / 2**20:.2f}",
        )
    console = Console(width=None if sys.stdout.isatty() else 140)
    console.print(t)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    console.print(f"process peak RSS (ru_maxrss): {rss / 1024:.1f} MiB; 'peak MiB' above is tracemalloc's peak of one run")

    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        random_walk(synth, Bounds(max_executions=max(2, n_synth // 4), max_steps=10_000), seed=1)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
