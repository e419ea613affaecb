"""strace's look: arguments as strace prints them (quoted strings and buffers, flag names, structs),
return values with errno names, and the BPF-side fetch plan (which argument to read, how much,
when) for every system call.

Example::

    quote(b"hello\\n", truncated=False)        # '"hello\\\\n"'
    flags(os.O_RDONLY | os.O_CLOEXEC, OPEN_FLAGS, access=True)   # 'O_RDONLY|O_CLOEXEC'
    format_return("openat", -2)                # '-1 ENOENT (No such file or directory)'
"""
from __future__ import annotations

import errno as _errno
import mmap as _mmap
import os
import signal as _signal
import struct
from typing import Optional, Sequence

import numpy as np

from .syscalls import arg_formats, table

__all__ = ["ST_STR", "ST_BUF_IN", "ST_BUF_OUT", "ST_STRUCT", "ST_STRUCT_IN", "PLAN_DTYPE", "plans",
           "quote", "flags", "format_arg", "format_return", "OPEN_FLAGS", "Event", "EVENT_HEADER", "parse_event",
           "EV_NO_RETURN", "EV_EXIT", "EV_ENTER", "EV_FORK"]

ST_STR, ST_BUF_IN, ST_BUF_OUT, ST_STRUCT, ST_STRUCT_IN = 1, 2, 3, 4, 5
EV_NO_RETURN, EV_EXIT, EV_ENTER, EV_FORK = 1, 2, 4, 8
FETCHES = 3
STAT_SIZE = 144   # struct stat on x86-64
TIMESPEC_SIZE = 16
_FETCH = np.dtype([("kind", "u1"), ("arg", "u1"), ("len_arg", "u1"), ("pad", "u1"), ("size", "<u4")])
PLAN_DTYPE = np.dtype([("f", _FETCH, (FETCHES,)), ("at_enter", "<u4"), ("pad", "<u4")])
AT_ENTER = {"execve", "execveat"}
MAX_NR = 1024


def plans(strsize: int = 32) -> np.ndarray:
    """The ``plans`` map of strace.bpf.c: one row per syscall number."""
    out = np.zeros(MAX_NR, PLAN_DTYPE)
    for name, nr in table().items():
        if not 0 <= nr < MAX_NR:
            continue
        k = 0
        row = out[nr]
        for i, fmt in enumerate(arg_formats(name)):
            kind, size, len_arg = 0, 0, 0xFF
            if fmt == "s":
                kind = ST_STR
            elif fmt.startswith("bi:"):
                kind, len_arg = ST_BUF_IN, int(fmt[3:])
            elif fmt == "bo":
                kind = ST_BUF_OUT
            elif fmt == "stat":
                kind, size = ST_STRUCT, STAT_SIZE
            elif fmt == "ts_out":
                kind, size = ST_STRUCT, TIMESPEC_SIZE
            elif fmt == "fds2":
                kind, size = ST_STRUCT, 8
            elif fmt == "ts_in":
                kind, size = ST_STRUCT_IN, TIMESPEC_SIZE
            if not kind or k >= FETCHES:
                continue
            row["f"][k] = (kind, i, len_arg, 0, size)
            k += 1
        row["at_enter"] = int(name in AT_ENTER)
    return out


# -- values ------------------------------------------------------------------------------------

_ESC = {ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r", ord("\v"): "\\v", ord("\f"): "\\f",
        ord('"'): '\\"', ord("\\"): "\\\\"}


def quote(data: bytes, truncated: bool = False) -> str:
    """A string or buffer as strace prints it: printable ASCII as is, C escapes, octal for the rest
    (three digits when a digit follows), ``...`` after it when it was cut."""
    out = ['"']
    n = len(data)
    for i, c in enumerate(data):
        if c in _ESC:
            out.append(_ESC[c])
        elif 32 <= c < 127:
            out.append(chr(c))
        else:
            nxt = data[i + 1] if i + 1 < n else None
            out.append(f"\\{c:03o}" if nxt is not None and 48 <= nxt <= 57 else f"\\{c:o}")
    out.append('"')
    if truncated:
        out.append("...")
    return "".join(out)


def _o(name: str, default: int = 0) -> int:
    return int(getattr(os, name, default))


OPEN_FLAGS = [(_o("O_CREAT"), "O_CREAT"), (_o("O_EXCL"), "O_EXCL"), (_o("O_NOCTTY"), "O_NOCTTY"),
              (_o("O_TRUNC"), "O_TRUNC"), (_o("O_APPEND"), "O_APPEND"), (_o("O_NONBLOCK"), "O_NONBLOCK"),
              (_o("O_SYNC"), "O_SYNC"), (_o("O_DSYNC"), "O_DSYNC"), (_o("O_ASYNC", 0o20000), "O_ASYNC"),
              (_o("O_DIRECT"), "O_DIRECT"), (_o("O_LARGEFILE", 0o100000), "O_LARGEFILE"),
              (_o("O_DIRECTORY"), "O_DIRECTORY"), (_o("O_NOFOLLOW"), "O_NOFOLLOW"), (_o("O_NOATIME"), "O_NOATIME"),
              (_o("O_CLOEXEC"), "O_CLOEXEC"), (_o("O_PATH"), "O_PATH"), (_o("O_TMPFILE"), "O_TMPFILE")]
PROT = [(_mmap.PROT_READ, "PROT_READ"), (_mmap.PROT_WRITE, "PROT_WRITE"), (_mmap.PROT_EXEC, "PROT_EXEC"),
        (0x1000000, "PROT_GROWSDOWN"), (0x2000000, "PROT_GROWSUP")]
MAP_FLAGS = [(0x10, "MAP_FIXED"), (0x20, "MAP_ANONYMOUS"), (0x100, "MAP_GROWSDOWN"), (0x800, "MAP_DENYWRITE"),
             (0x1000, "MAP_EXECUTABLE"), (0x2000, "MAP_LOCKED"), (0x4000, "MAP_NORESERVE"), (0x8000, "MAP_POPULATE"),
             (0x10000, "MAP_NONBLOCK"), (0x20000, "MAP_STACK"), (0x40000, "MAP_HUGETLB"), (0x80000, "MAP_SYNC"),
             (0x100000, "MAP_FIXED_NOREPLACE"), (0x40, "MAP_32BIT")]
MAP_TYPES = {1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}
AT_FLAGS = [(0x100, "AT_SYMLINK_NOFOLLOW"), (0x200, "AT_REMOVEDIR"), (0x400, "AT_SYMLINK_FOLLOW"),
            (0x800, "AT_NO_AUTOMOUNT"), (0x1000, "AT_EMPTY_PATH"), (0x6000, "AT_STATX_DONT_SYNC")]
WHENCE = {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"}
SIGHOW = {0: "SIG_BLOCK", 1: "SIG_UNBLOCK", 2: "SIG_SETMASK"}
CLOCKS = {0: "CLOCK_REALTIME", 1: "CLOCK_MONOTONIC", 2: "CLOCK_PROCESS_CPUTIME_ID", 3: "CLOCK_THREAD_CPUTIME_ID",
          4: "CLOCK_MONOTONIC_RAW", 5: "CLOCK_REALTIME_COARSE", 6: "CLOCK_MONOTONIC_COARSE", 7: "CLOCK_BOOTTIME",
          8: "CLOCK_REALTIME_ALARM", 9: "CLOCK_BOOTTIME_ALARM", 11: "CLOCK_TAI"}
FCNTL = {0: "F_DUPFD", 1: "F_GETFD", 2: "F_SETFD", 3: "F_GETFL", 4: "F_SETFL", 5: "F_GETLK", 6: "F_SETLK",
         7: "F_SETLKW", 8: "F_SETOWN", 9: "F_GETOWN", 1030: "F_DUPFD_CLOEXEC", 1031: "F_SETPIPE_SZ",
         1032: "F_GETPIPE_SZ", 1033: "F_ADD_SEALS", 1034: "F_GET_SEALS"}
S_IFMT = {0o140000: "S_IFSOCK", 0o120000: "S_IFLNK", 0o100000: "S_IFREG", 0o60000: "S_IFBLK", 0o40000: "S_IFDIR",
          0o20000: "S_IFCHR", 0o10000: "S_IFIFO"}
_SIGNAMES = {int(s): s.name for s in _signal.Signals if s.name.startswith("SIG") and not s.name.startswith("SIG_")}


def flags(value: int, table_: Sequence[tuple[int, str]], *, access: bool = False) -> str:
    """``value`` as ``A|B|0x..`` over a flag table (``access``: open()'s access mode first)."""
    parts = []
    if access:
        acc = value & 3
        parts.append({0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR"}.get(acc, str(acc)))
        value &= ~3
    for bit, nm in table_:
        if bit and value & bit == bit:
            parts.append(nm)
            value &= ~bit
    if value:
        parts.append(f"{value:#x}")
    return "|".join(parts) if parts else "0"


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _s64(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


def _stat(blob: bytes) -> str:
    if len(blob) < STAT_SIZE:
        return "{...}"
    mode = struct.unpack_from("<I", blob, 24)[0]
    size = struct.unpack_from("<q", blob, 48)[0]
    rdev = struct.unpack_from("<Q", blob, 40)[0]
    kind = S_IFMT.get(mode & 0o170000, f"{mode & 0o170000:#o}")
    text = f"{{st_mode={kind}|{mode & 0o7777:04o}, "
    if mode & 0o170000 in (0o20000, 0o60000):
        major = ((rdev >> 8) & 0xFFF) | ((rdev >> 32) & ~0xFFF)
        minor = (rdev & 0xFF) | ((rdev >> 12) & ~0xFF)
        text += f"st_rdev=makedev({major:#x}, {minor:#x}), ...}}"
    else:
        text += f"st_size={size}, ...}}"
    return text


def format_arg(fmt: str, value: int, blob: Optional[tuple[int, bytes]], strsize: int, ret: int,
               failed: bool, length: Optional[int] = None) -> str:
    """One argument: ``fmt`` from the table, the raw register ``value`` and the fetched ``blob``
    ((length or -errno, bytes)) when the plan read one; ``length`` is the size the call was given
    for a buffer it reads ("bi:N": argument N), so a cut buffer ends in ``...``."""
    if fmt in ("s", "bi", "bo") or fmt.startswith("bi:"):
        if value == 0:
            return "NULL"
        if blob is None or blob[0] < 0:
            return f"{value:#x}"
        n, data = blob
        if fmt == "s":
            data = data.split(b"\0", 1)[0]
            return quote(data)
        full = ret if fmt == "bo" else length
        shown = data[:strsize]
        more = len(data) > strsize or (full is not None and full > len(shown))
        return quote(shown, truncated=more)
    if fmt == "stat":
        if failed or blob is None or blob[0] < 0:
            return f"{value:#x}"
        return _stat(blob[1])
    if fmt in ("ts_in", "ts_out"):
        if value == 0:
            return "NULL"
        if blob is None or blob[0] < 0 or len(blob[1]) < TIMESPEC_SIZE or (fmt == "ts_out" and failed):
            return f"{value:#x}"
        sec, nsec = struct.unpack_from("<qq", blob[1])
        return f"{{tv_sec={sec}, tv_nsec={nsec}}}"
    if fmt == "fds2":
        if failed or blob is None or blob[0] < 0 or len(blob[1]) < 8:
            return f"{value:#x}"
        a, b = struct.unpack_from("<ii", blob[1])
        return f"[{a}, {b}]"
    if fmt == "fd" or fmt == "d":
        return str(_s32(value))
    if fmt == "dirfd":
        v = _s32(value)
        return "AT_FDCWD" if v == -100 else str(v)
    if fmt == "u":
        return str(value & 0xFFFFFFFFFFFFFFFF)
    if fmt == "x":
        return f"{value:#x}" if value else "0"
    if fmt == "o":
        return f"0{value & 0o7777777:o}" if value else "000"
    if fmt == "p":
        return "NULL" if value == 0 else f"{value:#x}"
    if fmt == "oflags":
        return flags(value & 0xFFFFFFFF, OPEN_FLAGS, access=True)
    if fmt == "fdflags":  # pipe2, dup3: O_CLOEXEC and friends, no access mode
        return flags(value & 0xFFFFFFFF, OPEN_FLAGS)
    if fmt == "prot":
        return flags(value, PROT) if value else "PROT_NONE"
    if fmt == "mflags":
        kind = MAP_TYPES.get(value & 0xF, f"{value & 0xF:#x}")
        rest = flags(value & ~0xF, MAP_FLAGS)
        return kind if rest == "0" else f"{kind}|{rest}"
    if fmt == "atflags":
        return flags(value & 0xFFFFFFFF, AT_FLAGS)
    if fmt == "amode":
        if value == 0:
            return "F_OK"
        return flags(value, [(4, "R_OK"), (2, "W_OK"), (1, "X_OK")])
    if fmt == "whence":
        return WHENCE.get(value, str(value))
    if fmt == "sig":
        v = _s32(value)
        return _SIGNAMES.get(v, str(v))
    if fmt == "sighow":
        return SIGHOW.get(value, str(value))
    if fmt == "clock":
        return CLOCKS.get(value, str(_s32(value)))
    if fmt == "fcntl":
        return FCNTL.get(value, str(value))
    return str(_s64(value))


_HEX_RETURN = {"mmap", "brk", "mremap", "shmat"}


def format_return(syscall: str, ret: int) -> str:
    """What follows ``=``: the value (hex for addresses), or ``-1 ENAME (message)``."""
    r = _s64(ret)
    if -4095 <= r < 0:
        err = -r
        name = _errno.errorcode.get(err, f"errno {err}")
        if err == 512:
            name, msg = "ERESTARTSYS", "To be restarted if SA_RESTART is set"
        elif err == 514:
            name, msg = "ERESTARTNOHAND", "To be restarted if no handler"
        elif err == 516:
            name, msg = "ERESTART_RESTARTBLOCK", "Interrupted by signal"
        else:
            msg = os.strerror(err)
        return f"-1 {name} ({msg})"
    if syscall in _HEX_RETURN:
        return f"{r & 0xFFFFFFFFFFFFFFFF:#x}"
    return str(r)


# -- records -------------------------------------------------------------------------------------

EVENT_HEADER = struct.Struct("<QQIIqq6QII")


class Event:
    """One record of strace.bpf.c: when, who, which call, its arguments and return value, and the
    blobs the plan fetched (in plan order)."""

    __slots__ = ("ts", "duration", "pid", "tid", "nr", "ret", "args", "flags", "blobs")

    def __init__(self, ts: int, duration: int, pid: int, tid: int, nr: int, ret: int, args: tuple[int, ...],
                 flags: int, blobs: list[tuple[int, bytes]]) -> None:
        self.ts, self.duration, self.pid, self.tid, self.nr, self.ret = ts, duration, pid, tid, nr, ret
        self.args, self.flags, self.blobs = args, flags, blobs


def parse_event(rec: bytes) -> Event:
    """Decode one record."""
    ts, dur, pid, tid, nr, ret, a0, a1, a2, a3, a4, a5, fl, size = EVENT_HEADER.unpack_from(rec)
    off = EVENT_HEADER.size
    end = min(size, len(rec))
    blobs = []
    while off + 8 <= end:
        n, _kind = struct.unpack_from("<iI", rec, off)
        got = max(n, 0)
        blobs.append((n, bytes(rec[off + 8: off + 8 + got])))
        off += 8 + ((got + 7) & ~7)
    return Event(ts, dur, pid, tid, nr, ret, (a0, a1, a2, a3, a4, a5), fl, blobs)
