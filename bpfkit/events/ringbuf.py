"""BPF ring buffer (``BPF_MAP_TYPE_RINGBUF``) consumer over mmap, yielding numpy batches.

Layout (kernel/bpf/ringbuf.c): page 0 holds the consumer position (the only thing we write),
page 1 the producer position, then the data area mapped twice back to back, so a record never
wraps in our view. Each record starts with an 8-byte header: a u32 ``len`` carrying the BUSY
(bit 31: reserved, not yet submitted) and DISCARD (bit 30) flags, then ``pg_off``; records are
8-byte aligned. Positions only grow; ``pos & mask`` is the offset in the data area.

Ordering: the producer publishes a record by clearing BUSY with a release store after writing
it, and advances the producer position with a release store after reserving. We read the producer
position, then the headers, then the records, and store the consumer position only after copying
them out. On x86-64 (TSO) loads are not reordered with loads nor stores with earlier loads, so
plain loads/stores give exactly those acquire/release semantics.

Fixed-size records (a dtype is known) are cut out of the mapping with two numpy operations per
chunk: a strided read of all headers and one strided copy of the payloads; no Python per record.
Variable-size records come back as a :class:`~bpfkit.events.RawBatch`.

Example::

    rb = obj.reader("events")                   # dtype from BPFKIT_RINGBUF's record type
    for batch in rb.read(timeout=1.0):          # numpy structured arrays
        print(batch["pid"], rb.dropped)
"""
from __future__ import annotations

import mmap
import os
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .. import _sys as sc
from ..errors import BpfError, BpfUsageError
from .batch import Batch, RawBatch, gather_fixed
from .ledger import Held
from .reader import EventReader

if TYPE_CHECKING:
    from ..maps import Map

__all__ = ["RingBuffer"]

BUSY = 1 << 31
DISCARD = 1 << 30
LEN_MASK = DISCARD - 1
HDR = 8
PAGE = mmap.PAGESIZE
# Records copied per commit of the consumer position: small enough to hand space back to the
# producer often, large enough that numpy's per-call overhead vanishes.
CHUNK_BYTES = 1 << 20

if os.uname().machine not in ("x86_64", "i686", "i386", "AMD64"):  # pragma: no cover
    import warnings

    warnings.warn("bpfkit's ring buffer reader relies on x86 (TSO) memory ordering; on this CPU a "
                  "record could be read before its contents are visible", RuntimeWarning, stacklevel=2)


class RingBuffer(EventReader):
    """Reader of a BPF ring buffer map. ``dtype`` is the record dtype (default: the map's, from
    ``BPFKIT_RINGBUF``; None: variable-size records, read as :class:`RawBatch`). Counters:
    ``received``, ``discarded`` and, with the ``BPFKIT_RESERVE`` pattern of ``bpfkit.h``,
    ``dropped`` (failed reserves, read live).

    Example::

        rb = RingBuffer(obj.maps.events)      # or obj.reader("events"), which binds BTF and drops
    """

    def __init__(self, map: "Map", dtype: Any = None, *, btf: Any = None, drops: Optional[np.ndarray] = None) -> None:
        if map.type != sc.BPF_MAP_TYPE_RINGBUF:
            raise BpfUsageError(f"map {map.name!r} is a {map.type_name} map, not a ring buffer")
        super().__init__(map, dtype, btf=btf, drops=drops)
        self.size = map.max_entries
        self.chunk_bytes = CHUNK_BYTES  # per commit; tunable per reader (tests make it small)
        self._mask = self.size - 1
        self._cons_mm: Optional[mmap.mmap] = None
        self._prod_mm: Optional[mmap.mmap] = None
        self.discarded = 0
        self.received = 0

    # -- mapping --------------------------------------------------------------
    def _mmap(self) -> None:
        if self._cons_mm is not None:
            return
        fd = self.fd
        try:
            cons_mm = mmap.mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
            prod_mm = mmap.mmap(fd, PAGE + 2 * self.size, mmap.MAP_SHARED, mmap.PROT_READ, offset=PAGE)
        except OSError as e:
            raise BpfError.from_errno(e.errno or 0, f"mmap of ring buffer {self.name!r}") from None
        cons = np.frombuffer(cons_mm, dtype=np.uint64, count=1)
        prod = np.frombuffer(prod_mm, dtype=np.uint64, count=1)
        data = np.frombuffer(prod_mm, dtype=np.uint8, offset=PAGE)
        # u32 view of the same area: headers read as whole words, never torn
        words = np.frombuffer(prod_mm, dtype=np.uint32, offset=PAGE)
        # all at once (no call in between, so Ctrl-C cannot leave half a mapping), _cons_mm last
        self._cons, self._prod, self._data, self._words, self._prod_mm, self._cons_mm = (
            cons, prod, data, words, prod_mm, cons_mm)

    def close(self) -> None:
        """Unmap and stop polling (the map fd itself is closed by its owner)."""
        super().close()
        for name in ("_cons", "_prod", "_data", "_words"):
            self.__dict__.pop(name, None)
        for mm in (self._cons_mm, self._prod_mm):
            if mm is not None:
                try:
                    mm.close()
                except BufferError:  # a batch view still refers to it; unmapped when freed
                    pass
        self._cons_mm = self._prod_mm = None

    # -- positions and counters ------------------------------------------------------
    @property
    def available(self) -> int:
        """Bytes written by the producer and not yet consumed (including busy/discarded records)."""
        self._mmap()
        return int(self._prod[0]) - int(self._cons[0])

    def pending(self) -> bool:
        """True if the producer is ahead of us, or records are held for the next drain (a
        syscall-free check)."""
        return bool(self._ledger) or self.available > 0

    def poll_fds(self) -> list[int]:
        """The map fd: the kernel makes it readable when a record is submitted."""
        self._mmap()
        return [self.fd]

    def stats(self) -> dict[str, int]:
        """``received``, ``discarded`` (skipped discard records) and ``dropped`` (failed reserves)."""
        return {"received": self.received, "discarded": self.discarded, "dropped": self.dropped}

    def committed(self) -> int:
        """The consumer position: bytes handed back to the producer since the buffer was created."""
        self._mmap()
        return int(self._cons[0])

    def _commit(self, pos: int) -> None:
        # a release store on x86-64: our earlier loads of the records cannot pass it
        self._cons[0] = pos

    # -- consuming ---------------------------------------------------------------
    def drain(self, dtype: Any = None, max_records: Optional[int] = None) -> Batch:
        """Everything available now, without waiting: an array of ``dtype`` records (default: the
        buffer's dtype; a C type name of the object's BTF works too, see
        :meth:`~bpfkit.events.EventReader.resolve_dtype`), or a :class:`RawBatch` when no
        dtype is known. Stops before a busy record (not yet submitted); skips discarded ones.

        A record whose size differs from the dtype stops the drain: the records before it are
        returned, and the next drain raises BpfUsageError; the record stays in the ring, for
        :meth:`drain_raw` or a drain with the right dtype.

        Ctrl-C (KeyboardInterrupt) may interrupt a long drain: records whose space was already
        handed back to the producer are kept and come first from the next drain.

        Example::

            batch = rb.drain()          # e.g. batch["pid"]
        """
        self._mmap()
        return self._drain(self.resolve_dtype(dtype), max_records)

    def drain_raw(self, max_records: Optional[int] = None) -> RawBatch:
        """Available records of any size as a :class:`RawBatch` (one copy; a Python step per
        record, since each header gives the next record's position)."""
        self._mmap()
        batch = self._drain(None, max_records)
        assert isinstance(batch, RawBatch)
        return batch

    def _drain(self, dt: Optional[np.dtype], max_records: Optional[int]) -> Batch:
        self._ledger.forget_uncommitted()
        left = None if max_records is None else max_records - self._ledger.records()
        if left is None or left > 0:
            if dt is None:
                self._read_raw(left)
            else:
                self._read_fixed(dt, left)
        return self._hand_out(dt, max_records)

    def _hand_out(self, dt: Optional[np.dtype], max_records: Optional[int]) -> Batch:
        out, keep = self._ledger.split(max_records)
        batch = self._ledger.join(out, dt)
        n = sum(len(h) for h in out if not h.counted)  # given-back batches were counted already
        skipped = sum(h.skipped for h in out)
        # No calls or loops from here to the return: CPython raises KeyboardInterrupt only at
        # those, so the counters and the held list change together and the batch reaches the caller.
        self.received += n
        self.discarded += skipped
        self._ledger.entries = keep
        return batch

    def _read_fixed(self, dt: np.dtype, limit: Optional[int]) -> None:
        """Copy records out into held batches, committing after each chunk."""
        isz = dt.itemsize
        stride = (isz + HDR + 7) & ~7
        wstride = stride >> 2
        chunk = max(1, self.chunk_bytes // stride)
        mask, data, words = self._mask, self._data, self._words
        got = 0
        cons = int(self._cons[0])
        while limit is None or got < limit:
            prod = int(self._prod[0])
            if cons >= prod:
                break
            n = min((prod - cons) // stride, chunk)
            if limit is not None:
                n = min(n, limit - got)
            off = cons & mask
            k = 0
            if n:
                w = off >> 2
                lens = words[w: w + n * wstride: wstride].copy()  # one snapshot of n headers
                ok = (lens & np.uint32(~DISCARD & 0xFFFFFFFF)) == isz  # busy or odd size: False
                k = n if ok.all() else int(np.argmin(ok))
                if k:
                    out = gather_fixed(data, off, k, stride, HDR, dt)  # a copy: safe after commit
                    disc = (lens[:k] & np.uint32(DISCARD)) != 0
                    ndisc = int(disc.sum())
                    if ndisc:
                        out = out[~disc]
                    cons += k * stride
                    self._ledger.hold(out if out.size else None, self, cons, skipped=ndisc)
                    self._commit(cons)
                    got += out.size
            if k == n and n:
                continue
            # the record at `cons` does not fit the fast path: busy, discarded, or another size
            hdr = int(words[(cons & mask) >> 2])
            if hdr & BUSY:
                break
            length = hdr & LEN_MASK
            nxt = cons + ((length + HDR + 7) & ~7)
            if hdr & DISCARD:
                self._ledger.hold(None, self, nxt, skipped=1)
            elif length != isz:
                if self._ledger.records():
                    break  # hand over what we have; the next drain meets this record first
                raise BpfUsageError(
                    f"ring buffer {self.name!r}: a record of {length} bytes does not match the {isz}-byte "
                    f"dtype {dt}; it stays in the ring: read it with drain_raw(max_records=1) (every "
                    f"variable-size record with drain_raw()), or drain with a dtype of {length} bytes")
            else:
                o = (cons & mask) + HDR
                self._ledger.hold(data[o: o + isz].copy().view(dt), self, nxt)
                got += 1
            cons = nxt
            self._commit(cons)

    def _read_raw(self, limit: Optional[int]) -> None:
        """Copy records of any size out into one held RawBatch, then commit."""
        mask, words = self._mask, self._words
        assert self._prod_mm is not None
        view = memoryview(self._prod_mm)[PAGE:]
        chunks: list[Any] = []
        start = cons = int(self._cons[0])
        prod = int(self._prod[0])
        skipped = 0
        try:
            while cons < prod and (limit is None or len(chunks) < limit):
                off = cons & mask
                hdr = int(words[off >> 2])
                if hdr & BUSY:
                    break
                length = hdr & LEN_MASK
                if hdr & DISCARD:
                    skipped += 1
                else:
                    chunks.append(view[off + HDR: off + HDR + length])
                cons += (length + HDR + 7) & ~7
                if cons >= prod:
                    prod = int(self._prod[0])
            batch = RawBatch.from_chunks(chunks)  # copies before we release the space
        finally:
            chunks.clear()
            view.release()
        if cons != start:
            self._ledger.hold(batch if len(batch) else None, self, cons, skipped=skipped)
            self._commit(cons)

    def give_back(self, batch: Batch) -> None:
        """Take back a batch the last drain() handed out (a Poller could not deliver it): the next
        drain hands it out first, without counting it again."""
        self._ledger.give_back([Held(batch, self, 0, counted=True)])

    def __repr__(self) -> str:
        return f"<RingBuffer {self.name!r} size={self.size} dtype={self.dtype}>"
