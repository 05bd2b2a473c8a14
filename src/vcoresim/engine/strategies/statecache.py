"""The state cache's tables: visited states and the accesses stateful DPOR keeps per state.

``VisitedStates`` maps a state's fingerprint (a stable 64-bit int,
engine/fingerprint.py) to what the search knows of it: the least depth and
preemption count it was explored at, the sleep set it was explored with
(interned), how many explorations of it are still open (on the current
path), and the summary of the accesses its subtree considered (interned).
A search split over processes can share the fingerprints (plain ints); the
entries are plain ints and tuples, so they pickle.

``Accesses`` numbers (actor, location, read/write) triples: a transition's
footprint becomes a bit set, a subtree's summary the union of its
transitions' bit sets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

Footprint = tuple[tuple[str, ...], tuple[str, ...]]
Transition = tuple[int, int]


class Accesses:
    """(actor, location, is-write) triples as bits of an int."""

    def __init__(self) -> None:
        self.bit: dict[tuple[int, str, bool], int] = {}
        self.fp_of_bit: list[tuple[int, Footprint]] = []
        self._memo: dict[tuple[int, Footprint], int] = {}

    def mask(self, actor: int, fp: Footprint) -> int:
        key = (actor, fp)
        m = self._memo.get(key)
        if m is not None:
            return m
        m = 0
        reads, writes = fp
        for loc in writes:
            m |= 1 << self._bit(actor, loc, True)
        for loc in reads:
            if loc not in writes:
                m |= 1 << self._bit(actor, loc, False)
        self._memo[key] = m
        return m

    def _bit(self, actor: int, loc: str, write: bool) -> int:
        k = (actor, loc, write)
        b = self.bit.get(k)
        if b is None:
            b = self.bit[k] = len(self.fp_of_bit)
            self.fp_of_bit.append((actor, ((), (loc,)) if write else ((loc,), ())))
        return b

    def to_json(self) -> list[list[Any]]:
        return [[actor, fp[1][0] if fp[1] else fp[0][0], bool(fp[1])] for actor, fp in self.fp_of_bit]

    @classmethod
    def from_json(cls, d: list[list[Any]]) -> Accesses:
        out = cls()
        for actor, loc, write in d:
            out._bit(actor, loc, write)
        return out

    def transitions(self, mask: int) -> Iterator[tuple[int, Footprint]]:
        """One single-access footprint per bit of ``mask``."""
        fp_of_bit = self.fp_of_bit
        while mask:
            low = mask & -mask
            yield fp_of_bit[low.bit_length() - 1]
            mask ^= low


# An entry packs five fields into one int (about 110 bytes a state with the
# dict's own costs, instead of ~200 for a list): open explorations (8 bits),
# preemptions (8), depth (20), sleep set id (24), summary id (the rest).
_OPEN, _PRE, _DEPTH, _SLEEP = 0, 8, 16, 36
_SUM = 60
_M8, _M20, _M24 = (1 << 8) - 1, (1 << 20) - 1, (1 << 24) - 1


class VisitedStates:
    """fingerprint -> packed entry (see above); sleep sets and summaries interned."""

    def __init__(self) -> None:
        self.table: dict[int, int] = {}
        self._sleeps: dict[frozenset[Transition], int] = {}
        self.sleeps: list[frozenset[Transition]] = []
        self._summaries: dict[int, int] = {0: 0}
        self.summaries: list[int] = [0]

    def __len__(self) -> int:
        return len(self.table)

    def __contains__(self, key: int) -> bool:
        return key in self.table

    def sleep_id(self, sleep: frozenset[Transition]) -> int:
        i = self._sleeps.get(sleep)
        if i is None:
            i = self._sleeps[sleep] = len(self.sleeps)
            self.sleeps.append(sleep)
        return i

    def summary_id(self, summary: int) -> int:
        i = self._summaries.get(summary)
        if i is None:
            i = self._summaries[summary] = len(self.summaries)
            self.summaries.append(summary)
        return i

    @staticmethod
    def _unpack(e: int) -> tuple[int, int, int, int, int]:
        """(depth, sleep id, preemptions, summary id, open explorations)"""
        return (e >> _DEPTH) & _M20, (e >> _SLEEP) & _M24, (e >> _PRE) & _M8, e >> _SUM, e & _M8

    @staticmethod
    def _pack(depth: int, sleep: int, preempt: int, summary: int, open_: int) -> int:
        if depth > _M20 or preempt > _M8 or sleep > _M24:
            raise OverflowError("state cache entry: depth, preemptions or sleep sets beyond their fields")
        return depth << _DEPTH | sleep << _SLEEP | preempt << _PRE | summary << _SUM | open_

    def covers(self, key: int, depth: int, sleep: frozenset[Transition], preempt: int) -> int | None:
        """The summary of a finished exploration that covers a visit at
        ``depth`` with ``sleep`` and ``preempt`` preemptions so far (it was at
        no greater depth and preemption count, with no larger sleep set), else None."""
        e = self.table.get(key)
        if e is None or e & _M8:
            return None
        d, s, p, summary, _ = self._unpack(e)
        if d > depth or p > preempt or not self.sleeps[s] <= sleep:
            return None
        return self.summaries[summary]

    def seen(self, key: int, depth: int, sleep: frozenset[Transition], preempt: int) -> bool:
        """Without summaries (full expansion): was the state explored (or is it
        being explored) at no greater depth and preemptions, with no larger sleep set?"""
        e = self.table.get(key)
        if e is None:
            return False
        d, s, p, _, _ = self._unpack(e)
        return d <= depth and p <= preempt and self.sleeps[s] <= sleep

    def open(self, key: int, depth: int, sleep: frozenset[Transition], preempt: int) -> None:
        """An exploration of the state starts; the entry now claims what every
        exploration of it together covers (the least depth and preemptions,
        the intersection of the sleep sets)."""
        e = self.table.get(key)
        if e is None:
            self.table[key] = self._pack(depth, self.sleep_id(sleep), preempt, 0, 1)
            return
        d, s, p, summary, n = self._unpack(e)
        if n >= _M8:
            raise OverflowError("a state opened 255 times on one path")
        self.table[key] = self._pack(min(d, depth), self.sleep_id(self.sleeps[s] & sleep), min(p, preempt), summary, n + 1)

    def close(self, key: int, summary: int) -> None:
        d, s, p, old, n = self._unpack(self.table[key])
        merged = self.summaries[old] | summary
        self.table[key] = self._pack(d, s, p, old if merged == self.summaries[old] else self.summary_id(merged), n - 1)

    def nbytes(self) -> int:
        """Bytes the table holds: the dict, its keys and entries, the interned sleep sets and summaries."""
        import sys

        n = sys.getsizeof(self.table) + sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in self.table.items())
        n += sys.getsizeof(self.summaries) + sys.getsizeof(self._summaries) + sum(sys.getsizeof(x) for x in self.summaries)
        n += sys.getsizeof(self.sleeps) + sys.getsizeof(self._sleeps) + sum(sys.getsizeof(x) for x in self.sleeps)
        return n

    def to_json(self) -> dict[str, Any]:
        """The table as JSON (for a checkpoint): fingerprints and entries as hex, sleep sets, summaries."""
        return {
            "table": [f"{k:x}:{v:x}" for k, v in self.table.items()],
            "sleeps": [sorted([q, alt] for q, alt in sl) for sl in self.sleeps],
            "summaries": [f"{m:x}" for m in self.summaries],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> VisitedStates:
        out = cls()
        for sl in d["sleeps"]:
            out.sleep_id(frozenset((q, alt) for q, alt in sl))
        for m in d["summaries"][1:]:
            out.summary_id(int(m, 16))
        for item in d["table"]:
            k, v = item.split(":")
            out.table[int(k, 16)] = int(v, 16)
        return out

    def stats(self) -> dict[str, Any]:
        return {"states": len(self.table), "sleep_sets": len(self.sleeps), "summaries": len(self.summaries), "bytes": self.nbytes()}
