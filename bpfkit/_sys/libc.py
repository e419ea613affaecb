"""libc's ``syscall()`` and ``ioctl()`` through ctypes, and this machine's syscall numbers.

``syscall_owned`` is ``syscall()`` for the calls that make an fd: the fd comes back already inside
an ``io.FileIO`` (built by ctypes in C, before Python runs another bytecode), which closes it
when dropped and closes it only once. An exception at any point (a Ctrl-C) then cannot leave a
bare fd behind, and a close cannot hit a number reused since. A failed call raises ValueError
(FileIO refuses the -1); the errno is in ``ctypes.get_errno()``.

Example::

    from bpfkit._sys.libc import SYS_BPF   # 321 on x86-64
"""
from __future__ import annotations

import ctypes
import functools
import io
import os
from ctypes import c_int, c_long

__all__ = ["libc", "syscall", "syscall_owned", "ioctl"]


def _libc() -> ctypes.CDLL:
    # glibc's soname first: ctypes.util.find_library runs `ldconfig -p` in a subprocess, which
    # costs every start of every tool; musl and others go through it
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:
        from ctypes.util import find_library

        return ctypes.CDLL(find_library("c") or "libc.so", use_errno=True)


libc = _libc()
syscall = libc.syscall
syscall.restype = c_long
# a second function object for the same symbol: restype is per object. ctypes calls a callable
# restype with the C int result from C code, so the FileIO exists before control returns to Python.
syscall_owned = libc._FuncPtr(("syscall", libc))
syscall_owned.restype = functools.partial(io.FileIO, mode="rb", closefd=True)
ioctl = libc.ioctl
ioctl.restype = c_int

_NR = {
    "x86_64": {"bpf": 321, "perf_event_open": 298},
    "aarch64": {"bpf": 280, "perf_event_open": 241},
}
_MACHINE = os.uname().machine  # what platform.machine() returns, without importing platform
try:
    SYS_BPF = _NR[_MACHINE]["bpf"]
    SYS_PERF_EVENT_OPEN = _NR[_MACHINE]["perf_event_open"]
except KeyError as exc:  # pragma: no cover - only x86_64 and arm64 are supported
    raise ImportError(f"bpfkit does not know the syscall numbers of {_MACHINE}") from exc
