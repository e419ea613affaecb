"""Tracepoints (perf event + BPF link), raw tracepoints and BTF-typed tracepoints.

Example::

    with prog.attach_tracepoint("syscalls", "sys_enter_getpid"):
        ...
"""
from __future__ import annotations

import errno

from .. import _sys as sc
from ..errors import AttachError, BpfError, BpfNotFoundError, BpfUsageError
from .link import Link, attach_refused, new_link, perf_event_link
from ..tracefs import tracepoint_id

__all__ = ["attach_tracepoint", "attach_raw_tracepoint"]


def attach_tracepoint(prog_fd: int, category: str, name: str, cookie: int = 0) -> Link:
    """Attach a BPF_PROG_TYPE_TRACEPOINT program to ``category:name`` on every CPU.

    Example::

        link = attach_tracepoint(prog.fd, "syscalls", "sys_enter_openat", cookie=1)
    """
    cookie = sc.check_u64("cookie", cookie)
    what = f"tracepoint {category}:{name}"
    attr = sc.PerfEventAttr(type=sc.PERF_TYPE_TRACEPOINT, config=tracepoint_id(category, name),
                            sample_period=1, wakeup_events=1)
    # pid -1 with cpu 0: the program runs for the tracepoint on every CPU (the BPF hook is not
    # per-CPU filtered), the way libbpf attaches tracepoints.
    return perf_event_link(prog_fd, lambda: sc.perf_event_open_owned(attr, pid=-1, cpu=0, what=what), what, cookie,
                           "attach_tracepoint")


def attach_raw_tracepoint(prog_fd: int, name: str) -> Link:
    """Attach a BPF_PROG_TYPE_RAW_TRACEPOINT program to raw tracepoint ``name`` (e.g. 'sys_enter').

    Example::

        link = attach_raw_tracepoint(prog.fd, "sched_switch")
    """
    sc.check_cstr("raw tracepoint name", name)
    if len(name.encode()) > 127:  # the kernel reads 127 bytes of it and looks up what it read
        raise BpfUsageError(f"raw tracepoint name {name[:40]!r}... is {len(name.encode())} bytes; the kernel reads "
                            "at most 127", errno.ENAMETOOLONG)
    try:
        return new_link(lambda: sc.raw_tracepoint_open_owned(prog_fd, name), f"raw_tracepoint {name}")
    except BpfNotFoundError:
        raise BpfNotFoundError(f"raw tracepoint {name!r} not found (names are the tracepoint names "
                               "without category, e.g. 'sys_enter', 'sched_switch')") from None
    except BpfError as e:
        what = f"raw_tracepoint {name}"
        err = attach_refused(e, prog_fd, what, "attach_raw_tracepoint")
        if err is e and e.errno == errno.EINVAL:
            # the one other EINVAL: the program reads more of ctx->args[] than the tracepoint passes
            from .discovery import raw_tracepoint_args
            try:
                n = len(raw_tracepoint_args(name))
            except BpfError:
                n = -1
            have = f"{n} argument{'s' if n != 1 else ''}" if n >= 0 else "fewer arguments"
            err = AttachError(f"{what}: the kernel refused it (EINVAL): the program reads ctx->args[] past the "
                              f"{have} raw tracepoint {name!r} passes (bpfkit.probes.tracepoint_fields({name!r}) "
                              "lists them)", e.errno)
        raise err from None
