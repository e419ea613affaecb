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
Variable-size records come back as a :class:`~bpfkit.maps.batch.RawBatch`.

Example::

    rb = obj.maps.events                        # dtype from BPFKIT_RINGBUF's record type
    for batch in rb.read(timeout=1.0):          # numpy structured arrays
        print(batch["pid"], rb.dropped)
"""
from __future__ import annotations

import mmap
import platform
from typing import Any, Optional

import numpy as np

from ..errors import BpfError
from .records import Batch, RawBatch, gather_fixed
from .map import Map
from .poller import EventSource

BUSY = 1 << 31
DISCARD = 1 << 30
LEN_MASK = DISCARD - 1
HDR = 8
PAGE = mmap.PAGESIZE
# Records copied per commit of the consumer position: small enough to hand space back to the
# producer often, large enough that numpy's per-call overhead vanishes.
CHUNK_BYTES = 1 << 20

if platform.machine() not in ("x86_64", "i686", "i386", "AMD64"):  # pragma: no cover
    import warnings

    warnings.warn("bpfkit's ring buffer reader relies on x86 (TSO) memory ordering; on this CPU a "
                  "record could be read before its contents are visible", RuntimeWarning, stacklevel=2)


class RingBuffer(EventSource, Map):
    """Consumer of a BPF ring buffer. ``dtype`` is the record dtype (None: variable-size records,
    read as :class:`RawBatch`). Counters: ``received``, ``discarded`` and, with the
    ``BPFKIT_RESERVE`` pattern of ``bpfkit.h``, ``dropped`` (failed reserves, read live)."""

    def __init__(self, *args: Any, record_dtype: Optional[np.dtype] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dtype: Optional[np.dtype] = np.dtype(record_dtype) if record_dtype is not None else None
        self.size = self.max_entries
        self._mask = self.size - 1
        self._cons_mm: Optional[mmap.mmap] = None
        self._prod_mm: Optional[mmap.mmap] = None
        self.discarded = 0
        self.received = 0

    # -- mapping --------------------------------------------------------------
    def _map(self) -> None:
        if self._cons_mm is not None:
            return
        fd = self.fd
        try:
            self._cons_mm = mmap.mmap(fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
            self._prod_mm = mmap.mmap(fd, PAGE + 2 * self.size, mmap.MAP_SHARED, mmap.PROT_READ,
                                      offset=PAGE)
        except OSError as e:
            raise BpfError.from_errno(e.errno or 0, f"mmap of ring buffer {self.name!r}") from None
        self._cons = np.frombuffer(self._cons_mm, dtype=np.uint64, count=1)
        self._prod = np.frombuffer(self._prod_mm, dtype=np.uint64, count=1)
        self._data = np.frombuffer(self._prod_mm, dtype=np.uint8, offset=PAGE)
        # u32 view of the same area: headers read as whole words, never torn
        self._words = np.frombuffer(self._prod_mm, dtype=np.uint32, offset=PAGE)

    def close(self) -> None:
        """Unmap and stop polling (the map fd itself is closed by its owner)."""
        self._close_poller()
        self._drops = None
        for name in ("_cons", "_prod", "_data", "_words"):
            self.__dict__.pop(name, None)
        for mm in (self._cons_mm, self._prod_mm):
            if mm is not None:
                try:
                    mm.close()
                except BufferError:  # a batch view still refers to it; unmapped when freed
                    pass
        self._cons_mm = self._prod_mm = None
        super().close()

    # -- positions and counters ------------------------------------------------------
    @property
    def available(self) -> int:
        """Bytes written by the producer and not yet consumed (including busy/discarded records)."""
        self._map()
        return int(self._prod[0]) - int(self._cons[0])

    def pending(self) -> bool:
        """True if the producer is ahead of us (a syscall-free check)."""
        return self.available > 0

    def poll_fds(self) -> list[int]:
        """The map fd: the kernel makes it readable when a record is submitted."""
        self._map()
        return [self.fd]

    def stats(self) -> dict[str, int]:
        """``received``, ``discarded`` (skipped discard records) and ``dropped`` (failed reserves)."""
        return {"received": self.received, "discarded": self.discarded, "dropped": self.dropped}

    def _commit(self, pos: int) -> None:
        # a release store on x86-64: our earlier loads of the records cannot pass it
        self._cons[0] = pos

    # -- consuming ---------------------------------------------------------------
    def drain(self, dtype: Any = None, max_records: Optional[int] = None) -> Batch:
        """Everything available now, without waiting: an array of ``dtype`` records (default: the
        buffer's dtype), or a :class:`RawBatch` when no dtype is known. Stops before a busy
        record (not yet submitted); skips discarded ones.

        Example::

            batch = rb.drain()          # e.g. batch["pid"]
        """
        self._map()
        dt = np.dtype(dtype) if dtype is not None else self.dtype
        if dt is None:
            return self.drain_raw(max_records)
        return self._drain_fixed(dt, max_records)

    def _drain_fixed(self, dt: np.dtype, max_records: Optional[int]) -> np.ndarray:
        isz = dt.itemsize
        stride = (isz + HDR + 7) & ~7
        wstride = stride >> 2
        chunk = max(1, CHUNK_BYTES // stride)
        mask, data, words = self._mask, self._data, self._words
        parts: list[np.ndarray] = []
        got = 0
        cons = int(self._cons[0])
        while max_records is None or got < max_records:
            prod = int(self._prod[0])
            if cons >= prod:
                break
            n = min((prod - cons) // stride, chunk)
            if max_records is not None:
                n = min(n, max_records - got)
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
                    if disc.any():
                        out = out[~disc]
                        self.discarded += int(disc.sum())
                    if out.size:
                        parts.append(out)
                        got += out.size
                    cons += k * stride
                    self._commit(cons)
            if k == n and n:
                continue
            # the record at `cons` does not fit the fast path: busy, discarded, or another size
            hdr = int(words[(cons & mask) >> 2])
            if hdr & BUSY:
                break
            length = hdr & LEN_MASK
            if hdr & DISCARD:
                self.discarded += 1
            elif length != isz:
                if parts:
                    break  # hand over what we have; the caller meets this record next time
                raise BpfError(f"ring buffer {self.name!r}: a record of {length} bytes does not match "
                               f"the {isz}-byte dtype {dt}; read variable-size records with drain_raw() "
                               "or pass the right dtype")
            else:
                o = (cons & mask) + HDR
                parts.append(data[o: o + isz].copy().view(dt))
                got += 1
            cons += (length + HDR + 7) & ~7
            self._commit(cons)
        self.received += got
        if not parts:
            return np.empty(0, dtype=dt)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def drain_raw(self, max_records: Optional[int] = None) -> RawBatch:
        """Available records of any size as a :class:`RawBatch` (one copy; a Python step per
        record, since each header gives the next record's position)."""
        self._map()
        mask, words = self._mask, self._words
        assert self._prod_mm is not None
        view = memoryview(self._prod_mm)[PAGE:]
        chunks: list[Any] = []
        cons = int(self._cons[0])
        prod = int(self._prod[0])
        try:
            while cons < prod and (max_records is None or len(chunks) < max_records):
                off = cons & mask
                hdr = int(words[off >> 2])
                if hdr & BUSY:
                    prod = int(self._prod[0])
                    break
                length = hdr & LEN_MASK
                if hdr & DISCARD:
                    self.discarded += 1
                else:
                    chunks.append(view[off + HDR: off + HDR + length])
                cons += (length + HDR + 7) & ~7
                if cons >= prod:
                    prod = int(self._prod[0])
            batch = RawBatch.from_chunks(chunks)  # copies before we release the space
        finally:
            chunks.clear()
            view.release()
        self._commit(cons)
        self.received += len(batch)
        return batch

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"<RingBuffer {self.name!r} size={self.size} dtype={self.dtype}>"
