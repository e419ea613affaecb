"""One CPU's perf event ring: the fd, its mapping, and the ``data_head``/``data_tail`` words.

The data area is mapped once (unlike the BPF ring buffer), so records that straddle its end are
copied out in two pieces. ``data_head`` is read before the records (acquire) and ``data_tail``
written after copying them (release); on x86-64 plain loads and stores give that ordering.

Example::

    ring = CpuRing(cpu, fd, mm, pages * PAGE, per_sample=True)
    tail, buf = ring.unread(1 << 20)
"""
from __future__ import annotations

import mmap
import os
import struct
from typing import Optional

import numpy as np

__all__ = ["CpuRing", "PAGE", "DATA_HEAD", "DATA_TAIL", "HEAD_WORD", "TAIL_WORD"]

PAGE = mmap.PAGESIZE
DATA_HEAD = 1024  # offsetof(struct perf_event_mmap_page, data_head)
DATA_TAIL = 1032
HEAD_WORD = DATA_HEAD // 8  # data_head/data_tail as indexes into the mapping viewed as u64 words
TAIL_WORD = DATA_TAIL // 8
_VALUE_LOST = struct.Struct("<QQ")  # read() with read_format PERF_FORMAT_LOST: {u64 value; u64 lost}


class CpuRing:
    """One CPU's perf event fd and its mapping."""

    def __init__(self, cpu: int, fd: int, mm: mmap.mmap, size: int, per_sample: bool,
                 live_lost: bool = False) -> None:
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
        self.prev: Optional["CpuRing"] = None  # the ring this one replaced; read first until empty
        self.retired_at = 0.0
        self.live_lost = live_lost  # opened with PERF_FORMAT_LOST: read() gives the lost samples
        self._final_tail = 0
        self._final_lost = 0

    def committed(self) -> int:
        """data_tail: bytes handed back to the kernel."""
        return self.words[TAIL_WORD] if self.mm is not None else self._final_tail

    def lost(self) -> int:
        """Samples the kernel could not write because the ring was full (``event->lost_samples``,
        read with PERF_FORMAT_LOST; 0 when the ring was opened without it). Live: a sample that
        did not fit is counted here at once, not when the kernel's PERF_RECORD_LOST arrives."""
        if self.mm is None or not self.live_lost:
            return self._final_lost
        return int(_VALUE_LOST.unpack(os.read(self.fd, _VALUE_LOST.size))[1])

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
        self._final_lost = self.lost()
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


