"""``--workers N``: one exhaustive DPOR search split across processes.

Work items are subtrees of the search: a schedule prefix (with its
footprints, so it replays cheaply), the nodes along it (enabled actors,
sleep sets, preemption counts) and, for a branch given away, which actors
to explore at its last node.  The first item is the whole tree.  A worker
runs DPOR on its item; whenever another worker is idle it gives away the
shallowest pending branch of its own search (marking it done locally: work
stealing by donation).  A race found in a subtree can point above the item
into a node some other search owns and may already have left: the worker
reports the backtrack points it would add there, and the parent turns each
into a branch item (a sound over-approximation: the branch gets the node's
sleep set without its owner's later siblings, and may be explored twice).
So every backtrack point serial DPOR would add is explored by someone: the
verdict and the coverage are those of the serial search.  Which
counterexample is reported and the statistics depend on which worker gets
there first (as with ``--max-seconds``), unlike a serial run.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import random
from collections.abc import Callable
from typing import Any

from vcoresim.engine.runtime import Violation
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, Stats
from vcoresim.engine.strategies.dpor import _params, exhaustive
from vcoresim.engine.world import Program

ROOT: dict[str, Any] = {"prefix": [], "prefix_fps": [], "frozen": [], "sleep": [], "preempt": 0, "prev": -1}


def run_item(
    program: Program,
    args: dict[str, Any],
    item: dict[str, Any],
    donate: Callable[[], bool] | None = None,
    on_donate: Callable[[dict[str, Any]], None] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """One work item's subtree; a JSON-able result (also what a Ray task returns)."""
    res = exhaustive(program, Bounds(args["max_steps"], args["max_preemptions"], None, None), dpor=True, root=item, donate=donate, on_donate=on_donate, progress=progress)
    out: dict[str, Any] = {"stats": res.stats.as_dict(), "cut": res.params.get("preemption_bound_cut", False), "prefix_backtracks": res.prefix_backtracks}
    if res.violation is not None:
        out["violation"] = res.violation.as_dict()
        out["schedule"] = [list(t) for t in res.schedule or []]
    return out


def branch_items(item: dict[str, Any], backtracks: list[tuple[int, list[int]]], issued: set[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """Branch items for the backtrack points a search reported for its prefix's nodes."""
    out = []
    for k, actors in backtracks:
        node = item["frozen"][k]
        taken = item["prefix"][k]
        explored = {d[0] for d in node.get("done", ())} | {taken[0]}
        for q in actors:
            key = (tuple(map(tuple, item["prefix"][:k])), q)
            if q in explored or q not in node["enabled"] or key in issued:
                continue
            issued.add(key)
            out.append(
                {
                    "prefix": item["prefix"][:k],
                    "prefix_fps": item["prefix_fps"][:k],
                    "frozen": item["frozen"][:k],
                    "sleep": node["sleep"],
                    "preempt": node["preempt"],
                    "prev": node["prev"],
                    "only": [q],
                    # What the node's owner had explored there when the item was made:
                    # the branch's sleep set as serial DPOR would give it, or smaller.
                    "done": [*node.get("done", ()), [taken[0], taken[1], item["prefix_fps"][k]]],
                }
            )
    return out


def worker_signals() -> None:
    """In a worker process: Ctrl-C is the parent's to handle (the terminal sends it
    to the whole process group), SIGTERM kills, and the worker dies with its
    parent (Linux ``PR_SET_PDEATHSIG``), so no worker outlives it or keeps its
    output open."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _worker(program: Program, args: dict[str, Any], tasks: Any, results: Any, idle: Any) -> None:
    worker_signals()

    def donate() -> bool:
        return idle.value > 0 and tasks.empty()

    def give(item: dict[str, Any]) -> None:
        results.put(("item", item))

    while True:
        with idle.get_lock():
            idle.value += 1
        item = tasks.get()
        with idle.get_lock():
            idle.value -= 1
        if item is None:
            return

        def report(st: Stats, _id: int = id(item)) -> None:
            results.put(("progress", os.getpid(), st.as_dict()))  # so budgets and progress see running items

        results.put(("done", item, run_item(program, args, item, donate, give, report), os.getpid()))


def parallel_exhaustive(
    program: Program,
    bounds: Bounds,
    workers: int,
    *,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
    inline_seed: int | None = None,
    resume: dict[str, Any] | None = None,
) -> Exploration:
    """``inline_seed``: run in this process, items in a seeded random order and
    donations at random points (tests use it: every order must be sound).

    A budget or ``stop`` (Ctrl-C) ends the search with a checkpoint
    (``Exploration.checkpoint``, kind ``parallel``): every work item not
    finished yet, queued or running (a running item restarts from its root
    on resume: sound, some work is done twice), the branch items already
    issued, and the finished items' statistics.  ``resume`` continues from
    one: same verdict and coverage (statistics count the repeated work)."""
    budget = Budget(bounds)
    total = Stats()
    args = {"max_steps": bounds.max_steps, "max_preemptions": bounds.max_preemptions}
    issued: set[tuple[Any, ...]] = set()
    cut = False
    violation: Violation | None = None
    schedule: list[tuple[int, int]] | None = None
    complete = True
    n_items = 1
    start_items: list[dict[str, Any]] = [ROOT]
    start_execs = 0
    if resume is not None:
        total = Stats(**resume["stats"])
        start_execs = total.executions
        issued = {(tuple(tuple(t) for t in prefix), q) for prefix, q in resume["issued"]}
        cut = bool(resume.get("preemption_bound_cut", False))
        start_items = list(resume["items"])
        n_items = int(resume.get("work_items", len(start_items)))

    def absorb(item: dict[str, Any], out: dict[str, Any]) -> list[dict[str, Any]]:
        nonlocal cut, violation, schedule
        _add(total, Stats(**out["stats"]))
        cut = cut or bool(out["cut"])
        if "violation" in out and violation is None:
            v = out["violation"]
            violation = Violation(v["kind"], v["invariant"], v["message"], v["step"])
            schedule = [(q, alt) for q, alt in out["schedule"]]
        return branch_items(item, [(k, qs) for k, qs in out["prefix_backtracks"]], issued)

    if inline_seed is not None:
        rng = random.Random(inline_seed)
        pending = list(start_items)
        n_items = 0
        while pending and violation is None:
            n_items += 1
            item = pending.pop(rng.randrange(len(pending)))
            out = run_item(program, args, item, lambda: rng.random() < 0.3, pending.append)
            pending.extend(absorb(item, out))
    else:
        ctx = mp.get_context("fork")  # workers inherit the program (generators and closures do not pickle)
        tasks, results, idle = ctx.Queue(), ctx.Queue(), ctx.Value("i", 0)
        procs = [ctx.Process(target=_worker, args=(program, args, tasks, results, idle), daemon=True) for _ in range(workers)]
        for p in procs:
            p.start()
        unfinished: dict[int, dict[str, Any]] = {}  # id -> item, queued or running (what a checkpoint keeps)
        next_id = [0]

        def put(it: dict[str, Any]) -> None:
            it = {**it, "id": next_id[0]}
            next_id[0] += 1
            unfinished[it["id"]] = it
            tasks.put(it)

        for it in start_items:
            put(it)
        finished = Stats(**total.as_dict())  # finished items only
        running: dict[int, Stats] = {}  # worker pid -> its current item's statistics so far
        shown = Stats(**total.as_dict())
        try:
            while unfinished and violation is None:
                try:
                    msg = results.get(timeout=0.5)
                except queue.Empty:
                    if stop is not None and stop() or budget.exhausted(shown, start_execs):
                        complete = False
                        break
                    continue
                if msg[0] == "item":
                    put(msg[1])
                    n_items += 1
                    continue
                if msg[0] == "progress":
                    running[msg[1]] = Stats(**msg[2])
                    _running_total(total, running, shown)
                    if progress is not None:
                        progress(shown)
                    if (stop is not None and stop()) or budget.exhausted(shown, start_execs):
                        complete = False
                        break
                    continue
                unfinished.pop(msg[1].get("id"), None)
                running.pop(msg[3], None)
                for it in absorb(msg[1], msg[2]):
                    put(it)
                    n_items += 1
                finished = Stats(**total.as_dict())
                _running_total(total, running, shown)
                if progress is not None:
                    shown.seconds = budget.elapsed()
                    progress(shown)
                if (stop is not None and stop()) or budget.exhausted(shown, start_execs):
                    complete = False
                    break
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join()
        if not complete and violation is None:
            checkpoint = {
                "kind": "parallel",
                "items": [{k: v for k, v in it.items() if k != "id"} for it in unfinished.values()],
                "issued": [[[list(t) for t in prefix], q] for prefix, q in sorted(issued)],
                "stats": finished.as_dict() | {"seconds": 0.0},
                "preemption_bound_cut": cut,
                "work_items": n_items,
            }
            total = shown  # what the interrupted items had covered counts too
            total.seconds = budget.elapsed()
            params = _params(True, False, cut) | {"workers": workers, "work_items": n_items}
            res = Exploration("exhaustive", None, None, total, False, True, params)
            res.checkpoint = checkpoint
            return res
    total.seconds = budget.elapsed()
    params = _params(True, False, cut) | {"workers": workers, "work_items": n_items}
    return Exploration("exhaustive", violation, schedule, total, complete and violation is None, True, params)


def _running_total(done: Stats, running: dict[int, Stats], out: Stats) -> None:
    """Finished items' statistics plus the running items' latest reports."""
    for f in ("executions", "states", "steps", "truncated", "pruned"):
        setattr(out, f, getattr(done, f) + sum(getattr(r, f) for r in running.values()))


def _add(total: Stats, part: Stats) -> None:
    total.add(part)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
