"""System calls by name and number, and how strace shows each one's arguments.

The numbers come from :mod:`bpfkit.tools.syscall_table` (x86-64; elsewhere from the kernel
headers when installed). The argument formats are a table (:data:`FORMATS`) of the calls people
trace most, in strace's spelling; any other call is shown from its tracepoint format file
(``syscalls:sys_enter_NAME``): pointers in hex, integers in decimal.

Example::

    number("openat"), name(257)            # (257, 'openat')
    arg_formats("openat")                  # ('dirfd', 'path', 'oflags', 'mode')
"""
from __future__ import annotations

import platform
import re
from functools import lru_cache
from pathlib import Path
from typing import Optional

from ...errors import BpfUsageError
from ..syscall_table import X86_64

__all__ = ["table", "number", "name", "arg_formats", "FORMATS", "TRACEPOINT_NAMES", "CLASSES", "resolve_names"]

# tracepoint event names that differ from the system call's (syscalls:sys_enter_newfstat is fstat)
TRACEPOINT_NAMES = {"fstat": "newfstat", "lstat": "newlstat", "stat": "newstat", "uname": "newuname",
                    "sendfile": "sendfile64", "umount2": "umount"}

# How strace prints each argument. "s": a path or string (read at the call), "bi:N"/"bo": a buffer
# written to the kernel (N: the argument with its length) / filled by it (length: the return value),
# "stat"/"ts_in"/"ts_out"/"fds2": structs; the rest are integers shown as: "d" signed, "u"
# unsigned, "x" hex, "o" octal, "p" pointer, "fd", "dirfd" (AT_FDCWD), flag sets ("oflags",
# "prot", "mflags", "atflags", "whence", "sig", "clock", "fdflags"...).
FORMATS: dict[str, tuple[str, ...]] = {
    "read": ("fd", "bo", "u"), "write": ("fd", "bi:2", "u"), "pread64": ("fd", "bo", "u", "d"),
    "pwrite64": ("fd", "bi:2", "u", "d"), "readv": ("fd", "p", "d"), "writev": ("fd", "p", "d"),
    "open": ("s", "oflags", "omode"), "openat": ("dirfd", "s", "oflags", "omode"), "creat": ("s", "o"),
    "openat2": ("dirfd", "s", "p", "u"), "close": ("fd",), "close_range": ("fd", "fd", "x"),
    "stat": ("s", "stat"), "lstat": ("s", "stat"), "fstat": ("fd", "stat"),
    "newfstatat": ("dirfd", "s", "stat", "atflags"), "statx": ("dirfd", "s", "atflags", "x", "p"),
    "lseek": ("fd", "d", "whence"), "mmap": ("p", "u", "prot", "mflags", "fd", "x"),
    "mprotect": ("p", "u", "prot"), "munmap": ("p", "u"), "brk": ("p",), "mremap": ("p", "u", "u", "x", "p"),
    "madvise": ("p", "u", "d"), "msync": ("p", "u", "x"),
    "rt_sigaction": ("sig", "p", "p", "u"), "rt_sigprocmask": ("sighow", "p", "p", "u"), "rt_sigreturn": (),
    "ioctl": ("fd", "x", "p"), "access": ("s", "amode"), "faccessat": ("dirfd", "s", "amode"),
    "faccessat2": ("dirfd", "s", "amode", "atflags"), "pipe": ("fds2",), "pipe2": ("fds2", "fdflags"),
    "dup": ("fd",), "dup2": ("fd", "fd"), "dup3": ("fd", "fd", "fdflags"),
    "nanosleep": ("ts_in", "p"), "clock_nanosleep": ("clock", "x", "ts_in", "p"),
    "clock_gettime": ("clock", "ts_out"), "clock_getres": ("clock", "ts_out"), "gettimeofday": ("p", "p"),
    "getpid": (), "getppid": (), "gettid": (), "getuid": (), "geteuid": (), "getgid": (), "getegid": (),
    "sched_yield": (), "pause": (), "sync": (), "setsid": (), "getpgrp": (), "vfork": (), "fork": (),
    "socket": ("d", "d", "d"), "connect": ("fd", "p", "u"), "accept": ("fd", "p", "p"),
    "accept4": ("fd", "p", "p", "x"), "bind": ("fd", "p", "u"), "listen": ("fd", "d"),
    "sendto": ("fd", "bi:2", "u", "x", "p", "u"), "recvfrom": ("fd", "bo", "u", "x", "p", "p"),
    "sendmsg": ("fd", "p", "x"), "recvmsg": ("fd", "p", "x"), "shutdown": ("fd", "d"),
    "execve": ("s", "p", "p"), "execveat": ("dirfd", "s", "p", "p", "atflags"),
    "exit": ("d",), "exit_group": ("d",), "wait4": ("d", "p", "x", "p"), "kill": ("d", "sig"),
    "tgkill": ("d", "d", "sig"), "tkill": ("d", "sig"), "uname": ("p",), "fcntl": ("fd", "fcntl", "x"),
    "getcwd": ("bo", "u"), "chdir": ("s",), "fchdir": ("fd",), "mkdir": ("s", "o"), "mkdirat": ("dirfd", "s", "o"),
    "rmdir": ("s",), "unlink": ("s",), "unlinkat": ("dirfd", "s", "atflags"), "rename": ("s", "s"),
    "renameat": ("dirfd", "s", "dirfd", "s"), "renameat2": ("dirfd", "s", "dirfd", "s", "x"),
    "readlink": ("s", "bo", "u"), "readlinkat": ("dirfd", "s", "bo", "u"), "symlink": ("s", "s"),
    "symlinkat": ("s", "dirfd", "s"), "link": ("s", "s"), "linkat": ("dirfd", "s", "dirfd", "s", "atflags"),
    "chmod": ("s", "o"), "fchmod": ("fd", "o"), "fchmodat": ("dirfd", "s", "o"), "chown": ("s", "d", "d"),
    "fchown": ("fd", "d", "d"), "umask": ("o",), "truncate": ("s", "d"), "ftruncate": ("fd", "d"),
    "fsync": ("fd",), "fdatasync": ("fd",), "statfs": ("s", "p"), "fstatfs": ("fd", "p"),
    "arch_prctl": ("x", "p"), "set_tid_address": ("p",), "set_robust_list": ("p", "u"),
    "prlimit64": ("d", "d", "p", "p"), "getrandom": ("bo", "u", "x"), "rseq": ("p", "u", "x", "x"),
    "futex": ("p", "x", "d", "p", "p", "d"), "clone": ("x", "p", "p", "p", "u"), "clone3": ("p", "u"),
    "getdents64": ("fd", "p", "u"), "poll": ("p", "u", "d"), "ppoll": ("p", "u", "p", "p", "u"),
    "select": ("d", "p", "p", "p", "p"), "epoll_wait": ("fd", "p", "d", "d"), "epoll_create1": ("x",),
    "epoll_ctl": ("fd", "d", "fd", "p"), "eventfd2": ("u", "x"), "sysinfo": ("p",), "times": ("p",),
    "getrusage": ("d", "p"), "sched_getaffinity": ("d", "u", "p"), "membarrier": ("d", "x", "d"),
    "mlock": ("p", "u"), "munlock": ("p", "u"), "sendfile": ("fd", "fd", "p", "u"), "setuid": ("d",),
    "setgid": ("d",), "sigaltstack": ("p", "p"), "prctl": ("d", "x", "x", "x", "x"),
}

# strace's -e trace= classes
CLASSES = {
    "%file": {"open", "openat", "openat2", "creat", "stat", "lstat", "newfstatat", "statx", "access", "faccessat",
              "faccessat2", "execve", "execveat", "chdir", "mkdir", "mkdirat", "rmdir", "unlink", "unlinkat", "rename",
              "renameat", "renameat2", "readlink", "readlinkat", "symlink", "symlinkat", "link", "linkat", "chmod",
              "fchmodat", "chown", "truncate", "statfs", "getcwd"},
    "%desc": {"read", "write", "pread64", "pwrite64", "readv", "writev", "open", "openat", "close", "fstat", "lseek",
              "dup", "dup2", "dup3", "pipe", "pipe2", "fcntl", "ioctl", "getdents64", "poll", "ppoll", "select",
              "epoll_wait", "epoll_ctl", "fsync", "fdatasync", "ftruncate", "fchdir", "fchmod", "fchown", "mmap"},
    "%memory": {"mmap", "munmap", "mprotect", "brk", "mremap", "madvise", "msync", "mlock", "munlock"},
    "%process": {"execve", "execveat", "exit", "exit_group", "wait4", "kill", "tgkill", "tkill", "clone", "clone3",
                 "fork", "vfork"},
    "%network": {"socket", "connect", "accept", "accept4", "bind", "listen", "sendto", "recvfrom", "sendmsg",
                 "recvmsg", "shutdown"},
    "%signal": {"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "kill", "tgkill", "tkill", "sigaltstack", "pause"},
}
_UNISTD = ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h",
           "/usr/include/asm-generic/unistd.h")


@lru_cache(maxsize=1)
def table() -> dict[str, int]:
    """Name -> number on this machine."""
    if platform.machine() in ("x86_64", "AMD64"):
        return dict(X86_64)
    for path in _UNISTD:  # another architecture: its headers, when installed
        try:
            text = Path(path).read_text()
        except OSError:
            continue
        found = {m.group(1): int(m.group(2)) for m in re.finditer(r"^#define __NR_(\w+)\s+(\d+)\s*$", text, re.M)}
        if found:
            return found
    raise BpfUsageError(f"no system call table for {platform.machine()} (bpfkit ships x86-64's; install the "
                        "kernel headers, e.g. apt-get install linux-libc-dev)")


@lru_cache(maxsize=1)
def _by_number() -> dict[int, str]:
    return {nr: n for n, nr in table().items()}


def number(syscall: str) -> int:
    """The number of ``syscall`` (BpfUsageError naming close names when unknown)."""
    t = table()
    if syscall not in t:
        import difflib

        close = difflib.get_close_matches(syscall, list(t), n=3)
        raise BpfUsageError(f"unknown system call {syscall!r}" + (f"; did you mean {' / '.join(close)}?" if close
                                                                     else ""))
    return t[syscall]


def name(nr: int) -> str:
    """The name of system call ``nr`` (``syscall_NNN`` when unknown, as strace prints it)."""
    return _by_number().get(nr, f"syscall_{nr:#x}" if nr >= 0 else f"syscall_{nr}")


@lru_cache(maxsize=None)
def arg_formats(syscall: str) -> tuple[str, ...]:
    """How to show each argument of ``syscall`` (see :data:`FORMATS`); from the tracepoint format
    file when the table has no row (pointers "p", the rest "d")."""
    if syscall in FORMATS:
        return FORMATS[syscall]
    from ...probes.discovery import tracepoint_fields
    from ...errors import BpfError

    try:
        fields = tracepoint_fields("syscalls", f"sys_enter_{TRACEPOINT_NAMES.get(syscall, syscall)}")
    except BpfError:
        return ("x",) * 6
    out = []
    for f in fields:
        if f.name == "__syscall_nr":
            continue
        t = f.type
        out.append("s" if ("char *" in t and "const" in t and f.name in ("filename", "pathname", "path", "name"))
                   else "p" if "*" in t else "u" if "unsigned" in t or "size_t" in t else "d")
    return tuple(out)


def resolve_names(spec: str) -> set[str]:
    """strace's ``-e trace=`` list: names, ``%class``es, ``!`` negation, ``all``.

    Example::

        resolve_names("open,openat,%memory")
    """
    neg = spec.startswith("!")
    body = spec[1:] if neg else spec
    wanted: set[str] = set()
    t = table()
    for part in (p.strip() for p in body.split(",")):
        if not part:
            continue
        if part == "all":
            wanted |= set(t)
        elif part.startswith("%"):
            if part not in CLASSES:
                raise BpfUsageError(f"-e trace={spec}: unknown class {part!r}; known: {', '.join(sorted(CLASSES))}")
            wanted |= CLASSES[part]
        else:
            number(part)  # raises for unknown names, with suggestions
            wanted.add(part)
    return set(t) - wanted if neg else wanted


def tracepoint_name(syscall: str) -> Optional[str]:
    """``sys_enter_`` event name of ``syscall`` (``fstat`` -> ``newfstat``)."""
    return TRACEPOINT_NAMES.get(syscall, syscall)
