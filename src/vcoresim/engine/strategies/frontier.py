"""The frontier search: a stateful search that splits over worker processes.

States are represented by their schedules (generators cannot be copied, so a
state is reached again by replaying the schedule from the initial state).
The search keeps a *frontier* of work items, each a state with the
transitions still to explore from it, ordered shallowest first; a worker
takes a batch of items and explores from each by depth-first search until its
step budget runs out, then hands back what it did not explore (the pending
transitions of the nodes on its stack) as new items.  A visited set of state
fingerprints is shared: a worker claims each state it explores, the
coordinator merges the claims and sends every worker the others' claims with
its next batch, so a state explored anywhere is pruned everywhere (up to the
lag of one batch, which costs duplicate work, never coverage).

Every enabled transition of a state is explored (no persistent sets: DPOR's
race analysis needs the continuation of a pruned state, which another worker
may not have explored yet), except:

- **sleep sets** (without a preemption bound): a transition independent of
  one explored before it at an ancestor is not explored again;
- **the visited set**: a state is not explored again when an exploration of
  it was already claimed with no larger sleep set (and, under a preemption
  bound, no more preemptions; under a binding step bound, at no greater
  depth).

What a complete run covers: every state reachable within the bounds (every
state, if no execution reached the step bound; a preemption bound is exact
here, not DPOR's heuristic), and every deadlock and liveness violation
there, *provided distinct states get distinct fingerprints* (the argument is
in docs/exploration.md).  The fingerprint is ``state_key``: the engine's
best state identity (``Execution.fingerprint``), plus the liveness monitors'
clocks and, under a preemption bound, the actor that ran last.

The coordinator (``frontier_search``) is the same for every backend: in
this process (``InlineBackend``, also what the tests use to try many
completion orders), processes (check/parallel.py) and Ray actors
(check/ray_backend.py).  A run in one worker is deterministic; with several,
which counterexample is found first and the statistics depend on timing,
the verdict does not.
"""

from __future__ import annotations

import heapq
import random
import time
from array import array
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Protocol

from vcoresim.engine.runtime import Execution, Violation
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, Stats
from vcoresim.engine.strategies.dpor import dependent
from vcoresim.engine.world import Program

Footprint = tuple[tuple[str, ...], tuple[str, ...]]
Transition = tuple[int, int]
#: Depth field of a visited entry (entries are ints: ``extra << DEPTH_BITS | depth``).
DEPTH_BITS = 24
_DEPTH_MASK = (1 << DEPTH_BITS) - 1
_MASK64 = (1 << 64) - 1
#: Steps a batch may run before its worker hands back what is left.
BATCH_STEPS = 5_000
#: A batch's budget while there are fewer items than workers (split early).
SPLIT_STEPS = 1_500
#: Items a batch holds at most.
BATCH_ITEMS = 64


def state_key(ex: Execution, prev: int | None) -> int:
    """The identity of the state ``ex`` is in, for the visited set.

    ``ex.fingerprint()`` is the engine's state identity (engine/fingerprint.py);
    a better one plugs in here.  The liveness monitors' clocks are added as
    steps since each was armed (what decides their future), and under a
    preemption bound the actor that ran last (what counts as a preemption
    next depends on it)."""
    live = ex.liveness_clocks()
    return hash((ex.fingerprint(), live, -2 if prev is None else prev)) & _MASK64


def new_execution(program: Program, shared: dict[Any, Any]) -> Execution:
    """An execution that keeps what the fingerprint needs (per-actor or per-frame histories)."""
    ex = Execution(program, history=True)
    ex.fp_shared = shared  # type: ignore[attr-defined]  # frame encodings a fingerprint may share across executions
    return ex


# ----------------------------------------------------------------- items
@dataclass(slots=True)
class Item:
    """A state (the schedule that reaches it) and what is left to explore there.

    ``todo`` None: a state not explored yet (the root), whose transitions are
    all to explore; otherwise the transitions left, in order.  ``sleep`` and
    ``done`` carry footprints: a later transition's children sleep on those
    independent of it."""

    prefix: bytes
    sleep: tuple[tuple[int, int, Footprint], ...] = ()
    done: tuple[tuple[int, int, Footprint], ...] = ()
    todo: tuple[Transition, ...] | None = None
    preempt: int = 0
    prev: int = -1

    @property
    def depth(self) -> int:
        return len(self.prefix) // 4

    def schedule(self) -> list[Transition]:
        return decode(self.prefix)

    def to_json(self) -> dict[str, Any]:
        return {
            "prefix": [list(t) for t in self.schedule()],
            "sleep": [[q, a, [list(fp[0]), list(fp[1])]] for q, a, fp in self.sleep],
            "done": [[q, a, [list(fp[0]), list(fp[1])]] for q, a, fp in self.done],
            "todo": None if self.todo is None else [list(t) for t in self.todo],
            "preempt": self.preempt,
            "prev": self.prev,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> Item:
        def fps(rows: list[Any]) -> tuple[tuple[int, int, Footprint], ...]:
            return tuple((int(q), int(a), (tuple(fp[0]), tuple(fp[1]))) for q, a, fp in rows)

        todo = d.get("todo")
        return Item(
            encode([(int(q), int(a)) for q, a in d["prefix"]]),
            fps(d.get("sleep", [])),
            fps(d.get("done", [])),
            None if todo is None else tuple((int(q), int(a)) for q, a in todo),
            int(d.get("preempt", 0)),
            int(d.get("prev", -1)),
        )


def encode(schedule: Iterable[Transition]) -> bytes:
    out = array("H")
    for q, alt in schedule:
        out.append(q)
        out.append(alt)
    return out.tobytes()


def decode(data: bytes) -> list[Transition]:
    a = array("H")
    a.frombytes(data)
    return [(a[i], a[i + 1]) for i in range(0, len(a), 2)]


@dataclass(slots=True)
class Batch:
    """What a worker is sent: items, the claims of the others since its last
    batch, its budgets, and the search's mode (``generation`` changes when the
    coordinator restarts the search depth-aware; the worker forgets its table)."""

    items: list[Item]
    delta: list[tuple[int, int]]
    steps: int
    executions: int | None
    generation: int
    depth_aware: bool
    #: Report the key of every final state reached (the tests compare them between searches).
    finals: bool = False


@dataclass(slots=True)
class BatchResult:
    claims: list[tuple[int, int]]
    leftovers: list[Item]
    stats: Stats
    violation: Violation | None = None
    schedule: list[Transition] | None = None
    #: The initial state's fingerprint in this worker (do processes agree on fingerprints?).
    probe: int = 0
    finals: list[int] | None = None
    #: CPU seconds the worker spent on the batch (Ray's workers are not this process's children).
    cpu: float = 0.0


# ----------------------------------------------------------- visited set
class Visited:
    """fingerprint -> the explorations claimed for the state: ints
    ``extra << DEPTH_BITS | depth``, where ``extra`` is the sleep set (a bit
    per transition) or, under a preemption bound, the preemption count.  An
    entry covers a new visit when it is no worse in every dimension; only
    entries no other covers are kept (usually one)."""

    __slots__ = ("bounded", "depth_aware", "table")

    def __init__(self, depth_aware: bool, bounded: bool) -> None:
        self.table: dict[int, int | tuple[int, ...]] = {}
        self.depth_aware = depth_aware
        self.bounded = bounded

    def __len__(self) -> int:
        return len(self.table)

    def _covers(self, e0: int, e: int) -> bool:
        if self.depth_aware and (e0 & _DEPTH_MASK) > (e & _DEPTH_MASK):
            return False
        x0, x = e0 >> DEPTH_BITS, e >> DEPTH_BITS
        return x0 <= x if self.bounded else x0 & ~x == 0

    def covers(self, key: int, entry: int) -> bool:
        old = self.table.get(key)
        if old is None:
            return False
        if type(old) is int:
            return self._covers(old, entry)
        return any(self._covers(e0, entry) for e0 in old)  # type: ignore[union-attr]

    def add(self, key: int, entry: int) -> bool:
        """Record an exploration; False if one already recorded covers it."""
        old = self.table.get(key)
        if old is None:
            self.table[key] = entry
            return True
        olds: tuple[int, ...] = (old,) if type(old) is int else old  # type: ignore[assignment]
        if any(self._covers(e0, entry) for e0 in olds):
            return False
        keep = tuple(e0 for e0 in olds if not self._covers(entry, e0)) + (entry,)
        self.table[key] = keep[0] if len(keep) == 1 else keep
        return True

    def entries(self) -> list[tuple[int, int]]:
        out = []
        for k, v in self.table.items():
            if type(v) is int:
                out.append((k, v))
            else:
                out.extend((k, e) for e in v)  # type: ignore[union-attr]
        return out


def make_entry(depth: int, extra: int) -> int:
    return extra << DEPTH_BITS | min(depth, _DEPTH_MASK)


# ---------------------------------------------------------------- worker
class _Node:
    __slots__ = ("done", "enabled", "preempt", "prev", "sleep", "todo")

    def __init__(self, enabled: list[int], sleep: dict[Transition, Footprint], done: dict[Transition, Footprint], todo: list[Transition], preempt: int, prev: int) -> None:
        self.enabled = enabled
        self.sleep = sleep
        self.done = done
        self.todo = todo
        self.preempt = preempt
        self.prev = prev


class Explorer:
    """One worker's side: explores the items of a batch by depth-first search
    from each, with its copy of the visited set."""

    def __init__(self, program: Program, bounds: Bounds) -> None:
        self.program = program
        self.max_steps = bounds.max_steps
        self.max_preemptions = bounds.max_preemptions
        self.bounded = bounds.max_preemptions is not None
        self.sleep_sets = not self.bounded  # sleep sets do not keep a preemption bound exact
        self.shared: dict[Any, Any] = {}
        self.generation = -1
        self.visited = Visited(False, self.bounded)
        probe = new_execution(program, self.shared)
        self.n = len(probe.actors)
        self.probe = state_key(probe, -1 if self.bounded else None)

    def _mask(self, sleep: Iterable[Transition]) -> int:
        n = self.n
        m = 0
        for q, alt in sleep:
            m |= 1 << (q + n * alt)
        return m

    def _entry(self, depth: int, sleep: Iterable[Transition], preempt: int) -> int:
        return make_entry(depth, preempt if self.bounded else self._mask(sleep))

    def _todo(self, ex: Execution, enabled: list[int], sleep: dict[Transition, Footprint], done: dict[Transition, Footprint], preempt: int, prev: int) -> list[Transition]:
        order = sorted(enabled, key=lambda q: (q != prev, q))  # let the running actor continue first
        out = []
        for q in order:
            if self.bounded and _preempts(prev, enabled, q) and preempt + 1 > self.max_preemptions:  # type: ignore[operator]
                continue
            for alt in range(ex.alternatives(q)):
                t = (q, alt)
                if t not in sleep and t not in done:
                    out.append(t)
        return out

    def run(self, batch: Batch) -> BatchResult:
        if batch.generation != self.generation:
            self.generation = batch.generation
            self.visited = Visited(batch.depth_aware, self.bounded)
        visited = self.visited
        for key, entry in batch.delta:
            visited.add(key, entry)
        cpu = time.process_time()
        res = BatchResult([], [], Stats(), probe=self.probe, finals=[] if batch.finals else None)
        items = list(batch.items)
        while items:
            if res.stats.steps >= batch.steps or (batch.executions is not None and res.stats.executions >= batch.executions):
                break
            item = items.pop(0)
            self._explore(item, batch, res)
            if res.violation is not None:
                break
        if res.violation is None:
            res.leftovers.extend(items)
        res.cpu = time.process_time() - cpu
        return res

    def _explore(self, item: Item, batch: Batch, res: BatchResult) -> None:
        stats = res.stats
        visited = self.visited
        bounded = self.bounded
        path = item.schedule()
        ex = new_execution(self.program, self.shared)
        _replay(ex, path)
        stats.steps += len(path)
        if ex.violation is not None:  # only the initial state can be (the prefix was explored before)
            stats.executions += 1
            res.violation, res.schedule = ex.violation, list(path)
            return
        enabled = ex.enabled()
        sleep = {(q, a): fp for q, a, fp in item.sleep}
        done = {(q, a): fp for q, a, fp in item.done}
        if item.todo is None:
            # A fresh state (the root): claim it, as any state explored.
            key = state_key(ex, item.prev if bounded else None)
            entry = self._entry(len(path), sleep, item.preempt)
            if visited.add(key, entry):
                res.claims.append((key, entry))
            stats.states += 1
            if not enabled:
                stats.executions += 1
                ex.finish(bounded=False)
                if ex.violation is not None:
                    res.violation, res.schedule = ex.violation, list(ex.schedule)
                elif res.finals is not None:
                    res.finals.append(key)
                return
            todo = self._todo(ex, enabled, sleep, done, item.preempt, item.prev)
        else:
            todo = list(item.todo)
        stack = [_Node(enabled, sleep, done, todo, item.preempt, item.prev)]
        base = len(path)
        while True:
            # ---- extend the path from the top node until the execution ends
            while True:
                node = stack[-1]
                if not node.todo:
                    stats.pruned += 1  # everything left here is asleep or explored
                    break
                t = node.todo.pop(0)
                q, alt = t
                fp = ex.footprint(q)
                child_sleep: dict[Transition, Footprint] = {}
                if self.sleep_sets:
                    for s, sfp in node.sleep.items():
                        if s[0] != q and not dependent(sfp, fp):
                            child_sleep[s] = sfp
                    for s, sfp in node.done.items():
                        if s[0] != q and not dependent(sfp, fp):
                            child_sleep[s] = sfp
                node.done[t] = fp
                preempt = node.preempt + (1 if bounded and _preempts(node.prev, node.enabled, q) else 0)
                ex.step(q, alt)
                stats.steps += 1
                path.append(t)
                if ex.violation is not None:
                    stats.executions += 1
                    res.violation, res.schedule = ex.violation, list(ex.schedule)
                    return
                depth = len(path)
                key = state_key(ex, q if bounded else None)
                entry = self._entry(depth, child_sleep, preempt)
                if visited.covers(key, entry):
                    stats.pruned += 1
                    break
                en = ex.enabled()
                if not en:
                    if visited.add(key, entry):
                        res.claims.append((key, entry))
                    stats.states += 1
                    ex.finish(bounded=False)
                    if ex.violation is not None:
                        stats.executions += 1
                        res.violation, res.schedule = ex.violation, list(ex.schedule)
                        return
                    if res.finals is not None:
                        res.finals.append(key)
                    break
                if depth >= self.max_steps:
                    stats.truncated += 1  # not explored, so not claimed
                    break
                visited.add(key, entry)
                res.claims.append((key, entry))
                stats.states += 1
                stack.append(_Node(en, child_sleep, {}, self._todo(ex, en, child_sleep, {}, preempt, q), preempt, q))
            stats.executions += 1
            # ---- backtrack to the deepest node with work left
            while stack and not stack[-1].todo:
                stack.pop()
            if not stack:
                return
            if stats.steps >= batch.steps or (batch.executions is not None and stats.executions >= batch.executions):
                # Budget spent: hand back every node with work left, shallowest first.
                for k, node in enumerate(stack):
                    if node.todo:
                        res.leftovers.append(
                            Item(
                                encode(path[: base + k]),
                                tuple((q, a, fp) for (q, a), fp in node.sleep.items()),
                                tuple((q, a, fp) for (q, a), fp in node.done.items()),
                                tuple(node.todo),
                                node.preempt,
                                node.prev,
                            )
                        )
                return
            depth = base + len(stack) - 1
            del path[depth:]
            ex = new_execution(self.program, self.shared)
            _replay(ex, path)
            stats.steps += depth


def _preempts(prev: int, enabled: list[int], q: int) -> bool:
    """Switching to q preempts the previous actor, which could have continued."""
    return prev >= 0 and q != prev and prev in enabled


#: The footprint recorded for a replayed step (nothing reads a replayed step's: this search has no race analysis).
_REPLAYED: Footprint = ((), ())


def _replay(ex: Execution, schedule: list[Transition]) -> None:
    """Re-run a prefix the search already ran (no violation on it, model code is
    deterministic): the transitions and the liveness monitors' armed state;
    invariants are not re-checked, footprints not recomputed."""
    live = bool(ex.world.liveness)
    actors = ex.actors
    for q, alt in schedule:
        ex.schedule.append((q, alt))
        ex.footprints.append(_REPLAYED)
        ex.steps += 1
        ex._transition(actors[q], alt)
        if live:
            ex._check_liveness()


# ---------------------------------------------------------------- backends
class Backend(Protocol):
    """Where batches run: ``submit`` queues a batch for worker ``w`` (a worker
    runs its batches in order); ``results`` waits up to ``timeout`` seconds
    for finished ones."""

    workers: int

    def submit(self, worker: int, batch: Batch) -> None: ...

    def results(self, timeout: float) -> list[tuple[int, BatchResult]]: ...

    def close(self) -> None: ...


class InlineBackend:
    """Workers in this process.  With ``seed``, the running batches finish in
    a seeded random order (the tests use it: every order must be sound)."""

    def __init__(self, program: Program, bounds: Bounds, workers: int = 1, seed: int | None = None) -> None:
        self.workers = workers
        self.explorers = [Explorer(program, bounds) for _ in range(workers)]
        self.running: dict[int, list[Batch]] = {}
        self.rng = random.Random(seed) if seed is not None else None

    def submit(self, worker: int, batch: Batch) -> None:
        self.running.setdefault(worker, []).append(batch)

    def results(self, timeout: float) -> list[tuple[int, BatchResult]]:
        ws = sorted(w for w, q in self.running.items() if q)
        if not ws:
            return []
        w = ws[self.rng.randrange(len(ws))] if self.rng is not None else ws[0]
        return [(w, self.explorers[w].run(self.running[w].pop(0)))]

    def close(self) -> None:
        self.running.clear()


# ------------------------------------------------------------ coordinator
class _Frontier:
    """Pending items, one heap per worker (shallowest first, ties: first made
    first).  A worker's leftovers go back to its own heap, so it goes on with
    its own part of the state space; an idle worker takes the shallowest half
    of the largest heap.  Workers then seldom meet in the same states before
    their claims reach each other (each such meeting is explored twice)."""

    def __init__(self, n: int) -> None:
        self.heaps: list[list[tuple[int, int, Item]]] = [[] for _ in range(n)]
        self.seq = 0

    def push(self, item: Item, owner: int = 0) -> None:
        heapq.heappush(self.heaps[owner], (item.depth, self.seq, item))
        self.seq += 1

    def take(self, worker: int, most: int) -> list[Item]:
        heap = self.heaps[worker]
        if not heap:
            heap = max(self.heaps, key=len)
            most = max(1, min(most, len(heap) // 2))
        return [heapq.heappop(heap)[2] for _ in range(min(most, len(heap)))]

    def clear(self) -> None:
        for h in self.heaps:
            h.clear()

    def __len__(self) -> int:
        return sum(len(h) for h in self.heaps)

    def items(self) -> list[Item]:
        return [it for _d, _s, it in sorted(e for h in self.heaps for e in h)]


def frontier_search(
    program: Program,
    bounds: Bounds,
    backend: Backend | Callable[[], Backend],
    *,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
    resume: dict[str, Any] | None = None,
    label: dict[str, Any] | None = None,
    batch_steps: int = BATCH_STEPS,
    split_steps: int = SPLIT_STEPS,
    finals: bool = False,
    shield: Callable[[], AbstractContextManager[Any]] | None = None,
) -> Exploration:
    """Run the frontier search on ``backend`` (or a factory making one).

    ``resume``: a checkpoint state of this search (its pending items and, if
    this process computes the same fingerprints, its visited set);
    ``label``: extra parameters for the result (backend, workers);
    ``batch_steps``/``split_steps``: a batch's step budget, and the smaller
    one while there are fewer pending items than workers; ``finals``: list
    the keys of the final states reached in ``params["final_states"]``;
    ``shield``: a context in which a further Ctrl-C is noted, not raised
    (the CLI's; see below)."""
    budget = Budget(bounds)
    be = backend() if callable(backend) else backend
    n = be.workers
    bounded = bounds.max_preemptions is not None
    total = Stats()
    start_execs = 0
    visited = Visited(False, bounded)
    frontier = _Frontier(n)
    depth_aware = False
    generation = 0
    log: list[tuple[int, int, int]] = []  # (key, entry, worker that claimed it)
    log_base = 0  # log[0] is claim number log_base
    sent = [0] * n  # claim number each worker has seen up to
    running: dict[int, list[Batch]] = {w: [] for w in range(n)}  # each worker's batches, in order
    busy = 0.0  # worker-seconds spent running batches
    worker_cpu = 0.0  # CPU seconds the workers report for them
    began = [0.0] * n  # when each worker's current batch started (at the latest)
    violation: Violation | None = None
    schedule: list[Transition] | None = None
    complete = True
    redundant = 0
    items_run = 0
    probes: set[int] = set()
    final_states: set[int] = set()
    if resume is not None:
        total = Stats(**resume["stats"])
        start_execs = total.executions
        depth_aware = bool(resume.get("depth_aware", False))
        generation = int(depth_aware)
        visited = Visited(depth_aware, bounded)
        for it in resume["items"]:
            frontier.push(Item.from_json(it))
        if resume.get("probe") is not None and resume["visited"]:
            # Fingerprints are worth keeping only if this process computes the same ones.
            probe = Explorer(program, bounds).probe
            if probe == resume["probe"]:
                for key, entry in resume["visited"]:
                    e = int(entry, 16)
                    if visited.add(key, e):
                        log.append((key, e, -1))
    else:
        frontier.push(Item(b""))

    def restart_depth_aware() -> None:
        """The step bound was reached: prune only by explorations at no greater depth, from the start."""
        nonlocal depth_aware, generation, visited, log, log_base, sent
        depth_aware = True
        generation += 1
        visited = Visited(True, bounded)
        log, log_base, sent = [], 0, [0] * n
        frontier.clear()
        frontier.push(Item(b""))

    def hand_out() -> None:
        """Hand batches to workers: one each, and a second queued behind it
        while the frontier is wide (a worker then never waits for the
        coordinator to answer)."""
        nonlocal items_run, log, log_base
        for depth in (1, 2):
            hungry = [w for w in range(n) if len(running[w]) < depth]
            while hungry and frontier and (depth == 1 or len(frontier) >= 2 * n):
                w = hungry.pop(0)
                left = None
                if bounds.max_executions is not None:
                    left = bounds.max_executions - (total.executions - start_execs) - sum(b.executions or 0 for q in running.values() for b in q)
                    if left <= 0:
                        break
                items = frontier.take(w, BATCH_ITEMS)
                steps = split_steps if len(frontier) < n else batch_steps
                delta = [(k, e) for k, e, origin in log[sent[w] - log_base :] if origin != w]
                sent[w] = log_base + len(log)
                batch = Batch(items, delta, steps, left, generation, depth_aware, finals)
                if not running[w]:
                    began[w] = budget.elapsed()
                running[w].append(batch)
                items_run += len(items)
                be.submit(w, batch)
        # Forget claims every worker has been sent.
        low = min(sent)
        if low - log_base > 4096:
            del log[: low - log_base]
            log_base = low

    def merge(w: int, res: BatchResult) -> None:
        nonlocal busy, worker_cpu, redundant, violation, schedule
        batch = running[w].pop(0)
        now = budget.elapsed()
        busy += now - began[w]
        began[w] = now
        if batch.generation != generation:
            return
        probes.add(res.probe)
        worker_cpu += res.cpu
        if res.finals:
            final_states.update(res.finals)
        total.add(res.stats)
        for key, entry in res.claims:
            if visited.add(key, entry):
                log.append((key, entry, w))
            else:
                redundant += 1
        for it in res.leftovers:
            frontier.push(it, w)
        if res.violation is not None and violation is None:
            violation, schedule = res.violation, res.schedule

    # Every change to the search's state happens inside ``guard`` (the CLI's
    # shield: a further Ctrl-C there is noted, not raised), so a second
    # Ctrl-C (``KeyboardInterrupt``) lands where the state is whole: while
    # waiting for the workers, or in a batch this process runs, whose items
    # are still pending.  It then ends the search like the first, with a
    # checkpoint.
    guard = shield if shield is not None else nullcontext
    try:
        while True:
            with guard():
                if violation is None:
                    hand_out()
                if not any(running.values()):
                    if frontier:
                        complete = False  # the execution budget is spent
                    elif violation is None and total.truncated and not depth_aware:
                        restart_depth_aware()
                        continue
                    break
            done = be.results(0.5)  # (an inline backend runs a batch here)
            with guard():
                for w, res in done:
                    merge(w, res)
                total.states = len(visited)
                total.seconds = budget.elapsed()
                if progress is not None:
                    progress(total)
                if violation is not None:
                    break
                if (stop is not None and stop()) or budget.exhausted(total, start_execs):
                    complete = False
                    break
                if bounds.max_executions is not None and total.executions - start_execs >= bounds.max_executions and (frontier or any(running.values())):
                    complete = False
                    break
    except KeyboardInterrupt:
        complete = False
    finally:
        with guard():
            be.close()
    total.states = len(visited)
    total.seconds = budget.elapsed()
    params: dict[str, Any] = {
        "search": "frontier",
        "dpor": False,
        "sleep_sets": not bounded,
        "state_cache": True,
        "preemption_bound_cut": False,
        "workers": n,
        "work_items": items_run,
        "redundant_states": redundant,
        # Of the workers' time, the share they spent running batches (the rest
        # they waited for work or for the coordinator).
        "worker_busy": round(busy / (n * total.seconds), 3) if total.seconds else 1.0,
        "worker_cpu_s": round(worker_cpu, 3),
    }
    if len(probes) > 1:
        params["fingerprints_agree"] = False  # the processes hash states differently: no pruning across them
    if finals:
        params["final_states"] = sorted(final_states)
    params.update(label or {})
    res = Exploration("exhaustive", violation, schedule, total, complete and violation is None, True, params)
    if violation is None and not complete:
        pending = [*frontier.items(), *(it for q in running.values() for b in q for it in b.items)]
        res.checkpoint = {
            "kind": "parallel",
            "items": [it.to_json() for it in pending],
            # Entries as hex: a sleep-set mask may have more digits than a checkpoint's integers may.
            "visited": [[k, format(e, "x")] for k, e in visited.entries()],
            "probe": next(iter(probes)) if len(probes) == 1 else None,
            "depth_aware": depth_aware,
            "stats": total.as_dict() | {"seconds": 0.0},
        }
    return res


def frontier_inline(program: Program, bounds: Bounds, *, workers: int = 1, seed: int | None = None, **kw: Any) -> Exploration:
    """The frontier search in this process (``workers`` simulated; ``seed``: random completion order)."""
    return frontier_search(program, bounds, InlineBackend(program, bounds, workers, seed), **kw)
