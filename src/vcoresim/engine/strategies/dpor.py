"""Exhaustive search: stateless depth-first search with dynamic partial-order
reduction (Flanagan & Godefroid, POPL 2005) and sleep sets.

Every execution re-runs the program from its initial state along a schedule
prefix, then extends it.  After each step the search looks, for every actor,
at its next transition and the latest earlier step it races with (dependent,
by another actor, not ordered before it by happens-before); it adds a
backtrack point there so the other order is explored too.  Sleep sets stop
re-exploring orders already covered.

Optional state caching (``cache=True``) prunes a state already visited at no
greater depth with no smaller sleep set.  DPOR's race analysis needs the
continuation of a pruned state, so with caching the search expands every
enabled transition (full persistent sets) and keeps only sleep sets: sound,
but more states per execution.  Preemption bounding (``max_preemptions``)
cuts schedules with too many involuntary switches; with DPOR that bound is a
heuristic (schedules it cuts can hide races), and the result says so.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

from vcoresim.engine.runtime import GLOBAL, Execution
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, Stats
from vcoresim.engine.world import DONE, Program

Footprint = tuple[tuple[str, ...], tuple[str, ...]]
Transition = tuple[int, int]


def dependent(a: Footprint, b: Footprint) -> bool:
    ra, wa = a
    rb, wb = b
    if GLOBAL in wa or GLOBAL in wb:
        return True
    for w in wa:
        if w in wb or w in rb:
            return True
    for w in wb:
        if w in ra:
            return True
    return False


class Node:
    """The state before one step of the current path."""

    __slots__ = ("enabled", "alts", "fps", "backtrack", "done", "sleep", "preempt", "prev")

    def __init__(self, enabled: list[int], alts: dict[int, int], fps: dict[int, Footprint], sleep: dict[Transition, Footprint], preempt: int, prev: int) -> None:
        self.enabled = enabled
        self.alts = alts
        self.fps = fps
        self.backtrack: set[int] = set()
        self.done: dict[Transition, Footprint] = {}
        self.sleep = sleep
        self.preempt = preempt
        self.prev = prev  # actor of the step that led here (-1 at the root)

    def todo(self) -> Transition | None:
        prev = self.prev
        order = sorted(self.backtrack, key=lambda q: (q != prev, q))  # continue the running actor first
        for q in order:
            for alt in range(self.alts.get(q, 1)):
                t = (q, alt)
                if t not in self.done and t not in self.sleep:
                    return t
        return None


class HappensBefore:
    """Vector clocks and a per-location index of the current path's steps."""

    def __init__(self, n: int, causal: bool = False) -> None:
        self.n = n
        # Weak memory models (engine/memory.py) name *causes* in a footprint's
        # reads with a leading "^": a store-buffer commit can only follow the
        # store that filled the entry.  The pending transition then happens
        # after the cause's last writer, so an enabling step does not hide an
        # earlier race (Flanagan & Godefroid treat thread creation alike).
        self.causal = causal
        self.clock: list[list[int]] = [[0] * n for _ in range(n)]
        self.step_proc: list[int] = []
        self.step_lidx: list[int] = []
        self.step_fp: list[Footprint] = []
        self.proc_steps: list[list[int]] = [[] for _ in range(n)]
        self.last_write: dict[str, int] = {}
        self.reads_since: dict[str, list[int]] = {}
        self.step_vc: list[list[int]] = []
        self.global_steps: list[int] = []

    def push(self, proc: int, fp: Footprint) -> None:
        i = len(self.step_proc)
        vc = list(self.clock[proc])
        reads, writes = fp
        svc = self.step_vc
        lw = self.last_write
        rs = self.reads_since

        def join(j: int) -> None:
            other = svc[j]
            for k in range(self.n):
                if other[k] > vc[k]:
                    vc[k] = other[k]

        if GLOBAL in writes:
            for j in range(i):
                join(j)
        else:
            for g in self.global_steps:
                join(g)
            for loc in reads:
                j = lw.get(loc)
                if j is not None:
                    join(j)
            for loc in writes:
                j = lw.get(loc)
                if j is not None:
                    join(j)
                for r in rs.get(loc, ()):
                    join(r)
        vc[proc] += 1
        svc.append(vc)
        self.clock[proc] = vc
        self.step_proc.append(proc)
        self.step_lidx.append(vc[proc])
        self.step_fp.append(fp)
        self.proc_steps[proc].append(i)
        if GLOBAL in writes:
            self.global_steps.append(i)
        for loc in reads:
            if loc not in writes:
                rs.setdefault(loc, []).append(i)
        for loc in writes:
            lw[loc] = i
            rs[loc] = []

    def hb(self, j: int, p: int) -> bool:
        """Step j happens before actor p's next transition."""
        return self.clock[p][self.step_proc[j]] >= self.step_lidx[j]

    def pending_clock(self, p: int, fp: Footprint) -> list[int]:
        """The clock of p's next transition: p's own, joined with its causes' writers."""
        vc = self.clock[p]
        if not self.causal:
            return vc
        for loc in fp[0]:
            if loc[0] == "^":
                j = self.last_write.get(loc)
                if j is not None:
                    if vc is self.clock[p]:
                        vc = list(vc)
                    other = self.step_vc[j]
                    for k in range(self.n):
                        if other[k] > vc[k]:
                            vc[k] = other[k]
        return vc

    def last_race(self, p: int, fp: Footprint, vc: list[int] | None = None) -> int | None:
        """Latest step by another actor that conflicts with ``fp`` and is not ordered before p
        (``vc``: the clock of p's next transition, default p's clock)."""
        reads, writes = fp
        best = -1
        if vc is None:
            vc = self.clock[p]
        sp = self.step_proc
        sl = self.step_lidx
        if GLOBAL in writes:
            for j in range(len(sp) - 1, -1, -1):
                if sp[j] != p and vc[sp[j]] < sl[j]:
                    return j
            return None
        cands: list[int] = list(self.global_steps[-1:])
        for loc in reads:
            j = self.last_write.get(loc)
            if j is not None:
                cands.append(j)
        for loc in writes:
            j = self.last_write.get(loc)
            if j is not None:
                cands.append(j)
            cands.extend(self.reads_since.get(loc, ()))
        for j in cands:
            if j > best and sp[j] != p and vc[sp[j]] < sl[j]:
                best = j
        return best if best >= 0 else None

    def first_step_after(self, q: int, i: int) -> int | None:
        steps = self.proc_steps[q]
        k = bisect_right(steps, i)
        return steps[k] if k < len(steps) else None


def exhaustive(
    program: Program,
    bounds: Bounds,
    *,
    dpor: bool = True,
    cache: bool = False,
    progress: Progress | None = None,
) -> Exploration:
    stats = Stats()
    budget = Budget(bounds)
    reduce = dpor and not cache
    visited: dict[int, tuple[int, frozenset[Transition]]] = {}
    stack: list[Node] = []
    schedule: list[Transition] = []
    complete = True
    bounded_by_preemption = False

    def make_node(ex: Execution, sleep: dict[Transition, Footprint], preempt: int, prev: int) -> Node:
        en = ex.enabled()
        alts = {q: ex.alternatives(q) for q in en}
        fps = {q: ex.footprint(q) for q in en}
        node = Node(en, alts, fps, sleep, preempt, prev)
        quiescent_timeouts = bool(en) and not any(ex.is_enabled(ex.actors[q]) for q in en)
        if not reduce or quiescent_timeouts:
            node.backtrack.update(en)
        else:
            awake = [q for q in en if not all((q, a) in sleep for a in range(alts[q]))]
            if awake:
                node.backtrack.add(prev if prev in awake else awake[0])
        return node

    def analyse(ex: Execution, hb: HappensBefore) -> None:
        """Add backtrack points for every race with an actor's next transition."""
        for a in ex.actors:
            if a.status == DONE:
                continue
            p = a.idx
            fp = ex.footprint(p, pending=True)
            vc = hb.pending_clock(p, fp) if causal else hb.clock[p]
            i = hb.last_race(p, fp, vc)
            if i is None:
                continue
            node = stack[i]
            if p in node.enabled:
                if any((p, alt) not in node.sleep for alt in range(node.alts.get(p, 1))):
                    node.backtrack.add(p)
                else:
                    # p is asleep there, so adding it explores nothing, yet the race can
                    # still need another actor to move first (found by the hypothesis
                    # soundness test): fall back to every enabled actor, as FG do when
                    # p is not enabled.
                    node.backtrack.update(node.enabled)
                continue
            for q in node.enabled:
                j = hb.first_step_after(q, i)
                if j is not None and vc[hb.step_proc[j]] >= hb.step_lidx[j]:
                    if causal and all((q, alt) in node.sleep for alt in range(node.alts.get(q, 1))):
                        # q is asleep there, so adding it explores nothing; under weak
                        # memory p's commit may need another actor (found by
                        # test_memory_models' comparison with the unreduced search).
                        node.backtrack.update(node.enabled)
                    else:
                        node.backtrack.add(q)
                    break
            else:
                node.backtrack.update(node.enabled)

    causal = program.memory_model != "sc" or bool(program.removed_barriers)
    ex = Execution(program, history=cache)
    hb = HappensBefore(len(ex.actors), causal)
    stack.append(make_node(ex, {}, 0, -1))
    stats.states = 1
    while True:
        # ---- extend the current path to the end of an execution
        end_reason = ""
        while True:
            if ex.violation is not None:
                end_reason = "violation"
                break
            node = stack[-1]
            if not node.enabled:
                ex.finish(bounded=False)
                end_reason = "violation" if ex.violation is not None else "end"
                break
            if len(schedule) >= bounds.max_steps:
                ex.finish(bounded=True)
                stats.truncated += 1
                end_reason = "bound"
                break
            t = node.todo()
            while t is not None and bounds.max_preemptions is not None and _preempts(node, t[0]) and node.preempt + 1 > bounds.max_preemptions:
                node.done[t] = node.fps[t[0]]
                bounded_by_preemption = True
                t = node.todo()
            if t is None:
                end_reason = "pruned"  # every remaining transition is asleep
                stats.pruned += 1
                break
            q, alt = t
            fp = node.fps[q]
            child_sleep: dict[Transition, Footprint] = {}
            for s, sfp in [*node.sleep.items(), *node.done.items()]:
                if s[0] != q and not dependent(sfp, fp):
                    child_sleep[s] = sfp
            node.done[t] = fp
            for other in range(node.alts.get(q, 1)):  # explore every branch of a choice
                if other != alt:
                    node.backtrack.add(q)
            ex.step(q, alt)
            stats.steps += 1
            schedule.append(t)
            hb.push(q, ex.footprints[-1])
            preempt = node.preempt + (1 if _preempts(node, q) else 0)
            if reduce:
                analyse(ex, hb)
            child = make_node(ex, child_sleep, preempt, q)
            stack.append(child)
            stats.states += 1
            if cache and ex.violation is None:
                key = ex.fingerprint()
                sleep_keys = frozenset(child_sleep)
                seen = visited.get(key)
                depth = len(schedule)
                if seen is not None and seen[0] <= depth and seen[1] <= sleep_keys:
                    stats.pruned += 1
                    end_reason = "cached"
                    break
                visited[key] = (depth, sleep_keys) if seen is None else (min(seen[0], depth), seen[1] & sleep_keys)
        stats.executions += 1
        if end_reason in ("bound", "cached"):
            # The leaf's own transitions are out of bounds, or were explored from an
            # earlier visit of the same state: drop it, or backtracking would resume
            # right there (an endless loop at the step bound, no pruning by the cache).
            stack.pop()
        if progress is not None and stats.executions % 64 == 0:
            stats.seconds = budget.elapsed()
            progress(stats)
        if end_reason == "violation":
            stats.seconds = budget.elapsed()
            if cache:
                stats.states = len(visited)
            return Exploration("exhaustive", ex.violation, list(schedule), stats, False, True, _params(dpor, cache, bounded_by_preemption))
        # ---- backtrack to the deepest node with work left
        while stack and stack[-1].todo() is None:
            stack.pop()
        if not stack:
            break
        if budget.exhausted(stats):
            complete = False
            break
        depth = len(stack) - 1
        del schedule[depth:]
        ex = Execution(program, history=cache)
        hb = HappensBefore(len(ex.actors), causal)
        for q, alt in schedule:
            ex.step(q, alt)
            hb.push(q, ex.footprints[-1])
        stats.steps += depth
    stats.seconds = budget.elapsed()
    if cache:
        stats.states = len(visited)
    return Exploration("exhaustive", None, None, stats, complete, True, _params(dpor, cache, bounded_by_preemption))


def _preempts(node: Node, q: int) -> bool:
    """Switching to q here preempts the previous actor, which could have continued."""
    return node.prev >= 0 and q != node.prev and node.prev in node.enabled


def _params(dpor: bool, cache: bool, preemption_cut: bool) -> dict[str, Any]:
    return {"dpor": dpor and not cache, "sleep_sets": True, "state_cache": cache, "preemption_bound_cut": preemption_cut}
