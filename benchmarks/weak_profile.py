"""Where a DPOR search's executions go under a weak memory model.

    python benchmarks/weak_profile.py stray-ipi@fixed --memory-model power \\
        --max-preemptions 0 --max-executions 500 [--cache] [--top 12]

Runs the exhaustive search (DPOR + sleep sets; ``--cache``: the state-cache
search) of a scenario within an execution budget and prints:

- executions, states, steps, steps per execution, executions that hit the
  step bound (truncated) and CPU seconds;
- **backtrack choices**: at every node the search returns to, which actor
  (or which branch of it: a load's value, a buffer's commit, a propagation's
  location) it takes next, counted by actor;
- **races**: every latest race the analysis finds, counted by (pending
  actor, actor of the earlier step, the names they conflict on).

It instruments ``engine/strategies/dpor.py`` from outside (wrapping
``Node.todo`` and ``HappensBefore.last_race``), so it measures the search as
shipped; docs/memory-models.md ("Why power does not complete on the KVM
scenarios") quotes its output.
"""

from __future__ import annotations

import argparse
import collections
import time
from typing import Any

from vcoresim.engine.memory import with_memory_model
from vcoresim.engine.strategies import dpor as D
from vcoresim.engine.strategies.base import Bounds
from vcoresim.scenarios.registry import get_scenario


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenario")
    ap.add_argument("--memory-model", default="power")
    ap.add_argument("--max-preemptions", type=int, default=0)
    ap.add_argument("--max-executions", type=int, default=500)
    ap.add_argument("--max-steps", type=int, default=4000)
    ap.add_argument("--cache", action="store_true", help="the state-cache search (full expansion under a weak model)")
    ap.add_argument("--top", type=int, default=12)
    args = ap.parse_args()

    program = with_memory_model(get_scenario(args.scenario).make({}), args.memory_model)
    names = [a.name for a in program.execution(program).actors]
    choices: collections.Counter[tuple[str, bool]] = collections.Counter()
    races: collections.Counter[tuple[str, str, tuple[str, ...]]] = collections.Counter()
    todo, last_race = D.Node.todo, D.HappensBefore.last_race

    def counted_todo(node: D.Node) -> Any:
        t = todo(node)
        if t is not None and node.done:  # a node the search came back to
            choices[(names[t[0]], t[1] > 0)] += 1
        return t

    def counted_race(hb: D.HappensBefore, p: int, fp: Any, vc: list[int]) -> int | None:
        i = last_race(hb, p, fp, vc)
        if i is not None:
            (r, w), (r2, w2) = fp, hb.step_fp[i]
            on = (set(w) & (set(r2) | set(w2))) | (set(r) & set(w2))
            races[(names[p], names[hb.step_proc[i]], tuple(sorted(on))[:3])] += 1
        return i

    D.Node.todo = counted_todo  # type: ignore[method-assign]
    D.HappensBefore.last_race = counted_race  # type: ignore[method-assign]
    t0 = time.process_time()
    res = D.exhaustive(program, Bounds(max_steps=args.max_steps, max_preemptions=args.max_preemptions, max_executions=args.max_executions), dpor=True, cache=args.cache)
    cpu = time.process_time() - t0
    s = res.stats
    print(f"{args.scenario} under {args.memory_model}, max_preemptions {args.max_preemptions}, {'state cache' if args.cache else 'DPOR + sleep sets'}")
    print(f"  complete: {res.complete}; executions {s.executions:,}, states {s.states:,}, steps {s.steps:,} ({s.steps / max(1, s.executions):,.0f} per execution), truncated at the step bound {s.truncated:,}, CPU {cpu:.1f} s")
    print(f"  backtrack choices (actor, branch > 0): {sum(choices.values()):,}")
    for (actor, branch), n in choices.most_common(args.top):
        print(f"    {n:>8,}  {actor}{' (another branch)' if branch else ''}")
    print(f"  latest races (pending actor <- earlier step's actor: names): {sum(races.values()):,}")
    for (p, q, on), n in races.most_common(args.top):
        print(f"    {n:>8,}  {p} <- {q}: {', '.join(on)}")


if __name__ == "__main__":
    main()
