"""Perf buffer (``BPF_MAP_TYPE_PERF_EVENT_ARRAY``) reader: one mmap'd ring per CPU.

For every online CPU we open a ``sc.PERF_COUNT_SW_BPF_OUTPUT`` software event with
``PERF_SAMPLE_RAW``, map 1 + 2^n pages (a header page with ``data_head``/``data_tail``, then the
data ring) and store the event fd in the map at index ``cpu``, which is where
``bpf_perf_event_output(ctx, &map, BPF_F_CURRENT_CPU, ...)`` writes.

Each CPU's ring (:mod:`~bpfkit.events.perf_ring`) holds ``perf_event_header``-framed records,
decoded by :mod:`~bpfkit.events.perf_decode`. This module opens the rings, reads them in order,
counts what was received and lost per CPU, and hands batches out through the reader's ledger.

Call :meth:`PerfBuffer.open` before the program runs: a CPU without a reader drops its events
(counted by ``BPFKIT_PERF_OUTPUT`` in :attr:`PerfBuffer.dropped`).

Example::

    pb = obj.reader("pevents")
    pb.open(pages=64)
    with obj.progs.handler.attach():
        for batch in pb.read(timeout=1.0):
            print(batch["pid"], pb.lost)
"""
from __future__ import annotations

import errno
import mmap
import os
import time
import warnings
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from .. import _sys as sc
from ..errors import BpfError, BpfUsageError
from .batch import Batch, RawBatch, split
from .ledger import Held
from .perf_decode import (EVENT_HDR, decode_fixed, decode_raw, decode_small, header, same_size_samples,
                          sample_size)
from .perf_ring import HEAD_WORD, PAGE, TAIL_WORD, CpuRing
from .reader import EventReader
from .record_type import find_record_type

if TYPE_CHECKING:
    from ..maps import Map

__all__ = ["PerfBuffer"]

CHUNK_BYTES = 1 << 20  # decoded per update of data_tail, so the producer gets space back early
# Up to this many samples are decoded with struct instead of numpy: with a wakeup per sample most
# reads find one or two, and numpy's fixed cost per call (~1 us per structured-array operation)
# dominates below this size; above it the vectorized decode wins.
SMALL_SAMPLES = 16
# after a switch of wakeup mode, how long the old ring is kept: a program that looked it up just
# before the switch may still be writing to it (BPF programs run for micro- to milliseconds)
RETIRE_GRACE = 1.0


class PerfBuffer(EventReader):
    """Reader of a perf event array map. ``dtype`` is the record dtype (default: the map's, from
    ``BPFKIT_PERFBUF`` / ``BPFKIT_RECORD_TYPE``); without one, :meth:`drain` returns a RawBatch.
    Counters, each lost sample counted once: ``received``/``received_per_cpu``,
    ``lost``/``lost_per_cpu`` (samples the kernel could not write because a ring was full),
    ``dropped`` (other failed outputs, e.g. no reader on a CPU, counted by ``BPFKIT_PERF_OUTPUT``).

    Example::

        pb = PerfBuffer(obj.maps.pevents).open(pages=64)   # or obj.reader("pevents").open(...)
    """

    def __init__(self, map: "Map", dtype: Any = None, *, btf: Any = None, drops: Optional[np.ndarray] = None,
                 pages: int = 64, wakeup_events: int = 0, watermark: Optional[int] = None,
                 flush_interval: float = 0.05) -> None:
        if map.type != sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY:
            raise BpfUsageError(f"map {map.name!r} is a {map.type_name} map, not a perf event array")
        super().__init__(map, dtype, btf=btf, drops=drops)
        self.pages = pages
        self.wakeup_events = wakeup_events
        self.watermark = watermark
        self.flush_interval = flush_interval
        # bytes decoded per update of data_tail, and how long a replaced ring is kept: tunable per
        # reader (tests make them small to reach the edge cases)
        self.chunk_bytes = CHUNK_BYTES
        self.retire_grace = RETIRE_GRACE
        self._rings: list[CpuRing] = []
        self._wake: tuple[int, int] = (0, 0)  # (wakeup_events, watermark bytes) the rings were opened with
        # id of the batch the last drain() returned and its (ring, records) parts, for give_back
        self._last_out: Optional[tuple[int, list[tuple[CpuRing, int]]]] = None
        ncpu = sc.possible_cpus()
        self.received_per_cpu = np.zeros(ncpu, dtype=np.int64)
        # the C type of the samples when it was found in the BTF rather than declared or given
        self.record_type: Optional[str] = None
        self._infer = self.dtype is None and btf is not None
        # Full-ring losses come from one source: the kernel's live per-event count
        # (PERF_FORMAT_LOST, 6.0+; _lost_gone keeps what closed rings had counted) or, on older
        # kernels, the PERF_RECORD_LOST records read from the rings (_lost_records)
        self._live_lost: Optional[bool] = None  # None: not probed yet
        self._lost_records = np.zeros(ncpu, dtype=np.int64)
        self._lost_gone = np.zeros(ncpu, dtype=np.int64)
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
        what a loop waiting on the fds (:meth:`~bpfkit.events.Poller.fileno`) needs.

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
        :meth:`~bpfkit.events.Poller.fileno`. If the rings are open, each CPU gets a new ring
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

    def _open_cpu(self, cpu: int, pages: int, wakeup: int, mark: int) -> CpuRing:
        attr = sc.PerfEventAttr(type=sc.PERF_TYPE_SOFTWARE, config=sc.PERF_COUNT_SW_BPF_OUTPUT,
                                sample_period=1, sample_type=sc.PERF_SAMPLE_RAW)
        if mark:
            attr.flags = sc.PERF_ATTR_WATERMARK
            attr.wakeup_events = mark  # the union's wakeup_watermark
        else:
            attr.wakeup_events = max(1, wakeup)
        what = f"(bpf output for {self.name!r} on CPU {cpu})"
        if self._live_lost is not False:
            attr.read_format = sc.PERF_FORMAT_LOST
            try:
                fd = sc.perf_event_open(attr, pid=-1, cpu=cpu, what=what)
                self._live_lost = True
            except BpfError as e:
                if e.errno != errno.EINVAL or self._live_lost:
                    raise
                self._live_lost = False  # before 6.0: count the PERF_RECORD_LOST records instead
        if not self._live_lost:
            attr.read_format = 0
            fd = sc.perf_event_open(attr, pid=-1, cpu=cpu, what=what)
        try:
            mm = mmap.mmap(fd, PAGE * (1 + pages), mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as e:
            os.close(fd)
            raise BpfError.from_errno(e.errno or 0, f"mmap of {pages} perf pages for {self.name!r} on CPU "
                                      f"{cpu} (raise RLIMIT_MEMLOCK/perf_event_mlock_kb or use fewer "
                                      "pages)") from None
        ring = CpuRing(cpu, fd, mm, pages * PAGE, per_sample=not mark and wakeup <= 1,
                       live_lost=bool(self._live_lost))
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
        map_fd = -1 if self._map.closed else self._map.fd
        for ring in self._rings:
            if map_fd >= 0:
                try:  # detach from the map so the program stops writing to a dead ring
                    sc.map_delete(map_fd, np.array([ring.cpu], np.uint32))
                except BpfError:
                    pass
            if ring.prev is not None:
                self._release(ring.prev)
            self._release(ring)
        self._rings = []
        self.fd_generation += 1

    def _release(self, ring: CpuRing) -> None:
        """Close one ring, keeping the losses it counted."""
        self._lost_gone[ring.cpu] += ring.lost()
        ring.release()

    def close(self) -> None:
        """Disable and unmap every CPU's ring (the map fd itself is closed by its owner)."""
        super().close()
        self._close_rings()

    # -- state ---------------------------------------------------------------------
    @property
    def cpus(self) -> list[int]:
        """CPUs with an open ring."""
        return [r.cpu for r in self._rings]

    def poll_fds(self) -> list[int]:
        """One perf event fd per CPU (opens the rings with the current settings if needed)."""
        self._ensure_open()
        return [r.fd for r in self._rings]

    def settle(self) -> Optional[float]:
        """0: read now; None: nothing is there (the kernel's wakeups, per sample or per watermark,
        say when); ``x``: samples came since a drain less than ``coalesce`` ago, and less than
        1/16 of any ring: let more gather for ``x`` seconds. A poller naps meanwhile rather than
        sleep in epoll: with a wakeup per sample, a reader asleep in epoll makes the traced
        process pay a task wakeup for each sample; one that naps through a dense stream spares it
        that, and a light stream (nothing there after a drain) still wakes it at once."""
        if not self._rings:
            self.open()
        if self._ledger.entries:
            return 0.0
        most = 0
        for r in self._rings:
            words = r.words
            n = words[HEAD_WORD] - words[TAIL_WORD]
            if n > most:
                most = n
            if r.prev is not None and not r.prev.empty():
                return 0.0
        if not most:
            return self._dense_nap()
        if most * 16 >= self._rings[0].size or not self.coalesce:
            return 0.0
        left = self._drained_at + self.coalesce - time.monotonic()
        return left if left > 0 else 0.0

    def pending(self) -> bool:
        """True if any CPU's ring has unread records, or records are held for the next drain (opens
        the rings with the current settings if needed)."""
        if not self._rings:
            self.open()
        if self._ledger:
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
    def lost_per_cpu(self) -> np.ndarray:
        """Per CPU, samples the kernel could not write because that CPU's ring was full. Read live
        from each perf event (PERF_FORMAT_LOST, kernel 6.0+: one read() per CPU); on older
        kernels the sum of the PERF_RECORD_LOST records read so far, which the kernel writes only
        when a later sample fits, so it can lag."""
        if not self._live_lost:
            return self._lost_records.copy()
        out = self._lost_gone.copy()
        for r in self._rings:
            out[r.cpu] += r.lost()
            if r.prev is not None:
                out[r.cpu] += r.prev.lost()
        return out

    @property
    def lost(self) -> int:
        """Samples lost to a full ring, all CPUs (see :attr:`lost_per_cpu`). Outputs that failed
        for other reasons are :attr:`dropped`; no sample is in both."""
        return int(self.lost_per_cpu.sum())

    def stats(self) -> dict[str, int]:
        """``received``, ``lost`` (full rings, counted by the kernel) and ``dropped`` (other failed
        outputs, counted by ``BPFKIT_PERF_OUTPUT``): together, every sample the program sent."""
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
        self._drained_at = time.monotonic()
        dt = self._dtype_for(dtype)
        try:
            return self._drain(dt, max_records, per_cpu=False)  # type: ignore[return-value]
        except BpfUsageError as e:
            if dt is None or dt is not self.dtype or self.record_type is None:
                raise
            warnings.warn(f"perf buffer {self.name!r}: {e}; {self.record_type} was taken from the object's BTF: "
                          "samples are read as RawBatch from now on (pass dtype= to choose)", RuntimeWarning,
                          stacklevel=2)
            self.dtype = self.record_type = None
            return self._drain(None, max_records, per_cpu=False)  # type: ignore[return-value]

    def _dtype_for(self, dtype: Any) -> Optional[np.dtype]:
        if dtype is not None:
            return self.resolve_dtype(dtype)
        if self.dtype is None and self._infer:
            self._infer_dtype()
        return self.dtype

    def _infer_dtype(self) -> None:
        """Take the samples' type from the BTF (see :mod:`~bpfkit.events.record_type`), decided
        once, at the first drain that finds a sample: if the samples there (up to 64, on the
        first CPU with any) all have its size. The kernel pads samples, so a type of any size that
        pads to theirs fits; if types of several such sizes are named, none is taken."""
        for r in self._rings:
            words = r.words
            span = words[HEAD_WORD] - words[TAIL_WORD]
            if not span:
                continue
            _, buf = r.unread(min(span, 1 << 16))
            if buf.size < EVENT_HDR:
                return
            rtype, size = header(buf, 0, self.name)
            if rtype != sc.PERF_RECORD_SAMPLE or size > buf.size:
                return  # decide on a sample
            self._infer = False
            n = min(buf.size // size, 64)
            if same_size_samples(buf, 0, n, size) < n:
                return  # samples of several sizes: read them raw
            raw = int(buf[EVENT_HDR: EVENT_HDR + 4].view(np.uint32)[0])
            fits = [s for s in range(max(1, raw - 7), raw + 1) if sample_size(s) == size]
            found = find_record_type(self._btf, fits, self.name) if self._btf is not None else None
            if found is not None:
                self.record_type, self.dtype = found
            return

    def drain_per_cpu(self, dtype: Any = None, max_records: Optional[int] = None) -> dict[int, Batch]:
        """Available samples by CPU: ``{cpu: batch}``, every open CPU present."""
        self._ensure_open()
        self._drained_at = time.monotonic()
        return self._drain(self._dtype_for(dtype), max_records, per_cpu=True)  # type: ignore[return-value]

    def drain_raw(self, max_records: Optional[int] = None) -> RawBatch:
        """Every CPU's samples as raw bytes (the kernel pads each so that ``4 + len`` is a multiple
        of 8), whatever the buffer's dtype."""
        self._ensure_open()
        self._drained_at = time.monotonic()
        batch = self._drain(None, max_records, per_cpu=False)
        assert isinstance(batch, RawBatch)
        return batch

    def _drain(self, dt: Optional[np.dtype], max_records: Optional[int],
               per_cpu: bool) -> Union[Batch, dict[int, Batch]]:
        self._ledger.forget_uncommitted()
        left = None if max_records is None else max_records - self._ledger.records()
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
        if self._ledger.entries:
            self._found()
        out, keep = self._ledger.split(max_records)
        result: Union[Batch, dict[int, Batch]]
        if not per_cpu and len(out) == 1:
            h = out[0]
            b = h.batch
            if b is not None and (b.dtype == dt if isinstance(b, np.ndarray) else dt is None):
                # the common case (a wakeup per sample): one read of one CPU, nothing to join or
                # convert, no per-CPU arrays to build
                cpu, n = h.ring.cpu, 0 if h.counted else len(b)
                last: Optional[tuple[int, list[tuple[CpuRing, int]]]] = (id(b), [(h.ring, len(b))])
                # no calls or backward jumps until the return (see below); numpy's item access
                # and += are C slots, not calls
                self.received_per_cpu[cpu] += n
                self._lost_records[cpu] += h.skipped
                self.other_records += h.other
                self._ledger.entries = keep
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
                    lost = np.zeros(len(self._lost_records), np.int64)
                received[h.ring.cpu] += n
                lost[h.ring.cpu] += h.skipped  # type: ignore[index]
            other += h.other
        if per_cpu:
            result = {r.cpu: self._ledger.join([h for h in out if h.ring.cpu == r.cpu], dt) for r in self._rings}
            last = None
        elif not out:
            result = RawBatch.empty() if dt is None else np.empty(0, dtype=dt)
            last = None
        else:
            result = self._ledger.join(out, dt)
            last = (id(result), [(h.ring, len(h)) for h in out if len(h)])
        # No calls or backward jumps from here to the return: CPython 3.11 raises
        # KeyboardInterrupt only at those, so the counters and the held list change together and
        # the batch reaches the caller.
        if received is not None:
            self.received_per_cpu += received
            self._lost_records += lost  # type: ignore[arg-type]
        self.other_records += other
        self._ledger.entries = keep
        self._last_out = last
        return result

    def give_back(self, batch: Batch) -> None:
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
        self._ledger.give_back(held)
        self._last_out = None

    def _drain_cpu(self, ring: CpuRing, dt: Optional[np.dtype], limit: Optional[int]) -> int:
        """Read one CPU into held batches: its previous ring first (after a switch of wakeup mode)."""
        got = 0
        prev = ring.prev
        if prev is not None:
            got = self._drain_ring(prev, dt, limit)
            if not prev.empty():
                return got  # limit reached: the newer ring waits, to keep the CPU's order
            if time.monotonic() - prev.retired_at > self.retire_grace:
                self._release(prev)
                ring.prev = None
            if limit is not None:
                limit -= got
                if limit <= 0:
                    return got
        return got + self._drain_ring(ring, dt, limit)

    def _drain_ring(self, ring: CpuRing, dt: Optional[np.dtype], limit: Optional[int]) -> int:
        """Read the samples written before the call (one pass, as the ring buffer reader does:
        chasing the producer would cut its stream into pieces that each pay the fixed costs)."""
        got = 0
        words = ring.words
        head = words[HEAD_WORD]  # acquire: the records before head are complete
        stride = 0 if dt is None else sample_size(dt.itemsize)
        small = min(SMALL_SAMPLES * stride, self.chunk_bytes)
        while limit is None or got < limit:
            left = None if limit is None else limit - got
            tail = words[TAIL_WORD]
            if tail >= head:
                break
            if small:
                # a few samples (the usual read with a wakeup per sample, or while catching up
                # with the producer): struct, not numpy
                span = head - tail
                off = tail & ring.mask
                if span <= small and off + span <= ring.size:  # whole samples that do not wrap
                    fast = decode_small(ring.dmv, off, span, stride, dt, left)  # type: ignore[arg-type]
                    if fast is not None:
                        self._ledger.hold(fast, ring, tail + len(fast) * stride)
                        self._commit(ring, tail + len(fast) * stride)
                        got += len(fast)
                        continue
            # a chunk at a time, handing space back to the producer after each
            tail, buf = ring.unread(min(self.chunk_bytes, head - tail))
            if not buf.size:
                break
            b: Batch
            if dt is None:
                b, used, lost, other = decode_raw(buf, left, self.name)
            else:
                b, used, lost, other = decode_fixed(buf, dt, left, self.name, self._ledger.records() > 0)
            if not used:
                break
            self._ledger.hold(b if len(b) else None, ring, tail + used, skipped=lost, other=other)
            self._commit(ring, tail + used)
            got += len(b)
        return got

    def _commit(self, ring: CpuRing, pos: int) -> None:
        ring.words[TAIL_WORD] = pos  # release: the records were copied out before

    def __repr__(self) -> str:
        state = f"cpus={self.cpus} pages={self.pages}" if self._rings else "not open"
        return f"<PerfBuffer {self.name!r} {state} dtype={self.dtype}>"
