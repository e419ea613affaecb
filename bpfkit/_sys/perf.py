"""``perf_event_open(2)`` and ``ioctl(2)`` for perf event fds.

Example::

    from bpfkit import _sys as sc
    attr = sc.PerfEventAttr(type=sc.PERF_TYPE_SOFTWARE, config=0)   # cpu-clock
    fd = sc.perf_event_open(attr, pid=0, cpu=-1)
"""
from __future__ import annotations

import ctypes
import io
from ctypes import addressof, c_int, c_long, c_void_p, sizeof

from ..errors import BpfError
from .attrs import PerfEventAttr
from .consts import PERF_FLAG_FD_CLOEXEC
from .libc import SYS_PERF_EVENT_OPEN, ioctl as _ioctl, syscall as _syscall, syscall_owned as _syscall_owned

__all__ = [
    "perf_event_open", "perf_event_open_owned", "ioctl",
]


def perf_event_open(attr: PerfEventAttr, pid: int = -1, cpu: int = 0, group_fd: int = -1,
                    flags: int = PERF_FLAG_FD_CLOEXEC, what: str = "") -> int:
    """perf_event_open(2); returns the event fd. ``attr.size`` is filled in.

    Example::

        attr = sc.PerfEventAttr(type=sc.PERF_TYPE_SOFTWARE, config=0)   # cpu-clock
        fd = sc.perf_event_open(attr, pid=0, cpu=-1)   # this process, any CPU
    """
    attr.size = sizeof(attr)
    ret = _syscall(c_long(SYS_PERF_EVENT_OPEN), c_void_p(addressof(attr)), c_long(pid), c_long(cpu),
                   c_long(group_fd), c_long(flags))
    if ret < 0:
        err = ctypes.get_errno()
        raise BpfError.from_errno(err, f"perf_event_open {what}".strip())
    return int(ret)


def perf_event_open_owned(attr: PerfEventAttr, pid: int = -1, cpu: int = 0, group_fd: int = -1,
                          flags: int = PERF_FLAG_FD_CLOEXEC, what: str = "") -> io.FileIO:
    """:func:`perf_event_open` returning the fd inside an ``io.FileIO`` that closes it once, when
    closed or dropped, so no exception can leave it behind (see ``libc.syscall_owned``).

    Example::

        f = sc.perf_event_open_owned(attr, pid=0, cpu=-1)   # f.fileno(); f.close()
    """
    attr.size = sizeof(attr)
    try:
        return _syscall_owned(c_long(SYS_PERF_EVENT_OPEN), c_void_p(addressof(attr)),
                              c_long(pid), c_long(cpu), c_long(group_fd), c_long(flags))
    except ValueError:  # FileIO refused the -1 of a failed call
        raise BpfError.from_errno(ctypes.get_errno(), f"perf_event_open {what}".strip()) from None


def ioctl(fd: int, request: int, arg: int = 0, what: str = "") -> int:
    """ioctl(2) with an integer argument; raises BpfError on failure.

    Example::

        sc.ioctl(perf_fd, sc.PERF_EVENT_IOC_ENABLE)
    """
    ret = _ioctl(c_int(fd), ctypes.c_ulong(request), c_long(arg))
    if ret < 0:
        err = ctypes.get_errno()
        raise BpfError.from_errno(err, f"ioctl {request:#x} {what}".strip())
    return int(ret)

