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

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vcoresim.engine.runtime import Execution

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


def state_fingerprint(ex: Execution) -> int:
    """Memory, each actor's mode and observation history, saved frames, monitors."""
    mem = tuple(sorted((k, canon(v)) for k, v in ex.mem.items()))
    actors = tuple((a.status, a.msr, len(a.stack), h) for a, h in zip(ex.actors, ex.history, strict=True))
    frames = tuple(sorted((k, r[0], r[3]) for k, r in ex.frames.items()))
    return hash((mem, actors, frames, tuple(ex._live_armed)))
