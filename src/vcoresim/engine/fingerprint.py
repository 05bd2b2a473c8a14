"""State fingerprints for state caching.

Two states with equal fingerprints must behave the same for every future
step.  Model code is deterministic: an actor's local state (program point,
locals, loop iterators, parked stacks of the tasks it ran) is a function of
the values its operations returned.  So the fingerprint covers shared memory,
every actor's MSR, status and the hash of its observation history, saved
frames and monitor state.  Two interleavings that differ only in the order of
independent steps give every actor the same history, which is exactly the
equivalence partial-order reduction produces.  (Reading a generator's frame
locals instead misses iterator state on the value stack, which made an
earlier version unsound.)
"""

from __future__ import annotations

from typing import Any

_PLAIN = (int, str, float, bool, type(None))


def canon(v: Any, depth: int = 0) -> Any:
    if isinstance(v, _PLAIN):
        return v
    fp = getattr(v, "__fp__", None)
    if fp is not None:
        return fp()
    if depth > 4:
        return type(v).__name__
    if isinstance(v, (tuple, list)):
        return tuple(canon(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((repr(k), canon(x, depth + 1)) for k, x in v.items()))
    if isinstance(v, (set, frozenset)):
        return tuple(sorted(repr(canon(x, depth + 1)) for x in v))
    if hasattr(v, "gi_code"):  # a generator: it is on a stack, fingerprinted there
        return "<gen>"
    return type(v).__name__


def state_fingerprint(ex: Any) -> int:  # an engine.runtime.Execution
    """Memory, each actor's mode and observation history, saved frames, monitors."""
    mem = tuple(sorted((k, canon(v)) for k, v in ex.mem.items()))
    actors = tuple((a.status, a.msr, len(a.stack), h) for a, h in zip(ex.actors, ex.history, strict=True))
    frames = tuple(sorted((k, r[0], r[3]) for k, r in ex.frames.items()))
    return hash((mem, actors, frames, tuple(ex._live_armed)))


def symmetric_fingerprint(ex: Any) -> tuple[int, dict[int, int]]:  # an engine.runtime.Execution
    """The fingerprint of the state's canonical representative under the
    world's declared symmetries, and the permutation (actor index -> index of
    the actor whose place it takes) that maps this state onto it.

    Members of a group are sorted by their block (mode, observation history,
    saved frames, the values of their own locations); the canonical state
    puts the smallest block first.  Values in ``owner_locs`` are renamed with
    the permutation.  Two states that differ only by a permutation of the
    members get the same fingerprint; sleep sets must be renamed with the
    returned permutation before they are compared."""
    syms = ex.world.symmetries
    perm: dict[int, int] = {}
    member_locs: set[str] = set()
    blocks_out: list[Any] = []
    by_name = {a.name: a for a in ex.actors}
    owner_of_frames: dict[int, list[Any]] = {}
    for k, r in sorted(ex.frames.items()):
        owner_of_frames.setdefault(r[0], []).append(r[3])
    for sym in syms:
        members = [by_name[n] for n in sym.actors]
        keyed = []
        for a, locs in zip(members, sym.locs, strict=True):
            member_locs.update(locs)
            h = ex.history[a.idx]
            block = (a.status, a.msr, len(a.stack), h, tuple(canon(ex.mem[loc]) for loc in locs), tuple(owner_of_frames.get(a.idx, ())))
            keyed.append((repr(block), a.idx))
        keyed.sort()
        for slot, (_b, idx) in enumerate(keyed):
            perm[idx] = members[slot].idx
        blocks_out.append(tuple(b for b, _i in keyed))
    owner_locs = {loc for sym in syms for loc in sym.owner_locs}
    mem_items = []
    for k, v in ex.mem.items():
        if k in member_locs:
            continue
        if k in owner_locs and isinstance(v, int) and v - 1 in perm:
            v = perm[v - 1] + 1
        mem_items.append((k, canon(v)))
    mem = tuple(sorted(mem_items))
    others = tuple((a.status, a.msr, len(a.stack), h) for a, h in zip(ex.actors, ex.history, strict=True) if a.idx not in perm)
    frames = tuple(sorted((k, r[0], r[3]) for k, r in ex.frames.items() if r[0] not in perm))
    return hash((mem, others, tuple(blocks_out), frames, tuple(ex._live_armed))), perm
