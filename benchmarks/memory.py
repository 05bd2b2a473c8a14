"""Cost of the weak memory models over sc on the built-in scenarios.

    python benchmarks/memory.py            # --quick: fewer executions; --executions N

For each scenario and model: N seeded random walks (the same seed per model),
run to their end whatever they find (so every model does the same work), and
the exhaustive litmus runs.  Prints steps per execution, steps/s,
executions/s, wall time, and the process peak RSS.  The walks explore
different interleavings under each model, so steps/execution is the figure
that says how much longer a weak execution is (commits and propagations are
steps), steps/s how much dearer a step is.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from vcoresim.engine.memory import MODELS, with_memory_model  # noqa: E402
from vcoresim.engine.runtime import Execution  # noqa: E402
from vcoresim.litmus.parser import parse_file  # noqa: E402
from vcoresim.litmus.runner import run, shipped  # noqa: E402
from vcoresim.scenarios.registry import get_scenario  # noqa: E402

SCENARIOS = ("example/store-buffering", "example/peterson", "stray-ipi", "stray-ipi@fixed", "p8-idle-lockup@fixed", "smt-vcore")


def walks(name: str, model: str, n: int, seed: int) -> tuple[int, int, float]:
    sc = get_scenario(name)
    prog = with_memory_model(sc.make({}), model)
    rng = random.Random(seed)
    steps = violations = 0
    t0 = time.perf_counter()
    for _ in range(n):
        ex = Execution(prog)
        while ex.violation is None and len(ex.schedule) < sc.bounds.max_steps:
            en = ex.enabled()
            if not en:
                break
            idx = en[rng.randrange(len(en))] if len(en) > 1 else en[0]
            k = ex.alternatives(idx)
            ex.step(idx, rng.randrange(k) if k > 1 else 0)
        steps += ex.steps
        violations += ex.violation is not None
    return steps, violations, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20 executions per case")
    ap.add_argument("--executions", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n = 20 if args.quick else args.executions
    con = Console(width=160)
    t = Table(title=f"random walks, {n} executions per case, seed {args.seed} (Python {sys.version.split()[0]}, one core)", title_justify="left")
    for col in ("scenario", "model", "steps/exec", "vs sc", "steps/s", "executions/s", "violations", "wall s"):
        t.add_column(col, justify="left" if col in ("scenario", "model") else "right")
    for name in SCENARIOS:
        base = None
        for model in MODELS:
            steps, bad, secs = walks(name, model, n, args.seed)
            per = steps / n
            base = base or per
            t.add_row(name, model, f"{per:,.1f}", f"x{per / base:.2f}", f"{steps / secs:,.0f}", f"{n / secs:,.1f}", str(bad), f"{secs:.2f}")
    con.print(t)
    lt = Table(title="litmus: every shipped test, exhaustive DPOR", title_justify="left")
    for col in ("model", "tests", "executions", "states", "wall s"):
        lt.add_column(col, justify="left" if col == "model" else "right")
    tests = [parse_file(p) for p in shipped()]
    for model in MODELS:
        t0 = time.perf_counter()
        outs = [run(lit, model) for lit in tests]
        lt.add_row(model, str(len(outs)), f"{sum(o.executions for o in outs):,}", f"{sum(o.states for o in outs):,}", f"{time.perf_counter() - t0:.2f}")
    con.print(lt)
    con.print(f"process peak RSS (ru_maxrss): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
