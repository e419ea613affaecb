"""Perf buffer (``BPF_MAP_TYPE_PERF_EVENT_ARRAY``) consumer: one mmap'd ring per CPU.

For every online CPU we open a ``PERF_COUNT_SW_BPF_OUTPUT`` software event with
``PERF_SAMPLE_RAW``, map 1 + 2^n pages (a header page with ``data_head``/``data_tail``, then the
data ring) and store the event fd in the map at index ``cpu``, which is where
``bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, ...)`` writes.

Each ring holds ``perf_event_header``-framed records: ``PERF_RECORD_SAMPLE`` (u32 raw size, then
the raw bytes padded so the record stays 8-byte aligned) and ``PERF_RECORD_LOST`` (how many
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
from typing import Any, Optional

import numpy as np

from .. import syscall as sc
from ..errors import BpfError
from .records import Batch, RawBatch, gather_fixed, strided_words
from .map import Map
from .poller import EventSource

PAGE = mmap.PAGESIZE
PERF_COUNT_SW_BPF_OUTPUT = 10
PERF_RECORD_LOST = 2
PERF_RECORD_SAMPLE = 9
DATA_HEAD = 1024  # offsetof(struct perf_event_mmap_page, data_head)
DATA_TAIL = 1032
EVENT_HDR = 8     # struct perf_event_header {u32 type; u16 misc; u16 size;}
SAMPLE_HDR = EVENT_HDR + 4  # + u32 raw size
CHUNK_BYTES = 1 << 20  # decoded per update of data_tail, so the producer gets space back early


def sample_size(payload: int) -> int:
    """Size of the PERF_RECORD_SAMPLE carrying ``payload`` raw bytes (the kernel pads raw data so
    that u32 size + data is a multiple of 8)."""
    return EVENT_HDR + ((payload + 4 + 7) & ~7)


class _CpuRing:
    """One CPU's perf event fd and its mapping."""

    def __init__(self, cpu: int, fd: int, mm: mmap.mmap, size: int) -> None:
        self.cpu = cpu
        self.fd = fd
        self.mm = mm
        self.size = size
        self.mask = size - 1
        self.head = np.frombuffer(mm, dtype=np.uint64, count=1, offset=DATA_HEAD)
        self.tail = np.frombuffer(mm, dtype=np.uint64, count=1, offset=DATA_TAIL)
        self.data = np.frombuffer(mm, dtype=np.uint8, offset=PAGE)

    def unread(self, limit: int) -> tuple[int, np.ndarray]:
        """(tail, up to ``limit`` bytes from tail towards head): a view, or a copy when the span
        wraps. The last record may be cut by the limit."""
        head = int(self.head[0])  # acquire: the records before head are complete
        tail = int(self.tail[0])
        n = min(head - tail, limit)
        off = tail & self.mask
        if off + n <= self.size:
            return tail, self.data[off: off + n]
        first = self.size - off
        return tail, np.concatenate((self.data[off:], self.data[: n - first]))

    def release(self) -> None:
        for name in ("head", "tail", "data"):
            self.__dict__.pop(name, None)
        try:
            self.mm.close()
        except BufferError:  # a batch still views the mapping; unmapped when it is freed
            pass
        os.close(self.fd)


class PerfBuffer(EventSource, Map):
    """Reader of a perf event array. ``dtype`` is the record dtype (from ``BPFKIT_PERFBUF`` /
    ``BPFKIT_RECORD_TYPE``); without one, :meth:`drain` returns a RawBatch. Counters:
    ``received``/``received_per_cpu``, ``lost``/``lost_per_cpu`` (kernel PERF_RECORD_LOST),
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
        ncpu = sc.possible_cpus()
        self.received_per_cpu = np.zeros(ncpu, dtype=np.int64)
        self.lost_per_cpu = np.zeros(ncpu, dtype=np.int64)
        self.other_records = 0

    # -- setup ------------------------------------------------------------------
    def open(self, pages: Optional[int] = None, cpus: Optional[list[int]] = None,
             wakeup_events: Optional[int] = None, watermark: Optional[int] = None,
             flush_interval: Optional[float] = None) -> "PerfBuffer":
        """Create the per-CPU rings: ``pages`` data pages per CPU (a power of two), on ``cpus``
        (default: every online CPU). Idempotent.

        Wakeups: every kernel wakeup costs the *producer* an irq_work and the reader a trip through
        epoll, so by default the kernel wakes the reader only when ``watermark`` bytes are waiting
        (default: a quarter of the ring, at most 1 MiB) and the reader also looks every
        ``flush_interval`` seconds, which bounds the latency of a trickle of events.
        ``wakeup_events=1`` wakes on every sample instead (libbpf's and bcc's behaviour).

        Example::

            obj.maps.pevents.open(pages=256)                  # batched wakeups
            obj.maps.pevents.open(pages=8, wakeup_events=1)   # lowest latency
        """
        if self._rings:
            return self
        pages = self.pages if pages is None else pages
        if pages <= 0 or pages & (pages - 1):
            raise BpfError(f"perf buffer {self.name!r}: pages={pages} must be a power of two")
        self.pages = pages
        if wakeup_events is not None:
            self.wakeup_events = wakeup_events
        if watermark is not None:
            self.watermark = watermark
        if flush_interval is not None:
            self.flush_interval = flush_interval
        if self.wakeup_events > 0:
            wakeup, mark = self.wakeup_events, 0
        else:
            wakeup = 1
            mark = self.watermark if self.watermark is not None else min(pages * PAGE // 4, 1 << 20)
            mark = max(1, min(mark, pages * PAGE))
        slots = int(sc.map_info(self.fd).max_entries)
        cpus = sc.online_cpus() if cpus is None else list(cpus)
        try:
            for cpu in cpus:
                if cpu >= slots:
                    raise BpfError(f"perf buffer {self.name!r} has {slots} slots, cannot hold CPU {cpu}; "
                                   "leave max_entries unset so libbpf sizes it to the CPU count")
                self._rings.append(self._open_cpu(cpu, pages, wakeup, mark))
        except BaseException:
            self._close_rings()
            raise
        return self

    def max_latency(self) -> Optional[float]:
        """How long a Poller may sleep without looking (None: it can rely on wakeups)."""
        batched = self.wakeup_events != 1 and (self.wakeup_events > 1 or self.watermark != 0)
        return self.flush_interval if batched else None

    def _open_cpu(self, cpu: int, pages: int, wakeup: int, mark: int) -> _CpuRing:
        attr = sc.PerfEventAttr(type=sc.PERF_TYPE_SOFTWARE, config=PERF_COUNT_SW_BPF_OUTPUT,
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
        ring = _CpuRing(cpu, fd, mm, pages * PAGE)
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
            ring.release()
        self._rings = []

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
        """One perf event fd per CPU."""
        self._ensure_open()
        return [r.fd for r in self._rings]

    def pending(self) -> bool:
        """True if any CPU's ring has unread records."""
        self._ensure_open()
        return any(int(r.head[0]) != int(r.tail[0]) for r in self._rings)

    @property
    def received(self) -> int:
        """Samples decoded so far, all CPUs."""
        return int(self.received_per_cpu.sum())

    @property
    def lost(self) -> int:
        """Samples the kernel reported lost (PERF_RECORD_LOST), all CPUs. The kernel writes that
        record only when space frees up again, so it can lag; :attr:`dropped` does not."""
        return int(self.lost_per_cpu.sum())

    def stats(self) -> dict[str, int]:
        """``received``, ``lost`` (kernel-reported) and ``dropped`` (BPF-side failed outputs)."""
        return {"received": self.received, "lost": self.lost, "dropped": self.dropped}

    # -- consuming --------------------------------------------------------------------
    def drain(self, dtype: Any = None, max_records: Optional[int] = None) -> Batch:
        """Every CPU's available samples, without waiting, concatenated (CPU by CPU; within a CPU
        in order). An array of ``dtype`` (default: the buffer's), or a RawBatch without one."""
        per = self.drain_per_cpu(dtype, max_records)
        batches = [b for b in per.values() if len(b)]
        dt = np.dtype(dtype) if dtype is not None else self.dtype
        if dt is None:
            if len(batches) == 1:
                return batches[0]
            return RawBatch.from_chunks([rec for b in batches for rec in b])
        if not batches:
            return np.empty(0, dtype=dt)
        return batches[0] if len(batches) == 1 else np.concatenate(batches)

    def drain_per_cpu(self, dtype: Any = None, max_records: Optional[int] = None) -> dict[int, Batch]:
        """Available samples by CPU: ``{cpu: batch}``."""
        self._ensure_open()
        dt = np.dtype(dtype) if dtype is not None else self.dtype
        out: dict[int, Batch] = {}
        left = max_records
        for ring in self._rings:
            if left is not None and left <= 0:
                break
            b = self._drain_ring(ring, dt, left)
            out[ring.cpu] = b
            if left is not None:
                left -= len(b)
        return out

    def _drain_ring(self, ring: _CpuRing, dt: Optional[np.dtype], max_records: Optional[int]) -> Batch:
        parts: list[Any] = []
        left = max_records
        while left is None or left > 0:
            # a chunk at a time, handing space back to the producer after each
            tail, buf = ring.unread(CHUNK_BYTES)
            if not buf.size:
                break
            b: Batch
            if dt is None:
                b, used = self._decode_raw(ring, buf, left)
            else:
                b, used = self._decode_fixed(ring, buf, dt, left)
            ring.tail[0] = tail + used  # release: the records were copied out above
            if len(b):
                parts.append(b)
                if left is not None:
                    left -= len(b)
            if not used:
                break
        got = sum(len(p) for p in parts)
        self.received_per_cpu[ring.cpu] += got
        if dt is None:
            return parts[0] if len(parts) == 1 else RawBatch.from_chunks([r for p in parts for r in p])
        if not parts:
            return np.empty(0, dtype=dt)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _decode_fixed(self, ring: _CpuRing, buf: np.ndarray, dt: np.dtype,
                      max_records: Optional[int]) -> tuple[np.ndarray, int]:
        isz = dt.itemsize
        stride = sample_size(isz)
        total = buf.size
        parts: list[np.ndarray] = []
        got = pos = 0
        while pos < total and (max_records is None or got < max_records):
            n = (total - pos) // stride
            if max_records is not None:
                n = min(n, max_records - got)
            k = 0
            if n:
                # perf_event_header as one u64: type | misc << 32 | size << 48; misc is ignored
                hdr = strided_words(buf, pos, n, stride)
                ok = (hdr & np.uint64(0xFFFF0000FFFFFFFF)) == np.uint64(stride << 48 | PERF_RECORD_SAMPLE)
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
            if rtype == PERF_RECORD_SAMPLE:
                raw = int(buf[pos + EVENT_HDR: pos + SAMPLE_HDR].view(np.uint32)[0])
                if raw < isz:
                    if parts:
                        break
                    raise BpfError(f"perf buffer {self.name!r}: a sample of {raw} bytes is smaller than "
                                   f"the {isz}-byte dtype {dt}; pass the right dtype or drain_raw()")
                # bigger than the dtype (padding or a longer struct): decode its leading bytes
                parts.append(buf[pos + SAMPLE_HDR: pos + SAMPLE_HDR + isz].copy().view(dt))
                got += 1
            else:
                self._other(ring, buf, pos, rtype)
            pos += size
        batch = np.empty(0, dtype=dt) if not parts else parts[0] if len(parts) == 1 else np.concatenate(parts)
        return batch, pos

    def drain_raw(self, max_records: Optional[int] = None) -> RawBatch:
        """Every CPU's samples as raw bytes (the kernel pads each so that ``4 + len`` is a multiple
        of 8), whatever the buffer's dtype."""
        self._ensure_open()
        batches: list[RawBatch] = []
        left = max_records
        for ring in self._rings:
            if left is not None and left <= 0:
                break
            b = self._drain_ring(ring, None, left)
            assert isinstance(b, RawBatch)
            if len(b):
                batches.append(b)
            if left is not None:
                left -= len(b)
        if len(batches) == 1:
            return batches[0]
        return RawBatch.from_chunks([rec for b in batches for rec in b])

    def _decode_raw(self, ring: _CpuRing, buf: np.ndarray, max_records: Optional[int]) -> tuple[RawBatch, int]:
        mv = buf.data
        chunks: list[bytes] = []
        pos, total = 0, buf.size
        while pos < total and (max_records is None or len(chunks) < max_records):
            rtype, size = self._header(buf, pos)
            if pos + size > total:
                break
            if rtype == PERF_RECORD_SAMPLE:
                (raw,) = struct.unpack_from("<I", mv, pos + EVENT_HDR)
                chunks.append(bytes(mv[pos + SAMPLE_HDR: pos + SAMPLE_HDR + raw]))
            else:
                self._other(ring, buf, pos, rtype)
            pos += size
        return RawBatch.from_chunks(chunks), pos

    def _header(self, buf: np.ndarray, pos: int) -> tuple[int, int]:
        rtype, _misc, size = struct.unpack_from("<IHH", buf.data, pos)
        if size < EVENT_HDR:
            raise BpfError(f"perf buffer {self.name!r}: corrupt record header at {pos} (size {size})")
        return rtype, size

    def _other(self, ring: _CpuRing, buf: np.ndarray, pos: int, rtype: int) -> None:
        if rtype == PERF_RECORD_LOST:
            (lost,) = struct.unpack_from("<Q", buf.data, pos + EVENT_HDR + 8)  # after u64 id
            self.lost_per_cpu[ring.cpu] += lost
        else:
            self.other_records += 1

    def __len__(self) -> int:
        return len(self._rings)

    def __repr__(self) -> str:
        state = f"cpus={self.cpus} pages={self.pages}" if self._rings else "not open"
        return f"<PerfBuffer {self.name!r} {state} dtype={self.dtype}>"
