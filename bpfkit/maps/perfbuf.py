"""Perf buffer (``BPF_MAP_TYPE_PERF_EVENT_ARRAY``) consumer: one mmap'd ring per CPU.

For every online CPU we open a ``sc.PERF_COUNT_SW_BPF_OUTPUT`` software event with
``PERF_SAMPLE_RAW``, map 1 + 2^n pages (a header page with ``data_head``/``data_tail``, then the
data ring) and store the event fd in the map at index ``cpu``, which is where
``bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, ...)`` writes.

Each ring holds ``perf_event_header``-framed records: ``sc.PERF_RECORD_SAMPLE`` (u32 raw size, then
the raw bytes padded so the record stays 8-byte aligned) and ``sc.PERF_RECORD_LOST`` (how many
samples did not fit). Unlike the BPF ring buffer the data area is mapped once, so records that
straddle the end are reassembled: the unread span is copied out (two pieces when it wraps) and
decoded with the same stride trick as the ring buffer. ``data_head`` is read before the records
(acquire) and ``data_tail`` written after copying them (release); on x86-64 plain loads and stores
give that ordering.

Call :meth:`PerfBuffer.open` before the program runs: a CPU without a reader drops its events
(counted by ``BPFKIT_PERF_OUTPUT`` in :attr:`PerfBuffer.dropped`).

Example::

    pb = obj.maps.pevents
    pb.open(pages=64)
    with obj.progs.handler.attach():
        for batch in pb.read(timeout=1.0):
            print(batch["pid"], pb.lost)
"""
from __future__ import annotations

import mmap
import os
import struct
import time
from typing import Any, Optional, Union

import numpy as np

from .. import _sys as sc
from ..errors import BpfError, BpfUsageError
from .records import Batch, RawBatch, concat_records, gather_fixed, split, strided_words
from .map import Map
from .poller import EventSource, Held

PAGE = mmap.PAGESIZE
DATA_HEAD = 1024  # offsetof(struct perf_event_mmap_page, data_head)
DATA_TAIL = 1032
EVENT_HDR = 8     # struct perf_event_header {u32 type; u16 misc; u16 size;}
SAMPLE_HDR = EVENT_HDR + 4  # + u32 raw size
_HEADER = struct.Struct("<IHH")
CHUNK_BYTES = 1 << 20  # decoded per update of data_tail, so the producer gets space back early
HEAD_WORD = DATA_HEAD // 8  # data_head/data_tail as indexes into the mapping viewed as u64 words
TAIL_WORD = DATA_TAIL // 8
# Up to this many samples are decoded with struct instead of numpy: with a wakeup per sample most
# reads find one or two, and numpy's fixed cost per call (~1 us per structured-array operation)
# dominates below this size; above it the vectorized decode wins.
SMALL_SAMPLES = 16
# after a switch of wakeup mode, how long the old ring is kept: a program that looked it up just
# before the switch may still be writing to it (BPF programs run for micro- to milliseconds)
RETIRE_GRACE = 1.0


def sample_size(payload: int) -> int:
    """Size of the sc.PERF_RECORD_SAMPLE carrying ``payload`` raw bytes (the kernel pads raw data so
    that u32 size + data is a multiple of 8)."""
    return EVENT_HDR + ((payload + 4 + 7) & ~7)


class _CpuRing:
    """One CPU's perf event fd and its mapping."""

    def __init__(self, cpu: int, fd: int, mm: mmap.mmap, size: int, per_sample: bool) -> None:
        self.cpu = cpu
        self.fd = fd
        self.mm = mm
        self.size = size
        self.mask = size - 1
        self.per_sample = per_sample  # the kernel wakes the fd on every sample
        # data_head/data_tail through a u64 memoryview: an item access is one aligned 8-byte load or
        # store (what the ordering below relies on), 4x cheaper than a numpy scalar read
        self.words = memoryview(mm).cast("Q")
        self.dmv = memoryview(mm)[PAGE:]  # the data ring, for the small-batch decode
        self.data = np.frombuffer(mm, dtype=np.uint8, offset=PAGE)
        self.prev: Optional["_CpuRing"] = None  # the ring this one replaced; read first until empty
        self.retired_at = 0.0
        self._final_tail = 0

    def committed(self) -> int:
        """data_tail: bytes handed back to the kernel."""
        return self.words[TAIL_WORD] if self.mm is not None else self._final_tail

    def empty(self) -> bool:
        words = self.words
        return words[HEAD_WORD] == words[TAIL_WORD]

    def unread(self, limit: int) -> tuple[int, np.ndarray]:
        """(tail, up to ``limit`` bytes from tail towards head): a view, or a copy when the span
        wraps. The last record may be cut by the limit."""
        words = self.words
        head = words[HEAD_WORD]  # acquire: the records before head are complete
        tail = words[TAIL_WORD]
        n = min(head - tail, limit)
        off = tail & self.mask
        if off + n <= self.size:
            return tail, self.data[off: off + n]
        first = self.size - off
        return tail, np.concatenate((self.data[off:], self.data[: n - first]))

    def release(self) -> None:
        if self.mm is None:
            return
        self._final_tail = self.words[TAIL_WORD]
        self.words.release()
        self.dmv.release()
        self.__dict__.pop("data", None)
        try:
            self.mm.close()
        except BufferError:  # a batch still views the mapping; unmapped when it is freed
            pass
        self.mm = None  # type: ignore[assignment]
        os.close(self.fd)


class PerfBuffer(EventSource, Map):
    """Reader of a perf event array. ``dtype`` is the record dtype (from ``BPFKIT_PERFBUF`` /
    ``BPFKIT_RECORD_TYPE``); without one, :meth:`drain` returns a RawBatch. Counters:
    ``received``/``received_per_cpu``, ``lost``/``lost_per_cpu`` (kernel sc.PERF_RECORD_LOST),
    ``dropped`` (failed outputs counted by ``BPFKIT_PERF_OUTPUT``)."""

    def __init__(self, *args: Any, record_dtype: Optional[np.dtype] = None, pages: int = 64,
                 wakeup_events: int = 0, watermark: Optional[int] = None, flush_interval: float = 0.05,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.dtype: Optional[np.dtype] = np.dtype(record_dtype) if record_dtype is not None else None
        self.pages = pages
        self.wakeup_events = wakeup_events
        self.watermark = watermark
        self.flush_interval = flush_interval
        self._rings: list[_CpuRing] = []
        self._wake: tuple[int, int] = (0, 0)  # (wakeup_events, watermark bytes) the rings were opened with
        # id of the batch the last drain() returned and its (ring, records) parts, for _unget
        self._last_out: Optional[tuple[int, list[tuple[_CpuRing, int]]]] = None
        ncpu = sc.possible_cpus()
        self.received_per_cpu = np.zeros(ncpu, dtype=np.int64)
        self.lost_per_cpu = np.zeros(ncpu, dtype=np.int64)
        self.other_records = 0

    # -- setup ------------------------------------------------------------------
    def open(self, pages: Optional[int] = None, cpus: Optional[list[int]] = None,
             wakeup_events: Optional[int] = None, watermark: Optional[int] = None,
             flush_interval: Optional[float] = None) -> "PerfBuffer":
        """Create the per-CPU rings: ``pages`` data pages per CPU (a power of two), on ``cpus``
        (default: every online CPU).

        Wakeups: every kernel wakeup costs the *producer* an irq_work and the reader a trip through
        epoll, so by default the kernel wakes the reader only when ``watermark`` bytes are waiting
        (default: a quarter of the ring, at most 1 MiB) and the reader also looks every
        ``flush_interval`` seconds, which bounds the latency of a trickle of events.
        ``wakeup_events=1`` wakes on every sample instead (libbpf's and bcc's behaviour); it is
        what a loop waiting on the fds (:meth:`~bpfkit.maps.poller.Poller.fileno`) needs.

        The first of :meth:`poll_fds`, :meth:`pending`, :meth:`drain` (and adding the buffer to
        a Poller) opens the rings with the current settings (64 pages, batched wakeups, every
        online CPU) if open() was not called. Once open, open() with the same settings (or none)
        does nothing and with other ``pages``/``cpus``/``wakeup_events``/``watermark`` raises
        BpfUsageError: call it with yours before anything opens the rings. ``flush_interval``, a
        reader-side setting, can change any time.

        Example::

            obj.maps.pevents.open(pages=256)                  # batched wakeups
            obj.maps.pevents.open(pages=8, wakeup_events=1)   # lowest latency
        """
        if flush_interval is not None:
            self.flush_interval = flush_interval
        want_pages = self.pages if pages is None else pages
        want_wakeup = self.wakeup_events if wakeup_events is None else wakeup_events
        want_mark = self.watermark if watermark is None else watermark
        if want_pages <= 0 or want_pages & (want_pages - 1):
            raise BpfUsageError(f"perf buffer {self.name!r}: pages={want_pages} must be a power of two "
                                "(1, 2, 4, ... data pages per CPU)")
        wake = self._wake_config(want_pages, want_wakeup, want_mark)
        if self._rings:
            differs = []
            if want_pages != self.pages:
                differs.append(f"pages={want_pages} (open with {self.pages})")
            if wake != self._wake:
                differs.append(f"wakeup_events={want_wakeup}, watermark={want_mark} (open with "
                               f"wakeup_events={self.wakeup_events}, watermark={self.watermark})")
            if cpus is not None and sorted(set(cpus)) != sorted(self.cpus):
                differs.append(f"cpus={sorted(set(cpus))} (open on {self.cpus})")
            if differs:
                raise BpfUsageError(f"perf buffer {self.name!r} is already open; cannot change "
                                    f"{'; '.join(differs)}. Call open() with your settings before "
                                    "poll_fds()/pending()/drain()/a Poller open it with the defaults")
            return self
        slots = int(sc.map_info(self.fd).max_entries)
        cpus = sc.online_cpus() if cpus is None else sorted(set(cpus))
        beyond = [c for c in cpus if c < 0 or c >= slots]
        if beyond:
            raise BpfUsageError(f"perf buffer {self.name!r} has {slots} slots (CPUs 0-{slots - 1}), cannot "
                                f"hold CPU {beyond[0]}; leave max_entries unset so libbpf sizes it to the "
                                "CPU count")
        self.pages, self.wakeup_events, self.watermark = want_pages, want_wakeup, want_mark
        self._wake = wake
        try:
            for cpu in cpus:
                self._rings.append(self._open_cpu(cpu, want_pages, *wake))
        except BaseException:
            self._close_rings()
            raise
        self.fd_generation += 1
        return self

    @staticmethod
    def _wake_config(pages: int, wakeup_events: int, watermark: Optional[int]) -> tuple[int, int]:
        """(wakeup_events, watermark bytes) for perf_event_open: one of the two is 0."""
        if wakeup_events > 0:
            return wakeup_events, 0
        mark = watermark if watermark is not None else min(pages * PAGE // 4, 1 << 20)
        return 0, max(1, min(mark, pages * PAGE))

    def _batched(self) -> bool:
        return self.wakeup_events != 1 and (self.wakeup_events > 1 or self.watermark != 0)

    def max_latency(self) -> Optional[float]:
        """How long a Poller may sleep without looking (None: it can rely on wakeups)."""
        return self.flush_interval if self._batched() else None

    def wake_per_record(self) -> None:
        """Switch to a wakeup per sample, as ``open(wakeup_events=1)`` would have done; used by
        :meth:`~bpfkit.maps.poller.Poller.fileno`. If the rings are open, each CPU gets a new ring
        that the program writes to from now on; the old ring is read first until empty and closed
        about a second after the switch (programs already writing to it finish well before). Only a
        sample written to an old ring at the instant of the switch can come after newer samples
        of its CPU."""
        if not self._batched():
            return
        for i, old in enumerate(self._rings):
            if old.per_sample:
                continue  # switched by an earlier attempt that failed on a later CPU
            new = self._open_cpu(old.cpu, self.pages, 1, 0)  # points the map slot at the new ring
            new.prev = old
            old.retired_at = time.monotonic()
            self._rings[i] = new
            self.fd_generation += 1
        self.wakeup_events, self.watermark = 1, None
        self._wake = (1, 0)

    def _open_cpu(self, cpu: int, pages: int, wakeup: int, mark: int) -> _CpuRing:
        attr = sc.PerfEventAttr(type=sc.PERF_TYPE_SOFTWARE, config=sc.PERF_COUNT_SW_BPF_OUTPUT,
                                sample_period=1, sample_type=sc.PERF_SAMPLE_RAW)
        if mark:
            attr.flags = sc.PERF_ATTR_WATERMARK
            attr.wakeup_events = mark  # the union's wakeup_watermark
        else:
            attr.wakeup_events = max(1, wakeup)
        fd = sc.perf_event_open(attr, pid=-1, cpu=cpu, what=f"(bpf output for {self.name!r} on CPU {cpu})")
        try:
            mm = mmap.mmap(fd, PAGE * (1 + pages), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as e:
            os.close(fd)
            raise BpfError.from_errno(e.errno or 0, f"mmap of {pages} perf pages for {self.name!r} on CPU "
                                      f"{cpu} (raise RLIMIT_MEMLOCK/perf_event_mlock_kb or use fewer "
                                      "pages)") from None
        ring = _CpuRing(cpu, fd, mm, pages * PAGE, per_sample=not mark and wakeup <= 1)
        try:
            sc.map_update(self.fd, np.array([cpu], np.uint32), np.array([fd], np.uint32),
                          what=f"perf buffer {self.name!r}")
            sc.ioctl(fd, sc.PERF_EVENT_IOC_ENABLE, 0, f"enable perf event on CPU {cpu}")
        except BaseException:
            ring.release()
            raise
        return ring

    def _ensure_open(self) -> None:
        if not self._rings:
            self.open()

    def _close_rings(self) -> None:
        for ring in self._rings:
            if self._fd >= 0:
                try:  # detach from the map so the program stops writing to a dead ring
                    sc.map_delete(self._fd, np.array([ring.cpu], np.uint32))
                except BpfError:
                    pass
            if ring.prev is not None:
                ring.prev.release()
            ring.release()
        self._rings = []
        self.fd_generation += 1

    def close(self) -> None:
        """Disable and unmap every CPU's ring (the map fd itself is closed by its owner)."""
        self._close_poller()
        self._close_rings()
        self._drops = None
        super().close()

    # -- state ---------------------------------------------------------------------
    @property
    def cpus(self) -> list[int]:
        """CPUs with an open ring."""
        return [r.cpu for r in self._rings]

    def poll_fds(self) -> list[int]:
        """One perf event fd per CPU (opens the rings with the current settings if needed)."""
        self._ensure_open()
        return [r.fd for r in self._rings]

    def pending(self) -> bool:
        """True if any CPU's ring has unread records, or records are held for the next drain (opens
        the rings with the current settings if needed)."""
        if not self._rings:
            self.open()
        if self._held:
            return True
        for r in self._rings:  # called on every wakeup: a plain loop over u64 words, no numpy
            words = r.words
            if words[HEAD_WORD] != words[TAIL_WORD] or (r.prev is not None and not r.prev.empty()):
                return True
        return False

    @property
    def received(self) -> int:
        """Samples decoded so far, all CPUs."""
        return int(self.received_per_cpu.sum())

    @property
    def lost(self) -> int:
        """Samples the kernel reported lost (sc.PERF_RECORD_LOST), all CPUs. The kernel writes that
        record only when space frees up again, so it can lag; :attr:`dropped` does not."""
        return int(self.lost_per_cpu.sum())

    def stats(self) -> dict[str, int]:
        """``received``, ``lost`` (kernel-reported) and ``dropped`` (BPF-side failed outputs)."""
        return {"received": self.received, "lost": self.lost, "dropped": self.dropped}

    # -- consuming --------------------------------------------------------------------
    def drain(self, dtype: Any = None, max_records: Optional[int] = None) -> Batch:
        """Every CPU's available samples, without waiting, concatenated (CPU by CPU; within a CPU
        in order). An array of ``dtype`` (default: the buffer's; a C type name of the object's BTF
        works too), or a RawBatch without one.

        A sample smaller than the dtype stops the drain: the samples before it are returned and
        the next drain raises BpfUsageError (the sample stays, for :meth:`drain_raw`). Samples
        bigger than the dtype (the kernel pads them to 8 bytes) are decoded from their start.
        Ctrl-C may interrupt a long drain: samples already handed back to the kernel are kept
        and come first from the next drain."""
        self._ensure_open()
        return self._drain(self.resolve_dtype(dtype), max_records, per_cpu=False)  # type: ignore[return-value]

    def drain_per_cpu(self, dtype: Any = None, max_records: Optional[int] = None) -> dict[int, Batch]:
        """Available samples by CPU: ``{cpu: batch}``, every open CPU present."""
        self._ensure_open()
        return self._drain(self.resolve_dtype(dtype), max_records, per_cpu=True)  # type: ignore[return-value]

    def drain_raw(self, max_records: Optional[int] = None) -> RawBatch:
        """Every CPU's samples as raw bytes (the kernel pads each so that ``4 + len`` is a multiple
        of 8), whatever the buffer's dtype."""
        self._ensure_open()
        batch = self._drain(None, max_records, per_cpu=False)
        assert isinstance(batch, RawBatch)
        return batch

    def _drain(self, dt: Optional[np.dtype], max_records: Optional[int],
               per_cpu: bool) -> Union[Batch, dict[int, Batch]]:
        self._forget_uncommitted()
        left = None if max_records is None else max_records - self._held_records()
        for ring in self._rings:
            if left is not None and left <= 0:
                break
            words = ring.words
            if ring.prev is None and words[HEAD_WORD] == words[TAIL_WORD]:
                continue  # nothing there: most CPUs on most wakeups
            got = self._drain_cpu(ring, dt, left)
            if left is not None:
                left -= got
        return self._hand_out(dt, max_records, per_cpu)

    def _hand_out(self, dt: Optional[np.dtype], max_records: Optional[int],
                  per_cpu: bool) -> Union[Batch, dict[int, Batch]]:
        out, keep = self._split_held(max_records)
        result: Union[Batch, dict[int, Batch]]
        if not per_cpu and len(out) == 1:
            h = out[0]
            b = h.batch
            if b is not None and (b.dtype == dt if isinstance(b, np.ndarray) else dt is None):
                # the common case (a wakeup per sample): one read of one CPU, nothing to join or
                # convert, no per-CPU arrays to build
                cpu, n = h.ring.cpu, 0 if h.counted else len(b)
                last: Optional[tuple[int, list[tuple[_CpuRing, int]]]] = (id(b), [(h.ring, len(b))])
                # no calls or backward jumps until the return (see below); numpy's item access
                # and += are C slots, not calls
                self.received_per_cpu[cpu] += n
                self.lost_per_cpu[cpu] += h.skipped
                self.other_records += h.other
                self._held = keep
                self._last_out = last
                return b
        # per-CPU increments, allocated only when there is something to count
        received: Optional[np.ndarray] = None
        lost: Optional[np.ndarray] = None
        other = 0
        for h in out:
            n = 0 if h.counted else len(h)  # given-back batches were counted already
            if n or h.skipped:
                if received is None:
                    received = np.zeros(len(self.received_per_cpu), np.int64)
                    lost = np.zeros(len(self.lost_per_cpu), np.int64)
                received[h.ring.cpu] += n
                lost[h.ring.cpu] += h.skipped  # type: ignore[index]
            other += h.other
        if per_cpu:
            result = {r.cpu: self._join_held([h for h in out if h.ring.cpu == r.cpu], dt) for r in self._rings}
            last = None
        elif not out:
            result = RawBatch.empty() if dt is None else np.empty(0, dtype=dt)
            last = None
        else:
            result = self._join_held(out, dt)
            last = (id(result), [(h.ring, len(h)) for h in out if len(h)])
        # No calls or backward jumps from here to the return: CPython 3.11 raises
        # KeyboardInterrupt only at those, so the counters and the held list change together and
        # the batch reaches the caller.
        if received is not None:
            self.received_per_cpu += received
            self.lost_per_cpu += lost  # type: ignore[arg-type]
        self.other_records += other
        self._held = keep
        self._last_out = last
        return result

    def _unget(self, batch: Batch) -> None:
        """Take back the batch the last drain() returned, split by CPU again so drain_per_cpu()
        stays exact; it comes first from the next drain, not counted again."""
        last = self._last_out
        if last is not None and last[0] == id(batch):
            parts = last[1]
        else:  # not the last batch (the caller drained in between): CPU attribution is lost
            parts = [(self._rings[0], len(batch))]
        held: list[Held] = []
        pos = 0
        for ring, n in parts:
            held.append(Held(split(split(batch, pos)[1], n)[0], ring, 0, counted=True))
            pos += n
        self._held[:0] = held
        self._last_out = None

    def _drain_cpu(self, ring: _CpuRing, dt: Optional[np.dtype], limit: Optional[int]) -> int:
        """Read one CPU into held batches: its previous ring first (after a switch of wakeup mode)."""
        got = 0
        prev = ring.prev
        if prev is not None:
            got = self._drain_ring(prev, dt, limit)
            if not prev.empty():
                return got  # limit reached: the newer ring waits, to keep the CPU's order
            if time.monotonic() - prev.retired_at > RETIRE_GRACE:
                prev.release()
                ring.prev = None
            if limit is not None:
                limit -= got
                if limit <= 0:
                    return got
        return got + self._drain_ring(ring, dt, limit)

    def _drain_ring(self, ring: _CpuRing, dt: Optional[np.dtype], limit: Optional[int]) -> int:
        got = 0
        words = ring.words
        stride = 0 if dt is None else sample_size(dt.itemsize)
        small = min(SMALL_SAMPLES * stride, CHUNK_BYTES)
        while limit is None or got < limit:
            left = None if limit is None else limit - got
            if small:
                # a few samples (the usual read with a wakeup per sample, or while catching up
                # with the producer): struct, not numpy
                tail = words[TAIL_WORD]
                span = words[HEAD_WORD] - tail  # acquire: the records before head are complete
                if not span:
                    break
                if span <= small:
                    fast = self._decode_small(ring, tail, span, stride, dt, left)  # type: ignore[arg-type]
                    if fast is not None:
                        self._hold(fast, ring, tail + len(fast) * stride)
                        self._commit(ring, tail + len(fast) * stride)
                        got += len(fast)
                        continue
            # a chunk at a time, handing space back to the producer after each
            tail, buf = ring.unread(CHUNK_BYTES)
            if not buf.size:
                break
            b: Batch
            if dt is None:
                b, used, lost, other = self._decode_raw(buf, left)
            else:
                b, used, lost, other = self._decode_fixed(buf, dt, left)
            if not used:
                break
            self._hold(b if len(b) else None, ring, tail + used, skipped=lost, other=other)
            self._commit(ring, tail + used)
            got += len(b)
        return got

    def _commit(self, ring: _CpuRing, pos: int) -> None:
        ring.words[TAIL_WORD] = pos  # release: the records were copied out before

    @staticmethod
    def _decode_small(ring: _CpuRing, tail: int, span: int, stride: int, dt: np.dtype,
                      max_records: Optional[int]) -> Optional[np.ndarray]:
        """The few samples in ``span`` bytes from ``tail`` decoded with struct, or None if the span
        is not made only of whole samples of ``stride`` bytes that do not wrap (the caller then
        takes the vectorized path, which handles every case)."""
        off = tail & ring.mask
        count, rest = divmod(span, stride)
        if rest or off + span > ring.size:
            return None
        if max_records is not None and count > max_records:
            count = max_records
        dmv = ring.dmv
        unpack = _HEADER.unpack_from
        want = (sc.PERF_RECORD_SAMPLE, stride)
        isz = dt.itemsize
        out = bytearray()
        for pos in range(off, off + count * stride, stride):
            rtype, _misc, size = unpack(dmv, pos)
            if (rtype, size) != want:
                return None  # checked like the vectorized path: type and size, misc ignored
            out += dmv[pos + SAMPLE_HDR: pos + SAMPLE_HDR + isz]
        return np.frombuffer(out, dtype=dt)  # writable, owns its copy

    def _decode_fixed(self, buf: np.ndarray, dt: np.dtype,
                      max_records: Optional[int]) -> tuple[np.ndarray, int, int, int]:
        """(samples, bytes used, samples reported lost, other records) from the start of ``buf``."""
        isz = dt.itemsize
        stride = sample_size(isz)
        total = buf.size
        parts: list[np.ndarray] = []
        got = pos = lost = other = 0
        while pos < total and (max_records is None or got < max_records):
            n = (total - pos) // stride
            if max_records is not None:
                n = min(n, max_records - got)
            k = 0
            if n:
                # perf_event_header as one u64: type | misc << 32 | size << 48; misc is ignored
                hdr = strided_words(buf, pos, n, stride)
                ok = (hdr & np.uint64(0xFFFF0000FFFFFFFF)) == np.uint64(stride << 48 | sc.PERF_RECORD_SAMPLE)
                k = n if ok.all() else int(np.argmin(ok))
                if k:
                    parts.append(gather_fixed(buf, pos, k, stride, SAMPLE_HDR, dt))  # never a view
                    got += k
                    pos += k * stride
            if k == n and n:
                continue
            rtype, size = self._header(buf, pos)
            if pos + size > total:
                break  # cut by the chunk limit: read with the next chunk
            if rtype == sc.PERF_RECORD_SAMPLE:
                raw = int(buf[pos + EVENT_HDR: pos + SAMPLE_HDR].view(np.uint32)[0])
                if raw < isz:
                    if parts or self._held_records():
                        break  # hand over what we have; the next drain meets this sample first
                    raise BpfUsageError(
                        f"perf buffer {self.name!r}: a sample of {raw} bytes is smaller than the {isz}-byte "
                        f"dtype {dt}; it stays in the ring: read it with drain_raw(), or pass the right dtype")
                # bigger than the dtype (padding or a longer struct): decode its leading bytes
                parts.append(buf[pos + SAMPLE_HDR: pos + SAMPLE_HDR + isz].copy().view(dt))
                got += 1
            elif rtype == sc.PERF_RECORD_LOST:
                lost += self._lost(buf, pos)
            else:
                other += 1
            pos += size
        batch = np.empty(0, dtype=dt) if not parts else parts[0] if len(parts) == 1 else concat_records(parts)
        return batch, pos, lost, other

    def _decode_raw(self, buf: np.ndarray, max_records: Optional[int]) -> tuple[RawBatch, int, int, int]:
        mv = buf.data
        chunks: list[bytes] = []
        pos, total = 0, buf.size
        lost = other = 0
        while pos < total and (max_records is None or len(chunks) < max_records):
            rtype, size = self._header(buf, pos)
            if pos + size > total:
                break
            if rtype == sc.PERF_RECORD_SAMPLE:
                (raw,) = struct.unpack_from("<I", mv, pos + EVENT_HDR)
                chunks.append(bytes(mv[pos + SAMPLE_HDR: pos + SAMPLE_HDR + raw]))
            elif rtype == sc.PERF_RECORD_LOST:
                lost += self._lost(buf, pos)
            else:
                other += 1
            pos += size
        return RawBatch.from_chunks(chunks), pos, lost, other

    def _header(self, buf: np.ndarray, pos: int) -> tuple[int, int]:
        rtype, _misc, size = struct.unpack_from("<IHH", buf.data, pos)
        if size < EVENT_HDR:
            raise BpfError(f"perf buffer {self.name!r}: corrupt record header at {pos} (size {size})")
        return rtype, size

    @staticmethod
    def _lost(buf: np.ndarray, pos: int) -> int:
        (lost,) = struct.unpack_from("<Q", buf.data, pos + EVENT_HDR + 8)  # after u64 id
        return int(lost)

    def __len__(self) -> int:
        return len(self._rings)

    def __repr__(self) -> str:
        state = f"cpus={self.cpus} pages={self.pages}" if self._rings else "not open"
        return f"<PerfBuffer {self.name!r} {state} dtype={self.dtype}>"
