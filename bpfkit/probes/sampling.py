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
from .link import Link, group_links, perf_event_link
from .perf_events import EventSpec, open_event_owned, resolve_event

__all__ = ["attach_perf_event", "max_sample_rate"]


def _enabled(link: Link) -> Link:
    try:
        sc.ioctl(link.perf_fd, sc.PERF_EVENT_IOC_ENABLE, 0, what=link.description)
    except BaseException:
        link.close()
        raise
    return link


def max_sample_rate() -> int:
    """``kernel.perf_event_max_sample_rate`` (0 when unreadable): the highest frequency= it takes.

    Example::

        max_sample_rate()   # e.g. 100000
    """
    try:
        with open("/proc/sys/kernel/perf_event_max_sample_rate") as f:
            text = f.read().strip()
        return int(text) if text.isascii() and text.isdigit() and len(text) < 12 else 0
    except OSError:
        return 0


def attach_perf_event(prog_fd: int, event: EventSpec, *, frequency: int = 0, period: int = 0, pid: int = -1,
                      cpus: Optional[Sequence[int]] = None, cookie: int = 0) -> Link:
    """Run a ``SEC("perf_event")`` program each time ``event`` overflows: every ``period``
    events, or ``frequency`` times a second. With ``pid`` it follows that thread on any CPU;
    without, one event per CPU in ``cpus`` (default: all online CPUs).

    Example::

        link = attach_perf_event(prog.fd, "cpu-clock", frequency=99)           # every CPU
        link = attach_perf_event(prog.fd, "page-faults", period=10, pid=1234)
    """
    frequency = sc.check_u64("frequency", frequency)
    period = sc.check_u64("period", period)
    pid = sc.check_pid(pid)
    cpu_arg = sc.check_cpus(cpus)
    cookie = sc.check_u64("cookie", cookie)
    if bool(frequency) == bool(period):
        raise BpfUsageError("give exactly one of frequency= (samples per second) or period= (events per sample)")
    limit = max_sample_rate()
    if frequency and limit and frequency > limit:
        raise BpfUsageError(f"frequency={frequency} Hz is over the kernel's limit, sysctl "
                            f"kernel.perf_event_max_sample_rate = {limit}: sample less often, or raise the limit")
    if pid >= 0 and cpu_arg is not None:
        raise BpfUsageError("give pid= (that process on any CPU) or cpus= (every process on those CPUs), not both")
    ev = resolve_event(event)
    rate = f"{frequency} Hz" if frequency else f"every {period}"
    # Opened disabled and enabled once the program is attached (as libbpf does): an event that
    # counts before its program is there would overflow without a sample the program saw.
    if pid >= 0:
        return _enabled(perf_event_link(
            prog_fd, lambda: open_event_owned(ev, pid=pid, cpu=-1, period=period, frequency=frequency,
                                        flags=sc.PERF_ATTR_DISABLED), f"perf_event {ev.name} {rate} pid {pid}", cookie))
    cpu_list = cpu_arg if cpu_arg is not None else sc.online_cpus()

    def one(cpu: int) -> Link:
        return _enabled(perf_event_link(
            prog_fd, lambda: open_event_owned(ev, pid=-1, cpu=cpu, period=period, frequency=frequency,
                                        flags=sc.PERF_ATTR_DISABLED), f"perf_event {ev.name} {rate} cpu {cpu}", cookie))

    return group_links(one, cpu_list, f"perf_event {ev.name} {rate} on {len(cpu_list)} CPUs")
