"""The hold-back ledger: records copied out of a kernel ring but not yet handed to the caller.

A reader copies records out, *then* hands their space back to the producer (the commit). Ctrl-C
can land anywhere in between or after, so each copied span is entered here before its commit;
the reader hands out what the ledger holds. This is what makes "no record lost or delivered
twice" hold through interrupts: an entry whose commit never happened is forgotten (its records
are still in the kernel ring and are read again), and batches a :class:`~bpfkit.events.Poller`
could not deliver come back here, first in line, without being counted twice.

Example::

    ledger = Ledger("events")
    ledger.hold(batch, ring, end=pos)     # before committing `pos`
    out, keep = ledger.split(max_records=None)
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from .batch import Batch, convert, join, split

__all__ = ["Held", "Ledger"]


class Held:
    """One span of records copied out of a ring.

    ``ring.committed()`` is that ring's consumer position; ``end`` the position just after these
    records. An entry is stored *before* its commit, so an interrupt between the two leaves an
    entry whose ``end`` is past the commit: it is dropped and the records are read again.
    ``counted`` entries were handed out once and given back (a Poller interrupted before it could
    deliver them): always valid, not counted again."""

    __slots__ = ("batch", "ring", "end", "skipped", "other", "counted")

    def __init__(self, batch: Optional[Batch], ring: Any, end: int, skipped: int = 0, other: int = 0,
                 counted: bool = False) -> None:
        self.batch = batch      # None: the span held only skipped records
        self.ring = ring
        self.end = end
        self.skipped = skipped  # discarded (ring buffer) / reported lost (perf buffer) on the way
        self.other = other      # perf records of other types
        self.counted = counted

    def __len__(self) -> int:
        return 0 if self.batch is None else len(self.batch)


class Ledger:
    """The held spans of one reader, oldest first. ``entries`` is replaced, never mutated in
    place by :meth:`split` users, so a reader can swap in what it keeps with one store."""

    __slots__ = ("name", "entries")

    def __init__(self, name: str) -> None:
        self.name = name
        self.entries: list[Held] = []

    def __bool__(self) -> bool:
        return bool(self.entries)

    def hold(self, batch: Optional[Batch], ring: Any, end: int, skipped: int = 0, other: int = 0) -> None:
        """Enter a span; call it *before* committing ``end``: from here on the records belong to us."""
        self.entries.append(Held(batch, ring, end, skipped, other))

    def forget_uncommitted(self) -> None:
        """Drop the span whose commit never happened (an interrupt came between :meth:`hold` and the
        commit): its records are still in the kernel ring and are read again. Call before reading."""
        # only the newest entry can be stale: nothing is read after an interrupted commit
        if self.entries:
            h = self.entries[-1]
            if not h.counted and h.end > h.ring.committed():
                self.entries.pop()

    def give_back(self, held: list[Held]) -> None:
        """Put already-counted spans (a batch handed out but not delivered) first in line."""
        self.entries[:0] = held

    def records(self) -> int:
        """How many records are held."""
        return sum(len(h) for h in self.entries)

    def split(self, max_records: Optional[int]) -> tuple[list[Held], list[Held]]:
        """(entries to hand out now, entries to keep), at most ``max_records`` records handed out."""
        held = self.entries
        if max_records is None:
            return held, []
        out: list[Held] = []
        left = max_records
        for i, h in enumerate(held):
            if len(h) <= left:
                out.append(h)
                left -= len(h)
                continue
            keep = held[i:]
            if left > 0:
                assert h.batch is not None
                head, tail = split(h.batch, left)
                out.append(Held(head, h.ring, h.end, h.skipped, h.other, h.counted))
                keep = [Held(tail, h.ring, h.end, counted=h.counted)] + held[i + 1:]
            return out, keep
        return out, []

    def join(self, entries: list[Held], dt: Optional[np.dtype]) -> Batch:
        """One batch of ``dt`` (RawBatch for None) from ``entries``, converting entries read with
        another dtype by an earlier, interrupted drain."""
        return join([convert(h.batch, dt, self.name) for h in entries if h.batch is not None], dt)
