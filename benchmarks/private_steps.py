"""How many steps touch only locations private to their actor (the potential
of fusing them into the actor's step; docs/exploration.md, "Reductions").

    python benchmarks/private_steps.py                       # the default cases
    python benchmarks/private_steps.py stray-ipi-p8-r1.toml@k2 --walks 200

Uniform random walks (seed 1) of each case under benchmarks/scenarios/; a
location is private if one actor alone touched it (read or wrote it) in
the whole sample and no monitor reads it.  A step is private if every
location of its footprint is private to its actor.  An upper bound: a
location one actor touched in the sample may be touched by another in a
run the sample missed.
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from pathlib import Path

from vcoresim.engine.runtime import GLOBAL, Execution
from vcoresim.scenarios.registry import get_scenario

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
CASES = ["stray-ipi-p8-r1.toml@k2", "stray-ipi-p8-r3.toml@k3"]


def measure(case: str, walks: int, max_steps: int = 4000) -> tuple[int, int, int, int]:
    """(steps, private steps, locations, private locations) over ``walks`` random walks."""
    program = get_scenario(str(SCENARIOS / case)).make({})
    rng = random.Random(1)
    who: dict[str, set[int]] = defaultdict(set)
    steps: list[tuple[int, tuple[str, ...]]] = []
    monitored: dict[str, tuple[str, ...]] = {}
    for _ in range(walks):
        ex = Execution(program)
        monitored = ex._alias
        while ex.violation is None and len(ex.schedule) < max_steps:
            en = ex.enabled()
            if not en:
                break
            q = rng.choice(en)
            ex.step(q, rng.randrange(ex.alternatives(q)))
        for (q, _alt), (reads, writes) in zip(ex.schedule, ex.footprints):
            locs = (*reads, *writes)
            for loc in locs:
                who[loc].add(q)
            steps.append((q, locs))

    def private(loc: str, q: int) -> bool:
        return loc != GLOBAL and not loc.startswith("mon:") and loc not in monitored and who[loc] == {q}

    n_private = sum(1 for q, locs in steps if all(private(loc, q) for loc in locs))
    locs_private = sum(1 for loc, s in who.items() if len(s) == 1 and private(loc, next(iter(s))))
    return len(steps), n_private, len(who), locs_private


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cases", nargs="*", help="scenario file[@variant] under benchmarks/scenarios (default: two of the scaled family)")
    ap.add_argument("--walks", type=int, default=100, help="random walks per case (default 100)")
    args = ap.parse_args()
    for case in args.cases or CASES:
        n, p, locs, plocs = measure(case, args.walks)
        print(f"{case}: {args.walks} walks, {n:,} steps, {p:,} private ({100 * p / max(n, 1):.1f}%); {plocs} of {locs} locations private")


if __name__ == "__main__":
    main()
