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

Fixed-size records (a dtype is known) are cut out of the mapping without Python per record: a
strided read of the headers and one strided copy of the payloads per chunk. A few records (what a
reader woken often finds) are checked through a memoryview instead of numpy, whose fixed cost per
call would dominate. Without a dtype records come back as a :class:`~bpfkit.events.RawBatch`; runs
of same-size records are found by the same vectorised header check and cut out at once, and only
records whose sizes differ are walked one by one (each header gives the next record's position).

A plain libbpf ring buffer (no ``BPFKIT_RINGBUF``) read without a dtype gets one from the object's
BTF when the program names its record type anywhere (see
:mod:`~bpfkit.events.record_type`): the first record's size picks it.

Example::

    rb = obj.reader("events")                   # dtype from BPFKIT_RINGBUF's record type
    for batch in rb.read(timeout=1.0):          # numpy structured arrays
        print(batch["pid"], rb.dropped)
"""
from __future__ import annotations

import functools
import mmap
import os
import time
import warnings
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from .. import _sys as sc
from ..errors import BpfError, BpfUsageError
from .batch import Batch, RawBatch, gather_fixed
from .ledger import Held
from .reader import EventReader
from .record_type import find_record_type

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
# Up to this many records are checked with a memoryview (a list of header words), above with numpy:
# numpy costs ~1 us per call whatever the size, the list ~20 ns per record.
SMALL_RECORDS = 512
# Same-size records in a row that make the raw reader cut them out vectorised instead of walking.
RUN = 8
# The share of the ring that is never "a few records" (see RingBuffer.settle).
COALESCE_SHARE = 16

if os.uname().machine not in ("x86_64", "i686", "i386", "AMD64"):  # pragma: no cover
    import warnings

    warnings.warn("bpfkit's ring buffer reader relies on x86 (TSO) memory ordering; on this CPU a "
                  "record could be read before its contents are visible", RuntimeWarning, stacklevel=2)


class RingBuffer(EventReader):
    """Reader of a BPF ring buffer map. ``dtype`` is the record dtype (default: the map's, from
    ``BPFKIT_RINGBUF``; else one found in the object's BTF from the first record's size; else
    None: records read as :class:`RawBatch`). Counters: ``received``, ``discarded`` and, with the
    ``BPFKIT_RESERVE`` pattern of ``bpfkit.h``, ``dropped`` (failed reserves, read live).

    ``flush_interval`` (seconds, None by default) makes pollers look at the ring that often even
    without a wake-up: for programs that submit with ``BPF_RB_NO_WAKEUP``. ``wake_window``
    (seconds) is for producers that skip wake-ups for at most that long after one, as
    ``bpfkit.h``'s adaptive ``BPFKIT_SUBMIT`` does (``obj.reader()`` sets it from the object):
    pollers then look once that long after records came, and not at all while the ring is idle.

    ``coalesce`` (seconds, 1 ms by default): when a poller finds only a few records right after a
    drain (less than 1/16 of the ring: the producer is writing as we read), it lets them gather
    until the kernel's next wakeup or this long, instead of reading them at once. A Python reader
    that chased a fast producer would pay its fixed cost per read for a handful of records each
    time; so a dense stream arrives in batches at most ``coalesce`` late, and a light one (the
    reader caught up, woken per record) as soon as each record is there. 0 turns it off.

    Example::

        rb = RingBuffer(obj.maps.events)      # or obj.reader("events"), which binds BTF and drops
    """

    def __init__(self, map: "Map", dtype: Any = None, *, btf: Any = None, drops: Optional[np.ndarray] = None,
                 flush_interval: Optional[float] = None) -> None:
        if map.type != sc.BPF_MAP_TYPE_RINGBUF:
            raise BpfUsageError(f"map {map.name!r} is a {map.type_name} map, not a ring buffer")
        super().__init__(map, dtype, btf=btf, drops=drops)
        self.size = map.max_entries
        self.chunk_bytes = CHUNK_BYTES  # per commit; tunable per reader (tests make it small)
        self.flush_interval = flush_interval
        self.wake_window: Optional[float] = None
        self._looked_at = 0.0  # time.monotonic() when the ring was last seen empty
        # the C type of the records when it was found in the BTF rather than declared or given
        self.record_type: Optional[str] = None
        self._infer = self.dtype is None and btf is not None
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
        # positions and headers through u64/u32 memoryviews: an item access is one aligned load or
        # store (what the ordering above relies on), several times cheaper than a numpy scalar
        cons_w = memoryview(cons_mm).cast("Q")
        prod_w = memoryview(prod_mm)[:8].cast("Q")
        hdrs = memoryview(prod_mm)[PAGE:].cast("I")
        data = np.frombuffer(prod_mm, dtype=np.uint8, offset=PAGE)
        # u32 view of the same area: headers read as whole words, never torn
        words = np.frombuffer(prod_mm, dtype=np.uint32, offset=PAGE)
        # all at once (no call in between, so Ctrl-C cannot leave half a mapping), _cons_mm last
        self._cons_w, self._prod_w, self._hdrs, self._data, self._words, self._prod_mm, self._cons_mm = (
            cons_w, prod_w, hdrs, data, words, prod_mm, cons_mm)

    def close(self) -> None:
        """Unmap and stop polling (the map fd itself is closed by its owner)."""
        super().close()
        for name in ("_cons_w", "_prod_w", "_hdrs"):
            mv = self.__dict__.pop(name, None)
            if mv is not None:
                mv.release()
        for name in ("_data", "_words"):
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
        return int(self._prod_w[0] - self._cons_w[0])

    def pending(self) -> bool:
        """True if the producer is ahead of us, or records are held for the next drain (a
        syscall-free check)."""
        if self._cons_mm is None:
            self._mmap()
        return bool(self._ledger.entries) or self._prod_w[0] != self._cons_w[0]

    def poll_fds(self) -> list[int]:
        """The map fd: the kernel makes it readable when a record is submitted."""
        self._mmap()
        return [self.fd]

    def settle(self) -> Optional[float]:
        """0: read now (records held, many records, or ``coalesce`` is over); None: nothing is
        there; ``x``: a few records came since the last drain, read them within ``x`` seconds
        unless a wakeup comes first."""
        if self._ledger.entries:
            return 0.0
        if self._cons_mm is None:
            self._mmap()
        avail = self._prod_w[0] - self._cons_w[0]
        if avail <= 0:
            if self.wake_window is not None:
                self._looked_at = time.monotonic()
            return self._dense_nap()
        if avail * COALESCE_SHARE >= self.size or not self.coalesce:
            return 0.0
        left = self._drained_at + self.coalesce - time.monotonic()
        return left if left > 0 else 0.0

    def max_latency(self) -> Optional[float]:
        """How long a poller may sleep without looking (None: wake-ups suffice): ``flush_interval``,
        or what is left of the ``wake_window`` after the last records, until a look after it has
        found the ring empty (from then on the next record wakes the reader)."""
        if self.flush_interval is not None:
            return self.flush_interval
        window = self.wake_window
        if window is None or not self._found_at:  # nothing read yet: the first record always wakes
            return None
        end = self._found_at + window
        if self._looked_at >= end:
            return None
        left = end - time.monotonic()
        return left if left > 0 else 0.0

    def stats(self) -> dict[str, int]:
        """``received``, ``discarded`` (skipped discard records) and ``dropped`` (failed reserves)."""
        return {"received": self.received, "discarded": self.discarded, "dropped": self.dropped}

    def committed(self) -> int:
        """The consumer position: bytes handed back to the producer since the buffer was created."""
        self._mmap()
        return int(self._cons_w[0])

    def _commit(self, pos: int) -> None:
        # a release store on x86-64: our earlier loads of the records cannot pass it
        self._cons_w[0] = pos

    # -- consuming ---------------------------------------------------------------
    def drain(self, dtype: Any = None, max_records: Optional[int] = None) -> Batch:
        """Everything available now, without waiting: an array of ``dtype`` records (default: the
        buffer's dtype; a C type name of the object's BTF works too, see
        :meth:`~bpfkit.events.EventReader.resolve_dtype`), or a :class:`RawBatch` when no
        dtype is known. Stops before a busy record (not yet submitted); skips discarded ones.

        A record whose size differs from the dtype stops the drain: the records before it are
        returned, and the next drain raises BpfUsageError; the record stays in the ring, for
        :meth:`drain_raw` or a drain with the right dtype. (A dtype the reader found in the BTF
        by itself is dropped instead, with a warning: the next drains return RawBatch.)

        Ctrl-C (KeyboardInterrupt) may interrupt a long drain: records whose space was already
        handed back to the producer are kept and come first from the next drain.

        Example::

            batch = rb.drain()          # e.g. batch["pid"]
        """
        if self._cons_mm is None:
            self._mmap()
        self._drained_at = time.monotonic()
        if dtype is None:
            dt = self.dtype
            if dt is None and self._infer:
                dt = self._infer_dtype()
        else:
            dt = self.resolve_dtype(dtype)
        return self._drain(dt, max_records)

    def drain_raw(self, max_records: Optional[int] = None) -> RawBatch:
        """Available records of any size as a :class:`RawBatch` (one copy; same-size records are
        cut out together, records of differing sizes found one by one)."""
        self._mmap()
        batch = self._drain(None, max_records)
        assert isinstance(batch, RawBatch)
        return batch

    def _infer_dtype(self) -> Optional[np.dtype]:
        """The record type found in the BTF for the records' size, decided once, at the first
        drain that finds a submitted record: only if the records there (up to 64) all have the
        first one's size, as a ring of fixed-size records would."""
        cons = self._cons_w[0]
        avail = self._prod_w[0] - cons
        if avail <= 0:
            return None
        off = cons & self._mask
        hdr = self._hdrs[off >> 2]
        if hdr & (BUSY | DISCARD):
            return None  # decide on a submitted record
        length = hdr & LEN_MASK
        stride = (length + HDR + 7) & ~7
        n = min(avail // stride, 64)
        self._infer = False
        for word in self._hdrs[off >> 2: (off >> 2) + n * (stride >> 2): stride >> 2].tolist():
            if word & BUSY:
                break
            if word & LEN_MASK != length:
                return None  # records of several sizes: read them raw
        found = find_record_type(self._btf, length, self.name) if self._btf is not None else None
        if found is None:
            return None
        self.record_type, self.dtype = found
        return self.dtype

    def _drop_inferred(self, length: int) -> None:
        warnings.warn(f"ring buffer {self.name!r}: a record of {length} bytes does not fit {self.record_type} "
                      f"({self.dtype.itemsize if self.dtype is not None else 0} bytes), which the reader took "
                      "from the object's BTF; records are read as RawBatch from now on (pass dtype= to choose)",
                      RuntimeWarning, stacklevel=4)
        self.dtype = None
        self.record_type = None

    def _drain(self, dt: Optional[np.dtype], max_records: Optional[int]) -> Batch:
        self._ledger.forget_uncommitted()
        left = None if max_records is None else max_records - self._ledger.records()
        if left is None or left > 0:
            if dt is None:
                self._read_raw(left)
            elif self._read_fixed(dt, left) and not self._ledger.entries:
                dt = None  # the dtype taken from the BTF did not fit: read raw from now on
                self._read_raw(left)
        return self._hand_out(dt, max_records)

    def _hand_out(self, dt: Optional[np.dtype], max_records: Optional[int]) -> Batch:
        entries = self._ledger.entries
        if entries:
            self._found()
        if len(entries) == 1 and max_records is None:
            h = entries[0]
            b = h.batch
            if b is not None and not h.counted and (b.dtype == dt if isinstance(b, np.ndarray) else dt is None):
                # the usual read: one span, nothing to join or convert
                none: list[Held] = []
                n, skipped = len(b), h.skipped
                # no calls from here to the return (see below)
                self.received += n
                self.discarded += skipped
                self._ledger.entries = none
                return b
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

    def _read_fixed(self, dt: np.dtype, limit: Optional[int]) -> bool:
        """Copy the records written before the drain started into held batches, committing
        after each chunk. True if it stopped because a record did not fit the dtype the reader
        had taken from the BTF.

        One pass up to the producer position seen at the start, not a chase of the producer: a
        reader that re-read it after every chunk would cut a fast stream into many small pieces,
        each paying numpy's fixed costs (the next drain takes what came meanwhile, in one piece)."""
        isz = dt.itemsize
        stride = (isz + HDR + 7) & ~7
        wstride = stride >> 2
        chunk = max(1, self.chunk_bytes // stride)
        mask, hdrs = self._mask, self._hdrs
        opaque = _opaque(isz)
        got = 0
        cons = self._cons_w[0]
        prod = self._prod_w[0]
        while limit is None or got < limit:
            avail = prod - cons
            if avail <= 0:
                break
            n = min(avail // stride, chunk)
            if limit is not None:
                n = min(n, limit - got)
            off = cons & mask
            w = off >> 2
            if 0 < n <= SMALL_RECORDS and hdrs[w: w + n * wstride: wstride].tolist().count(isz) == n:
                # every record submitted, none discarded, all of this size: one strided copy
                out = np.ndarray((n,), opaque, self._prod_mm, PAGE + off + HDR, (stride,)).copy().view(dt)
                cons += n * stride
                self._ledger.hold(out, self, cons)
                self._commit(cons)
                got += n
                continue
            k = 0
            if n:
                lens = self._words[w: w + n * wstride: wstride].copy()  # one snapshot of n headers
                ok = (lens & np.uint32(~DISCARD & 0xFFFFFFFF)) == isz  # busy or odd size: False
                k = n if ok.all() else int(np.argmin(ok))
                if k:
                    out = gather_fixed(self._data, off, k, stride, HDR, dt)  # a copy: safe after commit
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
            hdr = hdrs[(cons & mask) >> 2]
            if hdr & BUSY:
                break
            length = hdr & LEN_MASK
            nxt = cons + ((length + HDR + 7) & ~7)
            if hdr & DISCARD:
                self._ledger.hold(None, self, nxt, skipped=1)
            elif length != isz:
                if self.record_type is not None and dt is self.dtype:
                    self._drop_inferred(length)
                    return True
                if self._ledger.records():
                    break  # hand over what we have; the next drain meets this record first
                raise BpfUsageError(
                    f"ring buffer {self.name!r}: a record of {length} bytes does not match the {isz}-byte "
                    f"dtype {dt}; it stays in the ring: read it with drain_raw(max_records=1) (every "
                    f"variable-size record with drain_raw()), or drain with a dtype of {length} bytes")
            else:
                o = (cons & mask) + HDR
                self._ledger.hold(self._data[o: o + isz].copy().view(dt), self, nxt)
                got += 1
            cons = nxt
            self._commit(cons)
        return False

    def _read_raw(self, limit: Optional[int]) -> None:
        """Copy the records written before the drain started out into held RawBatches, committing
        after each span: runs of same-size records at once, records of differing sizes one by one."""
        mask, hdrs = self._mask, self._hdrs
        got = 0
        cons = self._cons_w[0]
        prod = self._prod_w[0]
        while limit is None or got < limit:
            avail = prod - cons
            if avail <= 0:
                break
            off = cons & mask
            hdr = hdrs[off >> 2]
            if hdr & BUSY:
                break
            length = hdr & LEN_MASK
            stride = (length + HDR + 7) & ~7
            n = min(avail // stride, max(1, self.chunk_bytes // stride))
            if limit is not None:
                n = min(n, limit - got)
            if length:
                k = self._same_size_run(off, n, length, stride)
                if k == n or k >= RUN:  # all that is there, or a run worth a block
                    cons, got = self._cut_run(cons, k, length, stride, got)
                    continue
            cons, got = self._walk(cons, prod, limit, got)

    def _same_size_run(self, off: int, n: int, length: int, stride: int) -> int:
        """How many of the ``n`` records from ``off`` are submitted (discarded or not) and
        ``length`` bytes long, before the first that is not."""
        w, wstride = off >> 2, stride >> 2
        if n <= SMALL_RECORDS:
            lens = self._hdrs[w: w + n * wstride: wstride].tolist()
            if lens.count(length) == n:
                return n
        ok = (self._words[w: w + n * wstride: wstride] & np.uint32(~DISCARD & 0xFFFFFFFF)) == length
        return n if ok.all() else int(np.argmin(ok))

    def _cut_run(self, cons: int, k: int, length: int, stride: int, got: int) -> tuple[int, int]:
        """Copy out ``k`` same-size records from ``cons`` as one RawBatch, hold it and commit."""
        off = cons & self._mask
        w, wstride = off >> 2, stride >> 2
        out = np.ndarray((k,), _opaque(length), self._prod_mm, PAGE + off + HDR, (stride,)).copy()
        ndisc = 0
        if k > SMALL_RECORDS or self._hdrs[w: w + k * wstride: wstride].tolist().count(length) != k:
            lens = self._words[w: w + k * wstride: wstride]  # the records are submitted: flags are final
            disc = (lens & np.uint32(DISCARD)) != 0
            ndisc = int(disc.sum())
            if ndisc:
                out = out[~disc]
        batch = RawBatch.fixed(out.view(np.uint8), length, k - ndisc) if k > ndisc else None
        cons += k * stride
        self._ledger.hold(batch, self, cons, skipped=ndisc)
        self._commit(cons)
        return cons, got + k - ndisc

    def _walk(self, cons: int, prod: int, limit: Optional[int], got: int) -> tuple[int, int]:
        """Copy records one by one into a held RawBatch and commit: until the chunk is full, the
        position ``prod``, a busy record, ``limit``, or ``RUN`` same-size records in a row."""
        mask, hdrs = self._mask, self._hdrs
        assert self._prod_mm is not None
        view = memoryview(self._prod_mm)[PAGE:]
        chunks: list[Any] = []
        start = cons
        skipped = run = 0
        last = -1
        end = start + max(1, self.chunk_bytes)
        try:
            while cons < prod and cons < end and (limit is None or got + len(chunks) < limit):
                off = cons & mask
                hdr = hdrs[off >> 2]
                if hdr & BUSY:
                    break
                length = hdr & LEN_MASK
                if hdr & DISCARD:
                    skipped += 1
                else:
                    chunks.append(view[off + HDR: off + HDR + length])
                cons += (length + HDR + 7) & ~7
                run = run + 1 if length == last else 1
                last = length
                if run >= RUN and length:
                    break  # a run of same-size records: the vectorised path takes over
            batch = RawBatch.from_chunks(chunks)  # copies before we release the space
        finally:
            chunks.clear()
            view.release()
        if cons != start:
            self._ledger.hold(batch if len(batch) else None, self, cons, skipped=skipped)
            self._commit(cons)
        return cons, got + len(batch)

    def give_back(self, batch: Batch) -> None:
        """Take back a batch the last drain() handed out (a Poller could not deliver it): the next
        drain hands it out first, without counting it again."""
        self._ledger.give_back([Held(batch, self, 0, counted=True)])

    def __repr__(self) -> str:
        return f"<RingBuffer {self.name!r} size={self.size} dtype={self.dtype}>"


@functools.lru_cache(maxsize=64)
def _opaque(size: int) -> np.dtype:
    """An opaque ``size``-byte record: numpy copies it as one block (a structured dtype would be
    copied field by field)."""
    return np.dtype(f"V{size}")
