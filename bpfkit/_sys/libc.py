"""libc's ``syscall()`` and ``ioctl()`` through ctypes, and this machine's syscall numbers.

Example::

    from bpfkit._sys.libc import SYS_BPF   # 321 on x86-64
"""
from __future__ import annotations

import ctypes
import ctypes.util
import platform
from ctypes import c_int, c_long

__all__ = ["libc", "syscall", "ioctl"]

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
syscall = libc.syscall
syscall.restype = c_long
ioctl = libc.ioctl
ioctl.restype = c_int

_NR = {
    "x86_64": {"bpf": 321, "perf_event_open": 298},
    "aarch64": {"bpf": 280, "perf_event_open": 241},
}
try:
    SYS_BPF = _NR[platform.machine()]["bpf"]
    SYS_PERF_EVENT_OPEN = _NR[platform.machine()]["perf_event_open"]
except KeyError as exc:  # pragma: no cover - only x86_64 and arm64 are supported
    raise ImportError(f"bpfkit does not know the syscall numbers of {platform.machine()}") from exc
