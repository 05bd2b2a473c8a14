"""Swarm checking: many independent runs (seeds x scenario variants), merged.

Each run is one ``check`` of one scenario with one seed (random or PCT
sampling, or ``auto``), shrinking its counterexample where it ran.  Results
are merged: counterexamples are folded when they are the same race: the
same property violated with every actor at the same code (the call stack and
operation of each actor's last step in the shrunk trace, thread numbers
aside), so a bug found by 40 seeds along 40 schedules, or with its two
conflicting steps in either order, is listed once, with the seeds that found
it.  (Folding by schedule listed each interleaving of one race apart.)  The runs go to a Ray cluster
(``vcoresim[ray]``, see ``ray_backend``) or to local processes.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcoresim.check.driver import check
from vcoresim.check.ray_backend import connect
from vcoresim.engine.strategies.base import Bounds
from vcoresim.scenarios.registry import program_for


@dataclass
class SwarmRun:
    scenario: str
    config: dict[str, Any]
    seed: int
    strategy: str
    bounds: dict[str, Any]


@dataclass
class Counterexample:
    scenario: str
    invariant: str
    key: str  # invariant + hash of the violating step's call stacks
    message: str
    trace: dict[str, Any]  # the shortest trace of the race among the runs
    seeds: list[int] = field(default_factory=list)
    where: str = ""  # the violating step's innermost function and operation


@dataclass
class SwarmResult:
    runs: int
    executions: int
    steps: int
    counterexamples: list[Counterexample]
    clean: int  # runs that found nothing


def run_one(run: dict[str, Any], stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """One swarm run (in a worker process or a Ray task): JSON in, JSON out."""
    program = program_for(run["scenario"], run["config"])
    b = run["bounds"]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.json"
        # Shrunk without the step budget: runs are folded by where the shrunk trace
        # fails, and one race shrunk part way can fail at another step.
        r = check(program, strategy=run["strategy"], bounds=Bounds(**b), seed=run["seed"], trace_out=path, stop=stop, full_shrink=True)
        trace = json.loads(path.read_text()) if r.trace else None
    return {"scenario": run["scenario"], "seed": run["seed"], "verdict": r.verdict, "invariant": r.invariant, "message": r.message, "stats": r.stats.as_dict(), "trace": trace}


def race_of(trace: dict[str, Any]) -> list[list[str]]:
    """Where every actor is when the property fails: for each actor, the call
    stack and operation of its last step in the (shrunk) trace, thread names
    left out, sorted.  One race reached along different schedules, or with its
    two conflicting steps in either order, gives the same list."""
    last: dict[str, list[str]] = {}
    for step in trace.get("steps") or []:
        ops = step.get("ops") or []
        if ops:
            op = ops[-1]
            last[str(step.get("actor"))] = [str(f) for f in op.get("stack", [])] + [str(op.get("op", "")).split(" ", 1)[0]]
    return sorted({json.dumps(v): v for v in last.values()}.values())


def fold_key(invariant: str, trace: dict[str, Any]) -> str:
    """Same race, same key: the property and the code of the step that violated it."""
    sig = json.dumps(race_of(trace))
    return f"{invariant}:{hashlib.sha256(sig.encode()).hexdigest()[:12]}"


def _where(trace: dict[str, Any]) -> str:
    """The violating step's innermost function and operation (``power7_wakeup_noloss (resume_frame)``)."""
    steps = trace.get("steps") or []
    if not steps or not steps[-1].get("ops"):
        return "the initial state"
    op = steps[-1]["ops"][-1]
    stack = op.get("stack") or ["-"]
    return f"{stack[-1]} ({str(op.get('op', '')).split(' ', 1)[0]})"


def merge(results: list[dict[str, Any]]) -> SwarmResult:
    """Fold duplicate counterexamples; deterministic: results are taken in run order."""
    found: dict[str, Counterexample] = {}
    executions = steps = clean = 0
    for r in results:
        executions += r["stats"]["executions"]
        steps += r["stats"]["steps"]
        if r["trace"] is None:
            clean += 1
            continue
        key = fold_key(r["invariant"], r["trace"])
        ce = found.get(key)
        if ce is None:
            ce = found[key] = Counterexample(r["scenario"], r["invariant"], key, r["message"], r["trace"], where=_where(r["trace"]))
        elif len(r["trace"]["schedule"]) < len(ce.trace["schedule"]):
            ce.trace, ce.message = r["trace"], r["message"]  # keep the shortest trace of the race
        ce.seeds.append(r["seed"])
    return SwarmResult(len(results), executions, steps, list(found.values()), clean)


def runs_for(programs: list[tuple[str, dict[str, Any]]], seeds: range, strategy: str, bounds: Bounds) -> list[dict[str, Any]]:
    return [
        {"scenario": name, "config": config, "seed": s, "strategy": strategy, "bounds": bounds.as_dict()}
        for name, config in programs
        for s in seeds
    ]


def swarm_local(
    runs: list[dict[str, Any]],
    workers: int,
    stop: Callable[[], bool] | None = None,
    done: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """The runs in order, in this process or ``workers`` processes; ``stop`` (Ctrl-C)
    ends the swarm early: the runs finished so far are returned (in run order).
    ``done(k, result)`` after the k-th (for a progress display)."""
    out: list[dict[str, Any]] = []
    if workers <= 1:
        for r in runs:
            if stop is not None and stop():
                break
            res = run_one(r, stop)
            if res["verdict"] != "incomplete" or not (stop is not None and stop()):
                out.append(res)  # a run cut short by the interruption does not count
                if done is not None:
                    done(len(out), res)
        return out
    from vcoresim.check.parallel import worker_signals

    pool = mp.get_context("fork").Pool(workers, initializer=worker_signals)
    try:
        pending = [pool.apply_async(run_one, (r,)) for r in runs]
        for p in pending:
            while not p.ready():
                p.wait(0.2)
                if stop is not None and stop():  # every run finished so far, in run order
                    return [q.get() for q in pending if q.ready() and q.successful()]
            out.append(p.get())
            if done is not None:
                done(len(out), out[-1])
        return out
    finally:
        pool.terminate()
        pool.join()


def swarm_ray(address: str, runs: list[dict[str, Any]], stop: Callable[[], bool] | None = None) -> list[dict[str, Any]]:
    """The swarm's runs as Ray tasks on the cluster at ``address``; ``stop`` ends it
    early with the runs finished so far (in run order)."""
    ray = connect(address, stop=stop)
    task = ray.remote(run_one)
    refs = [task.remote(r) for r in runs]
    done: dict[int, dict[str, Any]] = {}
    index = {ref: i for i, ref in enumerate(refs)}
    left = list(refs)
    while left:
        ready, left = ray.wait(left, num_returns=1, timeout=0.2)
        for ref in ready:
            done[index[ref]] = ray.get(ref)
        if stop is not None and stop():
            for ref in left:
                ray.cancel(ref, force=True)
            break
    return [done[i] for i in sorted(done)]  # every run finished, in run order
