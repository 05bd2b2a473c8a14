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
cuts schedules with too many involuntary switches.  Cut schedules can hide
the races that would add a needed backtrack point, so by default DPOR's
bound is a heuristic (the result says so).  ``bounded_por=True`` makes it
exact: every race also adds a *conservative* backtrack point where the
racing actor can be scheduled at no extra preemption (bounded partial-order
reduction, Coons, Musuvathi & McKinley, OOPSLA 2013), and sleep sets are off
(the equivalent order a sleep set relies on may cost more preemptions and
have been cut); it costs far more on some scenarios (docs/exploration.md;
tests/test_bpor.py).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any

from vcoresim.engine.fingerprint import symmetric_fingerprint
from vcoresim.engine.runtime import GLOBAL, Execution
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, Stats
from vcoresim.engine.strategies.statecache import Accesses, VisitedStates
from vcoresim.engine.world import DONE, Program

Footprint = tuple[tuple[str, ...], tuple[str, ...]]
Transition = tuple[int, int]
_MASK64 = (1 << 64) - 1


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
    """The state before one step of the current path.  With the state cache:
    ``key``, the state's fingerprint (None: not cached), and ``summary``, the
    accesses of every transition the search considered in the subtree below
    it (a bit set, see ``Accesses``)."""

    __slots__ = ("enabled", "alts", "fps", "backtrack", "done", "sleep", "preempt", "prev", "key", "summary")

    def __init__(self, enabled: list[int], alts: dict[int, int], fps: dict[int, Footprint], sleep: dict[Transition, Footprint], preempt: int, prev: int) -> None:
        self.enabled = enabled
        self.alts = alts
        self.fps = fps
        self.backtrack: set[int] = set()
        self.done: dict[Transition, Footprint] = {}
        self.sleep = sleep
        self.preempt = preempt
        self.prev = prev  # actor of the step that led here (-1 at the root)
        self.key: int | None = None
        self.summary = 0

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
        # Undo log, one entry per step, so backtracking truncates instead of rebuilding.
        self._undo: list[tuple[list[int], list[tuple[str, int | None, list[int] | None]], tuple[str, ...]]] = []

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
        old_clock = self.clock[proc]
        self.clock[proc] = vc
        self.step_proc.append(proc)
        self.step_lidx.append(vc[proc])
        self.step_fp.append(fp)
        self.proc_steps[proc].append(i)
        if GLOBAL in writes:
            self.global_steps.append(i)
        appended = tuple(loc for loc in reads if loc not in writes)
        for loc in appended:
            rs.setdefault(loc, []).append(i)
        saved: list[tuple[str, int | None, list[int] | None]] = []
        for loc in writes:
            saved.append((loc, lw.get(loc), rs.get(loc)))
            lw[loc] = i
            rs[loc] = []
        self._undo.append((old_clock, saved, appended))

    def truncate(self, n: int) -> None:
        """Forget every step from ``n`` on (the path backtracked to depth ``n``)."""
        lw, rs = self.last_write, self.reads_since
        while len(self.step_proc) > n:
            i = len(self.step_proc) - 1
            proc = self.step_proc.pop()
            old_clock, saved, appended = self._undo.pop()
            for loc, old_w, old_r in reversed(saved):
                if old_w is None:
                    lw.pop(loc, None)
                else:
                    lw[loc] = old_w
                if old_r is None:
                    rs.pop(loc, None)
                else:
                    rs[loc] = old_r
            for loc in appended:
                rs[loc].pop()
            if self.global_steps and self.global_steps[-1] == i:
                self.global_steps.pop()
            self.proc_steps[proc].pop()
            self.clock[proc] = old_clock
            self.step_lidx.pop()
            self.step_fp.pop()
            self.step_vc.pop()

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

    def race_points(self, p: int, fp: Footprint, vc: list[int]) -> list[int]:
        """Every step ``last_race`` chooses among (by another actor, conflicting
        with ``fp``, not ordered before p by ``vc``), latest first.  Stateful
        DPOR races a cached subtree's transitions at all of them: ``vc`` is
        their actor's present clock, which may miss steps ordered before the
        transition inside the subtree, so the latest candidate need not be
        the transition's latest race; that one is among these."""
        reads, writes = fp
        sp = self.step_proc
        sl = self.step_lidx
        if GLOBAL in writes:
            return [j for j in range(len(sp) - 1, -1, -1) if sp[j] != p and vc[sp[j]] < sl[j]]
        cands: set[int] = set(self.global_steps[-1:])
        for loc in reads:
            j = self.last_write.get(loc)
            if j is not None:
                cands.add(j)
        for loc in writes:
            j = self.last_write.get(loc)
            if j is not None:
                cands.add(j)
            cands.update(self.reads_since.get(loc, ()))
        return sorted((j for j in cands if sp[j] != p and vc[sp[j]] < sl[j]), reverse=True)

    def initials(self, i: int, p: int) -> set[int]:
        """Source-DPOR's I(notdep(e_i).p): the actors whose first step in the
        sequence of steps after ``i`` that do not happen after step ``i``,
        followed by p's next transition, has no predecessor in that sequence.
        Any one of them can start an execution that reverses the race."""
        pi, li = self.step_proc[i], self.step_lidx[i]
        svc, sp, sl = self.step_vc, self.step_proc, self.step_lidx
        first: dict[int, int] = {}  # actor -> local index of its first step in the sequence
        out: set[int] = set()
        for j in range(i + 1, len(sp)):
            vcj = svc[j]
            if vcj[pi] >= li:
                continue  # happens after step i
            q = sp[j]
            if q in first:
                continue
            if not any(vcj[r] >= lr for r, lr in first.items()):
                out.add(q)
            first[q] = sl[j]
        if p not in first:
            cp = self.clock[p]  # every conflicting step after i is ordered before p (i is the last race)
            if not any(cp[r] >= lr for r, lr in first.items()):
                out.add(p)
        return out

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
    stateful_dpor: bool = True,
    source_sets: bool = False,
    bounded_por: bool = False,
    progress: Progress | None = None,
    resume: dict[str, Any] | None = None,
    root: dict[str, Any] | None = None,
    split_depth: int | None = None,
    on_split: Callable[[dict[str, Any], list[Node]], None] | None = None,
    path: tuple[list[Node], list[Transition]] | None = None,
    stop: Callable[[], bool] | None = None,
    donate: Callable[[], bool] | None = None,
    on_donate: Callable[[dict[str, Any]], None] | None = None,
) -> Exploration:
    """``cache``: prune states met before (engine/fingerprint.py); with
    ``dpor`` it runs stateful DPOR unless ``stateful_dpor`` is False (then the
    cache forces full expansion, as before stateful DPOR);
    ``bounded_por``: under a preemption bound, BPOR's conservative backtrack
    points and no sleep sets, so the bound is exact (else a heuristic);
    ``resume``: a search state from ``Exploration.checkpoint`` (continue it);
    ``root``: a work item (explore only the subtree under its prefix; the
    prefix's nodes were fully expanded by whoever split the search);
    ``split_depth``/``on_split``: stop every path once it has that many forks and hand its
    node to ``on_split`` as a work item (the nodes above are fully expanded);
    ``stop``: polled between executions (Ctrl-C), ends the search like a budget;
    ``donate``: polled between executions (another worker is idle): give the
    shallowest pending branch away to ``on_donate`` as a work item."""
    stats = Stats()
    budget = Budget(bounds)
    reduce = dpor and not cache  # (stateful DPOR, below, reduces with the cache too)
    stateful = False
    visited = VisitedStates()
    path_keys: dict[int, int] = {}  # full expansion with the cache: fingerprints of the current path (cycles)
    accesses = Accesses()
    fp_shared: dict[int, Any] = {}  # frame encodings, shared by the executions (engine/fingerprint.py)
    stack: list[Node] = []
    schedule: list[Transition] = []
    complete = True
    bounded_by_preemption = False
    base = 0  # nodes below this depth belong to someone else (a work item's prefix)
    start_execs = 0
    splits = 0

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

    pending: dict[int, tuple[Footprint, int]] = {}  # actor -> its next transition's footprint and accesses, this execution

    def analyse(ex: Execution, hb: HappensBefore, fresh: bool) -> int:
        """Add backtrack points for every race with an actor's next transition;
        return the accesses of those transitions (stateful DPOR's summaries).

        Only the actor that stepped and those whose next transition the step
        was dependent with can have a new latest race: another's is the one
        found after the step before (its clock and its dependent steps did
        not change), and its backtrack point is already there.  ``fresh``:
        a new execution, analyse every actor."""
        if fresh or source_sets or causal:  # (source sets' initials, and under weak memory the pending clocks and footprints, can change with any step)
            pending.clear()
        mover, step_fp = ex.schedule[-1][0], ex.footprints[-1]
        considered = 0
        for a in ex.actors:
            if a.status == DONE:
                continue
            p = a.idx
            known = pending.get(p)
            if known is not None and p != mover and not dependent(known[0], step_fp):
                considered |= known[1]
                continue
            fp = ex.footprint(p, pending=True)
            mask = accesses.mask(p, fp) if stateful else 0
            pending[p] = (fp, mask)
            considered |= mask
            race(p, fp, hb.pending_clock(p, fp) if causal else hb.clock[p])
        return considered

    def race(p: int, fp: Footprint, vc: list[int]) -> None:
        """A transition of actor p with footprint fp, after the current path (p's
        clock ``vc``): add a backtrack point for its latest race, as FG do."""
        i = hb.last_race(p, fp, vc)
        if i is not None:
            backtrack_at(i, p, fp, vc)

    def backtrack_at(i: int, p: int, fp: Footprint, vc: list[int]) -> None:
        """The backtrack point for a race of step i with p's transition (clock
        ``vc``), and under a preemption bound its conservative point (BPOR):
        the start of the run of steps that ends at i, the latest j <= i where
        another actor stepped just before (or the root).  Choosing p there costs
        no preemption the path did not already pay, so p's order within the
        bound is reached even when p at step i itself is over the bound.  (No
        sleep sets under a bound, so p is awake there.)"""
        race_point(i, p, vc)
        if bounds.max_preemptions is None or not bounded_por:
            return
        sp = hb.step_proc
        j = i
        while j > 0 and sp[j - 1] == sp[j]:
            j -= 1
        if j == i:
            return  # i already starts a run: the backtrack point is the conservative point
        node = stack[j]
        if p in node.enabled:
            node.backtrack.add(p)
        else:
            node.backtrack.update(node.enabled)  # as FG do when p is not enabled at the race

    def race_point(i: int, p: int, vc: list[int]) -> None:
        if True:
            node = stack[i]
            if source_sets:
                if p in node.backtrack and p in node.enabled and _awake(node, p):
                    return  # p itself is an initial and already scheduled there
                _source_backtrack(node, hb.initials(i, p) & set(node.enabled), p)
                return
            if p in node.enabled:
                if any((p, alt) not in node.sleep for alt in range(node.alts.get(p, 1))):
                    node.backtrack.add(p)
                else:
                    # p is asleep there, so adding it explores nothing, yet the race can
                    # still need another actor to move first (found by the hypothesis
                    # soundness test): fall back to every enabled actor, as FG do when
                    # p is not enabled.
                    node.backtrack.update(node.enabled)
                return
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

    def search_params() -> dict[str, Any]:
        out = _params(reduce, cache, bounded_by_preemption, source_sets, symmetric, sleep_sets)
        if bounded_by_preemption and bounded_por:
            out["bounded_por"] = True  # the cut covers every schedule within the bound
        if cache and len(visited):
            out["cache_bytes_per_state"] = round(visited.nbytes() / len(visited))
        return out

    def pop() -> Node:
        """Leave the deepest node: its subtree is explored.  Stateful DPOR
        passes its summary up and closes its cache entry."""
        node = stack.pop()
        if stateful:
            if stack:
                stack[-1].summary |= node.summary
            if node.key is not None:
                visited.close(node.key, node.summary)
        elif node.key is not None:
            path_keys[node.key] -= 1
        return node

    def on_path(nodes: list[Node]) -> None:
        """Full expansion with the cache: these nodes' states are on the current path."""
        for n in nodes:
            if n.key is not None:
                path_keys[n.key] = path_keys.get(n.key, 0) + 1

    causal = program.memory_model != "sc" or bool(program.removed_barriers)
    # Sleep sets assume an explored sibling covered every order equivalent to
    # the sleeping one; under a preemption bound the equivalent order can cost
    # more preemptions and have been cut (found by test_bpor), so none then.
    sleep_sets = bounds.max_preemptions is None or not bounded_por
    ex = Execution(program, history=cache)
    ex.fp_shared = fp_shared
    hb = HappensBefore(len(ex.actors), causal)
    symmetric = cache and bool(ex.world.symmetries)
    # Stateful DPOR (Yang, Chen, Gopalakrishnan & Kirby, SPIN 2008): DPOR with
    # the cache; a cached state's summary stands in for its subtree in the
    # race analysis.  Not under weak memory (causal footprints) or symmetry.
    stateful = stateful_dpor and cache and dpor and not causal and not symmetric
    if stateful:
        reduce, source_sets = True, False
    if resume is not None:
        # Rebuild the path of the checkpoint: its nodes as saved, the execution
        # and the vector clocks by replaying the prefix.
        stack.extend(node_from_json(d) for d in resume["nodes"])
        on_path(stack)
        schedule = [(q, alt) for q, alt in resume["schedule"]]
        base = resume.get("base", 0)
        stats = Stats(**resume["stats"])
        start_execs = stats.executions
        if cache and "cache" in resume:
            visited = VisitedStates.from_json(resume["cache"])
            accesses = Accesses.from_json(resume["cache"]["accesses"])
        bounded_by_preemption = resume.get("preemption_bound_cut", False)
        # (The rule must have run from the start: a checkpoint from without it resumes without it.)
        bounded_por = bounded_por and resume.get("bounded_por", False)
        sleep_sets = bounds.max_preemptions is None or not bounded_por
        fps = [stack[k].fps[q] if k >= base else tuple(map(tuple, resume["prefix_fps"][k])) for k, (q, _alt) in enumerate(schedule)]
        replay_prefix(ex, schedule, fps)  # type: ignore[arg-type]
        for k, (q, _alt) in enumerate(schedule):
            hb.push(q, fps[k])  # type: ignore[arg-type]
        stats.steps += len(schedule)
    elif root is not None or path is not None:
        if path is not None:
            stack.extend(path[0])
            on_path(stack)
            schedule = list(path[1])
            fps = [stack[k].fps[q] for k, (q, _alt) in enumerate(schedule)]
        else:
            assert root is not None
            schedule = [(q, alt) for q, alt in root["prefix"]]
            fps = [_fp_load(fp) for fp in root["prefix_fps"]]
        replay_prefix(ex, schedule, fps)
        for k, (q, _alt) in enumerate(schedule):
            hb.push(q, fps[k])
        stats.steps += len(schedule)
        if root is not None:
            # The prefix's nodes as the coordinator saw them; backtrack points the
            # races here add to them are reported back (``prefix_backtracks``).
            base = len(schedule)
            for k, d in enumerate(root["frozen"]):
                q0 = schedule[k][0]
                n = Node(d["enabled"], {q: a for q, a in d["alts"]}, {q0: fps[k]}, {(q, alt): _fp_load(fp) for q, alt, fp in d["sleep"]}, d["preempt"], d["prev"])
                n.done = {(q, alt): _fp_load(fp) for q, alt, fp in d.get("done", ())}
                n.done[schedule[k]] = fps[k]
                stack.append(n)
            sleep = {(q, alt): _fp_load(fp) for q, alt, fp in root["sleep"]}
            top = make_node(ex, sleep, root["preempt"], root["prev"])
            if root.get("only") is not None:
                # A branch given away by another search: explore these actors here
                # (and whatever races add), not the node's default choice.
                top.backtrack = set(root["only"])
                top.done = {(q, alt): _fp_load(fp) for q, alt, fp in root["done"]}
            stack.append(top)
            stats.states = 1
    else:
        stack.append(make_node(ex, {}, 0, -1))
        stats.states = 1
    while True:
        # ---- extend the current path to the end of an execution
        end_reason = ""
        fresh = True  # a new execution: the race analysis starts from every actor
        while True:
            if ex.violation is not None:
                end_reason = "violation"
                break
            node = stack[-1]
            if not node.enabled:
                ex.finish(bounded=False)
                end_reason = "violation" if ex.violation is not None else "end"
                break
            if split_depth is not None and sum(1 for n in stack if _forks(n, bounds.max_preemptions)) >= split_depth:
                assert on_split is not None
                on_split(work_item(stack, schedule), stack[:-1])
                splits += 1
                end_reason = "split"
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
            for s, sfp in [*node.sleep.items(), *node.done.items()] if sleep_sets else ():
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
            considered = analyse(ex, hb, fresh) if reduce else 0
            fresh = False
            child = make_node(ex, child_sleep, preempt, q)
            child.summary = considered
            stack.append(child)
            stats.states += 1
            if cache and ex.violation is None:
                if symmetric:
                    key, perm = symmetric_fingerprint(ex)
                    sleep_keys = frozenset((perm.get(q, q), alt) for q, alt in child_sleep)
                else:
                    key = ex.fingerprint()
                    sleep_keys = frozenset(child_sleep)
                if bounds.max_preemptions is not None:
                    key = hash((key, q)) & _MASK64  # what counts as a preemption next depends on who ran last
                depth = len(schedule)
                if bounds.max_preemptions is None:
                    preempt = 0  # (counted, but no bound reads it)
                if not stateful:
                    if visited.seen(key, depth, sleep_keys, preempt):
                        stats.pruned += 1
                        if path_keys.get(key):
                            stats.cycles += 1  # back at a state of its own path: it could go round for ever
                        end_reason = "cached"
                        break
                    visited.open(key, depth, sleep_keys, preempt)
                    visited.close(key, 0)
                    child.key = key
                    on_path([child])
                    continue
                summary = visited.covers(key, depth, sleep_keys, preempt)
                if summary is not None:
                    # The subtree below was explored from another path: its
                    # transitions may race with this path's steps (SPIN 2008).
                    for p, pfp in accesses.transitions(summary):
                        for i in hb.race_points(p, pfp, hb.clock[p]):
                            backtrack_at(i, p, pfp, hb.clock[p])
                    child.summary |= summary
                    stats.pruned += 1
                    end_reason = "cached"
                    break
                visited.open(key, depth, sleep_keys, preempt)
                child.key = key
        if end_reason != "split":
            stats.executions += 1
        if end_reason in ("bound", "cached", "split"):
            # The leaf's own transitions are out of bounds, or were explored from an
            # earlier visit of the same state: drop it, or backtracking would resume
            # right there (an endless loop at the step bound, no pruning by the cache).
            pop()
        if progress is not None and stats.executions % 64 == 0:
            stats.seconds = budget.elapsed()
            if cache:
                stats.states = len(visited)  # (distinct states, as the result counts them)
            progress(stats)
        if end_reason == "violation":
            stats.seconds = budget.elapsed()
            if cache:
                stats.states = len(visited)
            return Exploration("exhaustive", ex.violation, list(schedule), stats, False, True, search_params())
        # ---- backtrack to the deepest node with work left
        while len(stack) > base and stack[-1].todo() is None:
            pop()
        if len(stack) <= base:
            break
        if donate is not None and on_donate is not None and donate():
            item = _give_away(stack, schedule, base, bounds.max_preemptions)
            if item is not None:
                on_donate(item)
            while len(stack) > base and stack[-1].todo() is None:
                pop()
            if len(stack) <= base:
                break
        if budget.exhausted(stats, start_execs) or (stop is not None and stop()):
            complete = False
            depth = len(stack) - 1
            state = {
                "schedule": [list(t) for t in schedule[:depth]],
                "nodes": [node_to_json(n) for n in stack],
                "base": base,
                "prefix_fps": [list(map(list, f)) for f in hb.step_fp[:base]],
                "stats": stats.as_dict() | {"seconds": 0.0},
                "preemption_bound_cut": bounded_by_preemption,
                "bounded_por": bounded_por,
            }
            if cache:
                # Fingerprints are the same in every process: the resumed search
                # prunes what this one would have.
                state["cache"] = visited.to_json() | {"accesses": accesses.to_json()}
            stats.seconds = budget.elapsed()
            if cache:
                stats.states = len(visited)
            res = Exploration("exhaustive", None, None, stats, False, True, search_params())
            res.checkpoint = state
            return res
        depth = len(stack) - 1
        del schedule[depth:]
        hb.truncate(depth)
        ex = Execution(program, history=cache)
        ex.fp_shared = fp_shared
        replay_prefix(ex, schedule, hb.step_fp, seen=True)
        stats.steps += depth
    stats.seconds = budget.elapsed()
    if cache:
        stats.states = len(visited)
    res = Exploration("exhaustive", None, None, stats, complete, True, search_params())
    if root is not None:
        res.prefix_backtracks = [(k, sorted(stack[k].backtrack)) for k in range(base) if stack[k].backtrack]
    return res


def work_item(stack: list[Node], schedule: list[Transition]) -> dict[str, Any]:
    """The subtree under the current path's last node, as JSON: its prefix (with
    footprints, so the prefix replays without recomputing them) and sleep set."""
    node = stack[-1]
    return {
        "prefix": [list(t) for t in schedule],
        "prefix_fps": [list(map(list, stack[k].fps[q])) for k, (q, _alt) in enumerate(schedule)],
        "sleep": [[q, alt, _fp_json(fp)] for (q, alt), fp in node.sleep.items()],
        "preempt": node.preempt,
        "prev": node.prev,
        "frozen": [
            {
                "enabled": n.enabled,
                "alts": [[q, a] for q, a in n.alts.items()],
                "sleep": [[q, alt, _fp_json(fp)] for (q, alt), fp in n.sleep.items()],
                "done": [[q, alt, _fp_json(fp)] for (q, alt), fp in n.done.items()],
                "preempt": n.preempt,
                "prev": n.prev,
            }
            for n in stack[: len(schedule)]
        ],
    }


def _give_away(stack: list[Node], schedule: list[Transition], base: int, max_preemptions: int | None) -> dict[str, Any] | None:
    """Mark one pending actor of the shallowest node with work as done here and
    return it as a branch work item (its subtree is explored elsewhere)."""
    for k in range(base, len(stack) - 1):
        node = stack[k]
        for q in sorted(node.backtrack, key=lambda q: (q != node.prev, q)):
            alts = [(q, alt) for alt in range(node.alts.get(q, 1)) if (q, alt) not in node.done and (q, alt) not in node.sleep]
            if not alts or (max_preemptions is not None and _preempts(node, q) and node.preempt + 1 > max_preemptions):
                continue
            item = work_item(stack[: k + 1], schedule[:k])
            item["only"] = [q]
            item["done"] = [[d[0], d[1], _fp_json(fp)] for d, fp in node.done.items()]
            for t in alts:
                node.done[t] = node.fps[q]
            return item
    return None


def _fp_json(fp: Footprint) -> list[list[str]]:
    return [list(fp[0]), list(fp[1])]


def _fp_load(d: list[list[str]]) -> Footprint:
    return (tuple(d[0]), tuple(d[1]))


def node_to_json(n: Node) -> dict[str, Any]:
    return {
        "enabled": n.enabled,
        "alts": [[q, a] for q, a in n.alts.items()],
        "fps": [[q, _fp_json(fp)] for q, fp in n.fps.items()],
        "backtrack": sorted(n.backtrack),
        "done": [[q, alt, _fp_json(fp)] for (q, alt), fp in n.done.items()],
        "sleep": [[q, alt, _fp_json(fp)] for (q, alt), fp in n.sleep.items()],
        "preempt": n.preempt,
        "prev": n.prev,
    } | ({"key": None if n.key is None else f"{n.key:x}", "summary": f"{n.summary:x}"} if n.key is not None or n.summary else {})


def node_from_json(d: dict[str, Any]) -> Node:
    n = Node(list(d["enabled"]), {q: a for q, a in d["alts"]}, {q: _fp_load(fp) for q, fp in d["fps"]}, {(q, alt): _fp_load(fp) for q, alt, fp in d["sleep"]}, d["preempt"], d["prev"])
    n.backtrack = set(d["backtrack"])
    n.done = {(q, alt): _fp_load(fp) for q, alt, fp in d["done"]}
    if "summary" in d:
        n.key = None if d["key"] is None else int(d["key"], 16)
        n.summary = int(d["summary"], 16)
    return n


def _forks(node: Node, max_preemptions: int | None) -> bool:
    """More than one transition may be explored from this node (the splitter's measure of depth)."""
    n = 0
    for q in node.enabled:
        if max_preemptions is not None and _preempts(node, q) and node.preempt + 1 > max_preemptions:
            continue
        n += sum(1 for alt in range(node.alts.get(q, 1)) if (q, alt) not in node.sleep)
        if n > 1:
            return True
    return False


def _awake(node: Node, q: int) -> bool:
    return any((q, alt) not in node.sleep for alt in range(node.alts.get(q, 1)))


def _source_backtrack(node: Node, initials: set[int], p: int) -> None:
    """Source sets (Abdulla et al., POPL 2014): add an initial of the reversing
    sequence only if no initial is already explored or scheduled there.  An
    initial only counts if it is awake at the node; when every initial is
    asleep (or none is enabled) fall back to every enabled actor, as the FG
    rule does when p is not enabled (conservative; see test_dpor_race_behind_a_sleeping_actor)."""
    awake = [q for q in sorted(initials) if _awake(node, q)]
    if not awake:
        node.backtrack.update(node.enabled)
        return
    if any(q in node.backtrack or any(t[0] == q for t in node.done) for q in awake):
        return
    node.backtrack.add(p if p in awake else awake[0])


def replay_prefix(ex: Execution, schedule: list[Transition], fps: list[Footprint], seen: bool = False) -> None:
    """Re-run a prefix the search already ran: its footprints are known and no
    invariant failed along it (model code is deterministic), so only the
    transitions and the liveness monitors' armed state are recomputed.
    ``seen``: this process ran the prefix before, so what it reaches is
    already recorded (engine/coverage.py records nothing while replaying)."""
    ex.replaying = seen
    try:
        _replay(ex, schedule, fps, bool(ex.world.liveness))
    finally:
        ex.replaying = False


def _replay(ex: Execution, schedule: list[Transition], fps: list[Footprint], live: bool) -> None:
    for k, (q, alt) in enumerate(schedule):
        ex.schedule.append((q, alt))
        ex.footprints.append(fps[k])
        ex.steps += 1
        a = ex.actors[q]
        ex._transition(a, alt)
        if live:
            ex.liveness_after(a, fps[k][1], replayed=True)


def _preempts(node: Node, q: int) -> bool:
    """Switching to q here preempts the previous actor, which could have continued."""
    return node.prev >= 0 and q != node.prev and node.prev in node.enabled


def _params(reduced: bool, cache: bool, preemption_cut: bool, source_sets: bool = False, symmetry: bool = False, sleep_sets: bool = True) -> dict[str, Any]:
    out = {"dpor": reduced, "source_sets": reduced and source_sets, "sleep_sets": sleep_sets, "state_cache": cache, "preemption_bound_cut": preemption_cut}
    if reduced and cache:
        out["stateful_dpor"] = True
    if symmetry:
        out["symmetry"] = True
    return out
