"""Tracepoints (perf event + BPF link), raw tracepoints and BTF-typed tracepoints.

Example::

    with prog.attach_tracepoint("syscalls", "sys_enter_getpid"):
        ...
"""
from __future__ import annotations

from .. import _sys as sc
from ..errors import BpfNotFoundError
from .link import Link, attach_perf_event
from ..tracefs import tracepoint_id

__all__ = ["attach_tracepoint", "attach_raw_tracepoint"]


def attach_tracepoint(prog_fd: int, category: str, name: str, cookie: int = 0) -> Link:
    """Attach a BPF_PROG_TYPE_TRACEPOINT program to ``category:name`` on every CPU.

    Example::

        link = attach_tracepoint(prog.fd, "syscalls", "sys_enter_openat", cookie=1)
    """
    what = f"tracepoint {category}:{name}"
    attr = sc.PerfEventAttr(type=sc.PERF_TYPE_TRACEPOINT, config=tracepoint_id(category, name),
                            sample_period=1, wakeup_events=1)
    # pid -1 with cpu 0: the program runs for the tracepoint on every CPU (the BPF hook is not
    # per-CPU filtered), the way libbpf attaches tracepoints.
    perf_fd = sc.perf_event_open(attr, pid=-1, cpu=0, what=what)
    return attach_perf_event(prog_fd, perf_fd, what, cookie)


def attach_raw_tracepoint(prog_fd: int, name: str) -> Link:
    """Attach a BPF_PROG_TYPE_RAW_TRACEPOINT program to raw tracepoint ``name`` (e.g. 'sys_enter').

    Example::

        link = attach_raw_tracepoint(prog.fd, "sched_switch")
    """
    try:
        return Link(sc.raw_tracepoint_open(prog_fd, name), f"raw_tracepoint {name}")
    except BpfNotFoundError:
        raise BpfNotFoundError(f"raw tracepoint {name!r} not found (names are the tracepoint names "
                               "without category, e.g. 'sys_enter', 'sched_switch')") from None
