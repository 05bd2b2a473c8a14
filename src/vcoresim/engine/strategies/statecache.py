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

    def transitions(self, mask: int) -> Iterator[tuple[int, Footprint]]:
        """One single-access footprint per bit of ``mask``."""
        fp_of_bit = self.fp_of_bit
        while mask:
            low = mask & -mask
            yield fp_of_bit[low.bit_length() - 1]
            mask ^= low


class VisitedStates:
    """fingerprint -> [depth, sleep set id, preemptions, summary id, open explorations]."""

    def __init__(self) -> None:
        self.table: dict[int, list[int]] = {}
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

    def covers(self, key: int, depth: int, sleep: frozenset[Transition], preempt: int) -> int | None:
        """The summary of a finished exploration that covers a visit at
        ``depth`` with ``sleep`` and ``preempt`` preemptions so far (it was at
        no greater depth and preemption count, with no larger sleep set), else None."""
        e = self.table.get(key)
        if e is None or e[4] or e[0] > depth or e[2] > preempt or not self.sleeps[e[1]] <= sleep:
            return None
        return self.summaries[e[3]]

    def seen(self, key: int, depth: int, sleep: frozenset[Transition], preempt: int) -> bool:
        """Without summaries (full expansion): was the state explored (or is it
        being explored) at no greater depth and preemptions, with no larger sleep set?"""
        e = self.table.get(key)
        return e is not None and e[0] <= depth and e[2] <= preempt and self.sleeps[e[1]] <= sleep

    def open(self, key: int, depth: int, sleep: frozenset[Transition], preempt: int) -> None:
        """An exploration of the state starts; the entry now claims what every
        exploration of it together covers (the least depth and preemptions,
        the intersection of the sleep sets)."""
        e = self.table.get(key)
        if e is None:
            self.table[key] = [depth, self.sleep_id(sleep), preempt, 0, 1]
            return
        e[0] = min(e[0], depth)
        e[1] = self.sleep_id(self.sleeps[e[1]] & sleep)
        e[2] = min(e[2], preempt)
        e[4] += 1

    def close(self, key: int, summary: int) -> None:
        e = self.table[key]
        e[3] = self.summary_id(self.summaries[e[3]] | summary)
        e[4] -= 1

    def stats(self) -> dict[str, Any]:
        return {"states": len(self.table), "sleep_sets": len(self.sleeps), "summaries": len(self.summaries)}
