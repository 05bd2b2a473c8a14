"""Swarm checking: many independent runs (seeds x scenario variants), merged.

Each run is one ``check`` of one scenario with one seed (random or PCT
sampling, or ``auto``), shrinking its counterexample where it ran.  Results
are merged: counterexamples are folded when they violate the same property
with the same shrunk schedule (its hash), so a bug found by 40 seeds is
listed once, with the seeds that found it.  The runs go to a Ray cluster
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
    key: str  # invariant + shrunk schedule hash
    message: str
    trace: dict[str, Any]  # the trace document of the first run that found it
    seeds: list[int] = field(default_factory=list)


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
        r = check(program, strategy=run["strategy"], bounds=Bounds(**b), seed=run["seed"], trace_out=path, stop=stop)
        trace = json.loads(path.read_text()) if r.trace else None
    return {"scenario": run["scenario"], "seed": run["seed"], "verdict": r.verdict, "invariant": r.invariant, "message": r.message, "stats": r.stats.as_dict(), "trace": trace}


def fold_key(invariant: str, schedule: list[Any]) -> str:
    return f"{invariant}:{hashlib.sha256(json.dumps(schedule).encode()).hexdigest()[:12]}"


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
        key = fold_key(r["invariant"], r["trace"]["schedule"])
        ce = found.get(key)
        if ce is None:
            ce = found[key] = Counterexample(r["scenario"], r["invariant"], key, r["message"], r["trace"])
        ce.seeds.append(r["seed"])
    return SwarmResult(len(results), executions, steps, list(found.values()), clean)


def runs_for(programs: list[tuple[str, dict[str, Any]]], seeds: range, strategy: str, bounds: Bounds) -> list[dict[str, Any]]:
    return [
        {"scenario": name, "config": config, "seed": s, "strategy": strategy, "bounds": bounds.as_dict()}
        for name, config in programs
        for s in seeds
    ]


def swarm_local(runs: list[dict[str, Any]], workers: int, stop: Callable[[], bool] | None = None) -> list[dict[str, Any]]:
    """The runs in order, in this process or ``workers`` processes; ``stop`` (Ctrl-C)
    ends the swarm early: the runs finished so far are returned (in run order)."""
    out: list[dict[str, Any]] = []
    if workers <= 1:
        for r in runs:
            if stop is not None and stop():
                break
            res = run_one(r, stop)
            if res["verdict"] != "incomplete" or not (stop is not None and stop()):
                out.append(res)  # a run cut short by the interruption does not count
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
