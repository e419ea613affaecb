"""BPF ring buffer (``BPF_MAP_TYPE_RINGBUF``) consumer over mmap, yielding numpy batches.

Layout (kernel/bpf/ringbuf.c): page 0 holds the consumer position (we write it),
page 1 the producer position, then the data area mapped twice back to back, so
a record never wraps in our view. Each record has an 8-byte header: ``len`` with
BUSY (bit 31) and DISCARD (bit 30) flags, then ``pg_off``; records are 8-byte
aligned. Positions only grow; ``pos & mask`` is the offset in the data area.

For fixed-size records (a dtype is known) a batch is cut out of the mapped area
with one strided numpy copy, no Python loop per record.

Example::

    rb = obj.maps.events                        # dtype from BPFKIT_RINGBUF's record type
    for batch in rb.read(timeout=1.0):          # numpy structured arrays
        print(batch["pid"])
"""
from __future__ import annotations

import mmap
import select
from typing import Any, Iterator, Optional, Union

import numpy as np

from ..errors import BpfError, ClosedError
from .map import Map

BUSY = 1 << 31
DISCARD = 1 << 30
HDR = 8
PAGE = mmap.PAGESIZE

Batch = Union[np.ndarray, list[bytes]]


class RingBuffer(Map):
    """Consumer of a BPF ring buffer. ``dtype`` is the record dtype (None: records as bytes)."""

    def __init__(self, *args: Any, record_dtype: Optional[np.dtype] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dtype: Optional[np.dtype] = np.dtype(record_dtype) if record_dtype is not None else None
        self.size = self.max_entries
        self._mask = self.size - 1
        self._cons_mm: Optional[mmap.mmap] = None
        self._prod_mm: Optional[mmap.mmap] = None
        self._epoll: Optional[select.epoll] = None
        self.discarded = 0
        self.received = 0

    # -- mapping --------------------------------------------------------------
    def _map(self) -> None:
        if self._cons_mm is not None:
            return
        self._cons_mm = mmap.mmap(self.fd, PAGE, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        self._prod_mm = mmap.mmap(self.fd, PAGE + 2 * self.size, mmap.MAP_SHARED, mmap.PROT_READ, offset=PAGE)
        self._cons = np.frombuffer(self._cons_mm, dtype=np.uint64, count=1)
        self._prod = np.frombuffer(self._prod_mm, dtype=np.uint64, count=1)
        self._data = np.frombuffer(self._prod_mm, dtype=np.uint8, offset=PAGE)
        self._epoll = select.epoll()
        self._epoll.register(self.fd, select.EPOLLIN)

    def close(self) -> None:
        """Unmap and stop polling (the map itself is closed by its owner)."""
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        for name in ("_cons", "_prod", "_data"):
            self.__dict__.pop(name, None)
        for mm in (self._cons_mm, self._prod_mm):
            if mm is not None:
                try:
                    mm.close()
                except BufferError:  # a batch view still refers to it; the GC unmaps later
                    pass
        self._cons_mm = self._prod_mm = None
        super().close()

    # -- positions ------------------------------------------------------------
    @property
    def available(self) -> int:
        """Bytes written by the producer and not yet consumed."""
        self._map()
        return int(self._prod[0]) - int(self._cons[0])

    def _commit(self, pos: int) -> None:
        # x86-64 is TSO: a plain store after our loads of the records is a release store.
        self._cons[0] = pos

    # -- consuming ---------------------------------------------------------------
    def drain(self, dtype: Optional[np.dtype] = None, max_records: Optional[int] = None) -> Batch:
        """Everything available now, without waiting: an array of ``dtype`` records (or of the
        buffer's dtype), or a list of bytes when no dtype is known."""
        self._map()
        dt = np.dtype(dtype) if dtype is not None else self.dtype
        if dt is None:
            return self._drain_bytes(max_records)
        return self._drain_fixed(dt, max_records)

    def _drain_fixed(self, dt: np.dtype, max_records: Optional[int]) -> np.ndarray:
        parts: list[np.ndarray] = []
        cons = int(self._cons[0])
        prod = int(self._prod[0])
        stride = (dt.itemsize + HDR + 7) & ~7
        got = 0
        while cons < prod and (max_records is None or got < max_records):
            n = (prod - cons) // stride
            if max_records is not None:
                n = min(n, max_records - got)
            off = cons & self._mask
            k = 0
            if n:
                window = self._data[off: off + n * stride].reshape(n, stride)
                lens = window[:, :4].copy().view(np.uint32).ravel()
                bad = np.flatnonzero((lens & ~np.uint32(DISCARD)) != dt.itemsize)
                k = int(bad[0]) if bad.size else n  # first busy or odd-sized record stops the fast path
                if k:
                    keep = (lens[:k] & DISCARD) == 0
                    recs = window[:k, HDR: HDR + dt.itemsize]
                    if not keep.all():
                        self.discarded += int(k - keep.sum())
                        recs = recs[keep]
                    parts.append(np.ascontiguousarray(recs).view(dt).ravel())
                    got += parts[-1].size
                    cons += k * stride
                    self._commit(cons)
            if k < n or n == 0:
                # slow path for one record: busy (stop), or a size different from dt (skip it)
                hdr = int(self._data[cons & self._mask: (cons & self._mask) + 4].view(np.uint32)[0])
                if hdr & BUSY:
                    break
                length = hdr & ~(BUSY | DISCARD)
                if not hdr & DISCARD and length != dt.itemsize:
                    raise BpfError(f"ring buffer {self.name!r}: record of {length} bytes does not match "
                                   f"the dtype's {dt.itemsize} bytes; pass the right dtype or read bytes")
                if hdr & DISCARD:
                    self.discarded += 1
                cons += (length + HDR + 7) & ~7
                self._commit(cons)
            prod = int(self._prod[0])
        self.received += got
        if not parts:
            return np.empty(0, dtype=dt)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _drain_bytes(self, max_records: Optional[int]) -> list[bytes]:
        out: list[bytes] = []
        cons = int(self._cons[0])
        prod = int(self._prod[0])
        data = self._data
        while cons < prod and (max_records is None or len(out) < max_records):
            off = cons & self._mask
            hdr = int(data[off: off + 4].view(np.uint32)[0])
            if hdr & BUSY:
                break
            length = hdr & ~(BUSY | DISCARD)
            if hdr & DISCARD:
                self.discarded += 1
            else:
                out.append(data[off + HDR: off + HDR + length].tobytes())
            cons += (length + HDR + 7) & ~7
            self._commit(cons)
            if cons >= prod:
                prod = int(self._prod[0])
        self.received += len(out)
        return out

    def wait(self, timeout: Optional[float]) -> bool:
        """Block until the kernel signals new data or ``timeout`` seconds pass; True if data is there."""
        self._map()
        if self.available > 0:
            return True
        if self._epoll is None:
            raise ClosedError(f"ring buffer {self.name!r} is closed")
        events = self._epoll.poll(-1 if timeout is None else timeout)
        return bool(events) or self.available > 0

    def poll(self, timeout: Optional[float] = None, dtype: Optional[np.dtype] = None) -> Batch:
        """Wait up to ``timeout`` seconds for data, then return one batch (maybe empty)."""
        self.wait(timeout)
        return self.drain(dtype)

    def read(self, timeout: float = 1.0, dtype: Optional[np.dtype] = None) -> Iterator[Batch]:
        """Yield non-empty batches until no new record arrives for ``timeout`` seconds."""
        while True:
            batch = self.drain(dtype)
            if len(batch):
                yield batch
                continue
            if not self.wait(timeout):
                return

    def __iter__(self) -> Iterator[Batch]:  # type: ignore[override]
        """Yield batches forever (Ctrl-C or break to stop)."""
        while True:
            self.wait(None)
            batch = self.drain()
            if len(batch):
                yield batch

    def __len__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return f"<RingBuffer {self.name!r} size={self.size} dtype={self.dtype}>"
