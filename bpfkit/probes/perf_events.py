"""Perf events by name: the catalogue ``perf list`` shows, resolved to ``(type, config)``, and
opened as fds. Sampling programs (:mod:`bpfkit.probes.sampling`) and counters
(:mod:`bpfkit.counters`) both start here.

Names follow ``perf list``: software events (``cpu-clock``, ``page-faults``, ``context-switches``...),
hardware events (``cycles``, ``instructions``, ``cache-misses``, ``branch-misses``...), hardware
cache events (``L1-dcache-load-misses``, ``LLC-loads``...), raw PMU events (``r1a8`` or
``raw:0x1a8``), and ``(type, config)`` tuples for anything else. Hardware events raise
FeatureNotSupported where there is no PMU (most VMs).

Example::

    ev = resolve_event("L1-dcache-load-misses")   # PerfEvent(type=PERF_TYPE_HW_CACHE, ...)
    fd = open_event(ev, pid=1234)
"""
from __future__ import annotations

import errno
import io
import re
from dataclasses import dataclass
from typing import Union

from .. import features
from .. import _sys as sc
from ..errors import BpfError, BpfUsageError, FeatureNotSupported
from .link import open_perf_event, open_perf_event_owned

__all__ = ["EventSpec", "PerfEvent", "SOFTWARE_EVENTS", "HARDWARE_EVENTS", "resolve_event", "open_event",
           "open_event_owned"]

SOFTWARE_EVENTS = {
    "cpu-clock": 0, "task-clock": 1, "page-faults": 2, "faults": 2, "context-switches": 3, "cs": 3,
    "cpu-migrations": 4, "migrations": 4, "minor-faults": 5, "major-faults": 6, "alignment-faults": 7,
    "emulation-faults": 8, "dummy": 9, "bpf-output": 10, "cgroup-switches": 11,
}
HARDWARE_EVENTS = {
    "cycles": 0, "cpu-cycles": 0, "instructions": 1, "cache-references": 2, "cache-misses": 3,
    "branch-instructions": 4, "branches": 4, "branch-misses": 5, "bus-cycles": 6,
    "stalled-cycles-frontend": 7, "idle-cycles-frontend": 7, "stalled-cycles-backend": 8,
    "idle-cycles-backend": 8, "ref-cycles": 9,
}
_CACHES = {"L1-dcache": 0, "L1-icache": 1, "LLC": 2, "dTLB": 3, "iTLB": 4, "branch": 5, "node": 6}
_CACHE_OPS = {"load": 0, "loads": 0, "store": 1, "stores": 1, "prefetch": 2, "prefetches": 2}
_CACHE_RESULTS = {"": 0, "accesses": 0, "misses": 1}
_CACHE_RX = re.compile(r"^(?P<cache>[A-Za-z0-9]+-?[a-z]*?)-(?P<op>loads?|stores?|prefetch(?:es)?)"
                       r"(?:-(?P<res>accesses|misses))?$")
_RAW_RX = re.compile(r"^(?:r|raw:)(?P<cfg>(?:0x)?[0-9a-fA-F]+)$")

EventSpec = Union[str, tuple[int, int]]


@dataclass(frozen=True)
class PerfEvent:
    """A resolved event: perf ``type`` and ``config``, and the name it was asked by.

    Example::

        ev = resolve_event("cycles"); ev.is_hardware   # True
    """

    name: str
    type: int
    config: int

    @property
    def is_hardware(self) -> bool:
        """Counted by the CPU's PMU (needs one, unlike software events)."""
        return self.type in (sc.PERF_TYPE_HARDWARE, sc.PERF_TYPE_HW_CACHE, sc.PERF_TYPE_RAW)


def resolve_event(event: EventSpec) -> PerfEvent:
    """Turn a ``perf list`` style name (or a ``(type, config)`` tuple) into a PerfEvent.

    Example::

        resolve_event("page-faults")            # PerfEvent('page-faults', 1, 2)
        resolve_event("L1-dcache-load-misses")  # PERF_TYPE_HW_CACHE
    """
    if isinstance(event, tuple):
        return PerfEvent(f"{event[0]}:{event[1]:#x}", int(event[0]), int(event[1]))
    name = event.strip()
    if name in SOFTWARE_EVENTS:
        return PerfEvent(name, sc.PERF_TYPE_SOFTWARE, SOFTWARE_EVENTS[name])
    if name in HARDWARE_EVENTS:
        return PerfEvent(name, sc.PERF_TYPE_HARDWARE, HARDWARE_EVENTS[name])
    m = _CACHE_RX.match(name)
    if m and m.group("cache") in _CACHES:
        cfg = _CACHES[m.group("cache")] | _CACHE_OPS[m.group("op")] << 8 | _CACHE_RESULTS[m.group("res") or ""] << 16
        return PerfEvent(name, sc.PERF_TYPE_HW_CACHE, cfg)
    m = _RAW_RX.match(name)
    if m:
        return PerfEvent(name, sc.PERF_TYPE_RAW, int(m.group("cfg"), 16))
    known = ", ".join(list(SOFTWARE_EVENTS) + list(HARDWARE_EVENTS))
    raise BpfUsageError(f"unknown perf event {name!r}; known: {known}, CACHE-OP[-misses] "
                           "(e.g. L1-dcache-load-misses), rNNNN for raw PMU events, or a (type, config) tuple")


def open_event(event: PerfEvent, *, pid: int = -1, cpu: int = -1, period: int = 0, frequency: int = 0,
               flags: int = 0, read_format: int = 0, group_fd: int = -1) -> int:
    """perf_event_open for ``event``; returns the fd. Hardware events raise FeatureNotSupported
    (feature ``hw_pmu``) when the machine has no PMU.

    Example::

        fd = open_event(resolve_event("page-faults"), pid=1234, period=100)
    """
    attr, what = _event_attr(event, pid, cpu, period, frequency, flags, read_format)
    try:
        return open_perf_event(attr, pid=pid, cpu=cpu, group_fd=group_fd, what=what)
    except BpfError as e:
        raise _hardware_error(event, e) from None


def open_event_owned(event: PerfEvent, *, pid: int = -1, cpu: int = -1, period: int = 0, frequency: int = 0,
                     flags: int = 0, read_format: int = 0, group_fd: int = -1) -> io.FileIO:
    """:func:`open_event` returning the fd inside an ``io.FileIO`` that closes it once, when closed
    or dropped (so an exception cannot leave it behind).

    Example::

        with open_event_owned(resolve_event("page-faults"), pid=1234, period=100) as f: ...
    """
    attr, what = _event_attr(event, pid, cpu, period, frequency, flags, read_format)
    try:
        return open_perf_event_owned(attr, pid=pid, cpu=cpu, group_fd=group_fd, what=what)
    except BpfError as e:
        raise _hardware_error(event, e) from None


def _event_attr(event: PerfEvent, pid: int, cpu: int, period: int, frequency: int, flags: int,
                read_format: int) -> tuple[sc.PerfEventAttr, str]:
    attr = sc.PerfEventAttr(type=event.type, config=event.config, read_format=read_format, flags=flags)
    if frequency:
        attr.sample_period = frequency
        attr.flags |= sc.PERF_ATTR_FREQ
    elif period:
        attr.sample_period = period
    what = f"{event.name}" + (f" pid {pid}" if pid >= 0 else "") + (f" cpu {cpu}" if cpu >= 0 else "")
    return attr, f"perf event {what}"


def _hardware_error(event: PerfEvent, e: BpfError) -> BpfError:
    if event.is_hardware and e.errno in (errno.ENOENT, errno.EOPNOTSUPP, errno.ENODEV):
        ok, reason = features.check("hw_pmu")
        return FeatureNotSupported(f"perf event {event.name!r}: " + (reason if not ok else str(e)), e.errno,
                                   feature="hw_pmu")
    return e
