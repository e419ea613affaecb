"""``SEC("perf_event")`` programs sampling perf events: on a timer (``cpu-clock`` at 99 Hz, the basis
of a profiler), or every Nth occurrence of a software or hardware event.

Example::

    with prog.attach_perf_event("cpu-clock", frequency=99):          # every CPU
        ...
    with prog.attach_perf_event("page-faults", period=10, pid=1234):  # one process
        ...
"""
from __future__ import annotations

from typing import Optional, Sequence

from .. import _sys as sc
from ..errors import BpfUsageError
from .link import Link, attach_perf_event as _attach_fd, group_links
from .perf_events import EventSpec, open_event, resolve_event

__all__ = ["attach_perf_event"]


def _enabled(link: Link) -> Link:
    try:
        sc.ioctl(link.perf_fd, sc.PERF_EVENT_IOC_ENABLE, 0, what=link.description)
    except BaseException:
        link.close()
        raise
    return link


def attach_perf_event(prog_fd: int, event: EventSpec, *, frequency: int = 0, period: int = 0, pid: int = -1,
                      cpus: Optional[Sequence[int]] = None, cookie: int = 0) -> Link:
    """Run a ``SEC("perf_event")`` program each time ``event`` overflows: every ``period``
    events, or ``frequency`` times a second. With ``pid`` it follows that thread on any CPU;
    without, one event per CPU in ``cpus`` (default: all online CPUs).

    Example::

        link = attach_perf_event(prog.fd, "cpu-clock", frequency=99)           # every CPU
        link = attach_perf_event(prog.fd, "page-faults", period=10, pid=1234)
    """
    if bool(frequency) == bool(period):
        raise BpfUsageError("give exactly one of frequency= (samples per second) or period= (events per sample)")
    ev = resolve_event(event)
    rate = f"{frequency} Hz" if frequency else f"every {period}"
    # Opened disabled and enabled once the program is attached (as libbpf does): an event that
    # counts before its program is there would overflow without a sample the program saw.
    if pid >= 0:
        fd = open_event(ev, pid=pid, cpu=-1, period=period, frequency=frequency, flags=sc.PERF_ATTR_DISABLED)
        return _enabled(_attach_fd(prog_fd, fd, f"perf_event {ev.name} {rate} pid {pid}", cookie))
    cpu_list = list(cpus) if cpus is not None else sc.online_cpus()

    def one(cpu: int) -> Link:
        fd = open_event(ev, pid=-1, cpu=cpu, period=period, frequency=frequency, flags=sc.PERF_ATTR_DISABLED)
        return _enabled(_attach_fd(prog_fd, fd, f"perf_event {ev.name} {rate} cpu {cpu}", cookie))

    return group_links(one, cpu_list, f"perf_event {ev.name} {rate} on {len(cpu_list)} CPUs")
