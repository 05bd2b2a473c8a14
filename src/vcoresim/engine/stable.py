"""Hashes that are the same in every process (Python's ``hash`` of a ``str``
or, before 3.12, of ``None`` is not), for fingerprints that a search may
share between processes or machines.

Only ``int`` and ``float`` hash the same everywhere, and so does a tuple of
them; ``stable`` maps the plain values model code uses onto those.
"""

from __future__ import annotations

import hashlib
from typing import Any

_STR: dict[str, int] = {}
#: Stand-ins for values whose ``hash`` varies between processes.
NONE = 0x5F3759DF_0000_0001
TRUE, FALSE = 1, 0  # bool is an int: True == 1 anyway


def stable_str(s: str) -> int:
    """A 64-bit hash of ``s`` that does not depend on PYTHONHASHSEED."""
    h = _STR.get(s)
    if h is None:
        h = _STR[s] = int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
    return h


def stable(v: Any) -> Any:
    """A process-independent stand-in for a plain value (int, str, None,
    float, and tuples, lists, sets and dicts of them, objects with ``__fp__``);
    type and ``repr`` for anything else (what an operation returns is one of
    these; the state cache encodes generator locals itself,
    engine/fingerprint.py)."""
    t = type(v)
    if t is int or t is float or t is bool:
        return v
    if t is str:
        return stable_str(v)
    if v is None:
        return NONE
    if t is tuple or t is list:
        return tuple(stable(x) for x in v)
    if isinstance(v, int):  # int subclasses (FrameRef is handled by the callers)
        return int(v)
    if t is dict:
        return tuple(sorted((stable(k), stable(x)) for k, x in v.items()))
    if t is frozenset or t is set:
        return tuple(sorted(hash(stable(x)) for x in v))
    fp = getattr(v, "__fp__", None)
    if fp is not None:
        return stable(fp())
    return stable_str(f"{t.__qualname__}:{v!r}")
