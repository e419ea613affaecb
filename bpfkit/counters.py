"""Counting perf events without BPF, like ``perf stat``.

Each event is opened disabled, enabled together on entering the ``with`` block and disabled on
leaving it. Values come as a numpy structured array, one row per event: ``raw`` count,
``time_enabled``/``time_running`` in ns, and ``value`` scaled for multiplexing
(``raw * time_enabled / time_running``) when the PMU had more events than counters.

Example::

    import bpfkit.counters

    with bpfkit.counters.count(["page-faults", "context-switches"], pid=1234) as c:
        time.sleep(1)
    print(c["page-faults"], c.result)
"""
from __future__ import annotations

import io
import os
import struct
from typing import Any, Optional, Sequence

import numpy as np

from . import _sys as sc
from ._sys import Resource
from .errors import BpfUsageError, ClosedError
from .probes.perf_events import EventSpec, PerfEvent, open_event_owned, resolve_event

__all__ = ["COUNT_DTYPE", "Counter", "count"]

COUNT_DTYPE = np.dtype([("event", "U48"), ("value", "f8"), ("raw", "u8"), ("time_enabled", "u8"),
                        ("time_running", "u8")])
_READ_FORMAT = sc.PERF_FORMAT_TOTAL_TIME_ENABLED | sc.PERF_FORMAT_TOTAL_TIME_RUNNING
_VALUE = struct.Struct("=QQQ")


class Counter(Resource):
    """Open counters for some events. Use :func:`count` to make one.

    ``read()`` gives the current values while counting; after the ``with`` block, ``result``
    holds the final ones and ``counter["event"]`` the scaled count.

    Example::

        with bpfkit.counters.count(["page-faults"]) as c:
            c.read()["value"]   # while counting
        c["page-faults"]        # final
    """

    def __init__(self, events: Sequence[EventSpec], pid: Optional[int] = None, cpus: Optional[Sequence[int]] = None,
                 inherit: bool = True, exclude_kernel: bool = False, exclude_user: bool = False) -> None:
        # the perf fds, each inside the FileIO that owns it (closed once, or when dropped)
        self._fds: list[list[io.FileIO]] = []
        self.result: Optional[np.ndarray] = None
        if not events:
            raise BpfUsageError("count() needs at least one event, e.g. ['page-faults']")
        if exclude_kernel and exclude_user:
            raise BpfUsageError("exclude_kernel=True and exclude_user=True together count nothing: keep one side")
        self.events: list[PerfEvent] = [resolve_event(e) for e in events]
        if pid is not None:
            pid = sc.check_pid(pid)
            if pid < 0:
                raise BpfUsageError(f"pid={pid}: give a process id, or None for every process")
        cpus = sc.check_cpus(cpus)
        if pid is not None and cpus is not None:
            raise BpfUsageError("give pid= (that process on any CPU) or cpus= (every process on those CPUs), "
                                "not both")
        self.pid = pid
        flags = sc.PERF_ATTR_DISABLED | sc.PERF_ATTR_EXCLUDE_HV
        if inherit and pid is not None:
            flags |= sc.PERF_ATTR_INHERIT  # count the threads and children it starts from now on
        if exclude_kernel:
            flags |= sc.PERF_ATTR_EXCLUDE_KERNEL
        if exclude_user:
            flags |= sc.PERF_ATTR_EXCLUDE_USER
        # a pid: that process on any CPU; None: every process, one counter per CPU
        if pid is not None:
            targets = [(pid, -1)]
        else:
            targets = [(-1, c) for c in (cpus if cpus is not None else sc.online_cpus())]
        try:
            for ev in self.events:
                row: list[io.FileIO] = []
                self._fds.append(row)
                for p, c in targets:
                    row.append(open_event_owned(ev, pid=p, cpu=c, flags=flags, read_format=_READ_FORMAT))
        except BaseException:
            self.close()
            raise

    def _all_fds(self) -> list[int]:
        if not self._fds:
            raise ClosedError("the counter is closed (its values stay in .result); make a new one with count()")
        return [f.fileno() for fds in self._fds for f in fds]

    def start(self) -> None:
        """Reset and enable every counter (done on entering the ``with`` block)."""
        for fd in self._all_fds():
            sc.ioctl(fd, sc.PERF_EVENT_IOC_RESET, 0, what="reset counter")
        for fd in self._all_fds():
            sc.ioctl(fd, sc.PERF_EVENT_IOC_ENABLE, 0, what="enable counter")

    def stop(self) -> np.ndarray:
        """Disable the counters, keep and return the final values (done on leaving the block)."""
        for fd in self._all_fds():
            sc.ioctl(fd, sc.PERF_EVENT_IOC_DISABLE, 0, what="disable counter")
        self.result = self.read()
        return self.result

    def read(self) -> np.ndarray:
        """Current values, one row per event (summed over CPUs), dtype :data:`COUNT_DTYPE`."""
        if not self._fds:
            if self.result is not None:
                return self.result
            raise ClosedError("the counter is closed")
        out = np.zeros(len(self.events), dtype=COUNT_DTYPE)
        for row, (ev, fds) in enumerate(zip(self.events, self._fds)):
            raw = enabled = running = 0
            scaled = 0.0
            for f in fds:
                v, e, r = _VALUE.unpack(os.read(f.fileno(), _VALUE.size))
                raw, enabled, running = raw + v, enabled + e, running + r
                # scale per fd: each CPU's counter was multiplexed independently
                scaled += v * (e / r) if r and r < e else float(v)
            out[row] = (ev.name, scaled, raw, enabled, running)
        return out

    def __getitem__(self, event: str) -> float:
        """The scaled value of ``event`` (by the name it was given)."""
        data = self.result if self.result is not None else self.read()
        for row in data:
            if row["event"] == event:
                return float(row["value"])
        raise BpfUsageError(f"{event!r} is not counted here; counted: {[e.name for e in self.events]}")

    def as_dict(self) -> dict[str, float]:
        """``{event: scaled value}``."""
        data = self.result if self.result is not None else self.read()
        return {str(r["event"]): float(r["value"]) for r in data}

    def close(self) -> None:
        """Close every counter fd (values read before stay in ``result``). Idempotent."""
        for fds in getattr(self, "_fds", []):
            for f in fds:
                f.close()  # once, however often this runs
        self._fds = []

    def __enter__(self) -> "Counter":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._fds:
                self.stop()
        finally:
            self.close()

    def __repr__(self) -> str:
        if self.result is not None:
            return "<Counter " + ", ".join(f"{k}={v:.0f}" for k, v in self.as_dict().items()) + ">"
        return f"<Counter {[e.name for e in self.events]}{' closed' if not self._fds else ''}>"


def count(events: Sequence[EventSpec], pid: Optional[int] = None, *, cpus: Optional[Sequence[int]] = None,
          inherit: bool = True, exclude_kernel: bool = False, exclude_user: bool = False) -> Counter:
    """Count ``events`` for process ``pid`` (with the threads and children it starts), or for every
    process (``pid=None``: the whole system, per CPU in ``cpus``). Use as a context manager; hardware events raise FeatureNotSupported on
    machines without a PMU.

    Example::

        with bpfkit.counters.count(["instructions", "cycles"], pid=pid) as c:
            ...
        ipc = c["instructions"] / c["cycles"]
    """
    return Counter(events, pid, cpus, inherit, exclude_kernel, exclude_user)
