"""Checks for the values callers give that end up in kernel structs, one line at each public API.

ctypes cuts integers to the width of the struct field without a word: a pid of ``2**32 + 5``
becomes process 5, ``max_entries=2**32 + 5`` a 5-entry map, ``repeat=-1`` four billion test
runs; and a C string stops at its first NUL. So every such value is checked where it still
has its name, and the BpfUsageError names it, says the range and what to pass instead.

Example::

    from bpfkit import _sys as sc
    max_entries = sc.check_u32("max_entries", max_entries)
    pid = sc.check_pid(pid)             # None (any process) -> -1
    sc.check_cstr("pin path", path)     # refuses NUL bytes
"""
from __future__ import annotations

import errno
import operator
import warnings
from typing import Any, Optional, Sequence

from ..errors import BpfUsageError
from .consts import BPF_OBJ_NAME_LEN
from .cpus import possible_cpus

__all__ = [
    "U32_MAX", "U64_MAX", "PID_MAX_LIMIT", "NameTruncatedWarning", "check_int", "check_u32", "check_u64",
    "check_s32", "check_pid", "check_cpu", "check_cpus", "check_cstr", "check_obj_name",
]

U32_MAX = (1 << 32) - 1
U64_MAX = (1 << 64) - 1
# the kernel's largest possible pid (PID_MAX_LIMIT on 64-bit); kernel.pid_max is at most this
PID_MAX_LIMIT = 1 << 22


class NameTruncatedWarning(UserWarning):
    """A name was longer than the kernel keeps (BPF object names: 15 bytes) and was shortened.

    Example::

        warnings.simplefilter("error", NameTruncatedWarning)   # make long map names an error
    """


def _usage(message: str) -> BpfUsageError:
    return BpfUsageError(message, errno.EINVAL)


def check_int(name: str, value: Any, lo: int, hi: int, hint: str = "") -> int:
    """``value`` as an int within ``lo..hi``; a BpfUsageError naming ``name`` otherwise (bools,
    floats and strings are refused: ``True`` is not a count, ``1.5`` not a pid).

    Example::

        repeat = check_int("repeat", repeat, 0, U32_MAX, "0 runs the program once")
    """
    if isinstance(value, bool):
        raise _usage(f"{name}={value!r}: an integer is needed, not a bool")
    try:
        v = operator.index(value)
    except TypeError:
        raise _usage(f"{name}={value!r}: an integer is needed, not {type(value).__name__}") from None
    if not lo <= v <= hi:
        where = f"{lo}..{hi}" if hi - lo < 1 << 16 else f"{_pretty(lo)}..{_pretty(hi)}"
        raise _usage(f"{name}={v} is out of range: it must be in {where}" + (f"; {hint}" if hint else ""))
    return v


def _pretty(n: int) -> str:
    for bits in (64, 63, 32, 31, 22):
        for delta in (0, -1):
            if n == (1 << bits) + delta:
                return f"2**{bits}" + ("-1" if delta else "")
            if n == -(1 << bits):
                return f"-2**{bits}"
    return str(n)


def check_u32(name: str, value: Any, lo: int = 0, hint: str = "") -> int:
    """An unsigned 32-bit field (max_entries, flags, sizes, repeat...).

    Example::

        check_u32("max_entries", 2**32 + 5)   # BpfUsageError: max_entries=4294967301 is out of range ...
    """
    return check_int(name, value, lo, U32_MAX, hint)


def check_u64(name: str, value: Any, lo: int = 0, hint: str = "") -> int:
    """An unsigned 64-bit field (cookies, offsets, periods...).

    Example::

        check_u64("cookie", -1)   # BpfUsageError: cookie=-1 is out of range ...
    """
    return check_int(name, value, lo, U64_MAX, hint)


def check_s32(name: str, value: Any, lo: int = -(1 << 31), hint: str = "") -> int:
    """A signed 32-bit field (an fd, an ifindex).

    Example::

        check_s32("ifindex", ifindex, lo=1)
    """
    return check_int(name, value, lo, (1 << 31) - 1, hint)


def check_pid(value: Optional[int], name: str = "pid") -> int:
    """A process id, or None (and the legacy -1) for every process; returns what the kernel takes
    (-1 for any). 0 is refused: the kernel reads it as "the calling process", which is what a
    truncated pid used to become.

    Example::

        pid = check_pid(pid)   # None -> -1; 2**40 -> BpfUsageError naming pid
    """
    if value is None:
        return -1
    if not isinstance(value, bool):
        try:
            if operator.index(value) == -1:
                return -1
        except TypeError:
            pass
    return check_int(name, value, 1, PID_MAX_LIMIT,
                     "pass a process id (os.getpid() for this one), or None for every process")


def check_cpu(value: Any, name: str = "cpu") -> int:
    """A CPU number below the number of possible CPUs.

    Example::

        cpu = check_cpu(cpu)   # 0..possible_cpus()-1
    """
    return check_int(name, value, 0, possible_cpus() - 1, "CPUs are numbered from 0 (bpfkit._sys.online_cpus())")


def check_cpus(values: Optional[Sequence[Any]], name: str = "cpus") -> Optional[list[int]]:
    """A non-empty list of CPU numbers, or None (every online CPU).

    Example::

        cpus = check_cpus(cpus)   # [] -> BpfUsageError: cpus=[] would attach to nothing
    """
    if values is None:
        return None
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise _usage(f"{name}={values!r}: a list of CPU numbers is needed, or None for every online CPU")
    out = [check_cpu(v, f"{name}[{i}]") for i, v in enumerate(values)]
    if not out:
        raise _usage(f"{name}=[] would attach to nothing: give CPU numbers, or None for every online CPU")
    if len(set(out)) != len(out):
        raise _usage(f"{name}={out}: a CPU is listed twice")
    return out


def check_cstr(name: str, value: str) -> str:
    """A string that becomes a C string: a NUL byte inside would end it there, silently.

    Example::

        check_cstr("pin path", "/sys/fs/bpf/a\\0b")   # BpfUsageError naming the NUL at index 13
    """
    if not isinstance(value, str):
        raise _usage(f"{name} {value!r}: a str is needed, not {type(value).__name__}")
    nul = value.find("\0")
    if nul >= 0:
        raise _usage(f"{name} {value!r} has a NUL byte at index {nul}: the kernel would stop reading there")
    return value


def check_obj_name(kind: str, value: str, strict: bool = False, stacklevel: int = 3) -> bytes:
    """A BPF object name (map, program) as the kernel's 16-byte field takes it: at most 15 bytes of
    letters, digits, ``_`` and ``.`` (anything else is a bare EINVAL from the kernel). A longer name is shortened with a :class:`NameTruncatedWarning` naming the limit
    (``strict``: refused).

    Example::

        check_obj_name("map", "a_rather_long_map_name")   # b'a_rather_long_m' and a warning
    """
    check_cstr(f"{kind} name", value)
    bad = sorted({c for c in value if not (c.isascii() and (c.isalnum() or c in "_."))})
    if bad:
        raise _usage(f"{kind} name {value!r}: the kernel takes only letters, digits, '_' and '.' in names, "
                     f"not {', '.join(map(repr, bad))}")
    raw = value.encode()
    limit = BPF_OBJ_NAME_LEN - 1
    if len(raw) > limit:
        msg = (f"{kind} name {value!r} is {len(raw)} bytes; the kernel keeps {limit} "
               f"(BPF_OBJ_NAME_LEN - 1): it is {raw[:limit].decode(errors='replace')!r} in bpftool and the kernel")
        if strict:
            raise _usage(msg)
        warnings.warn(NameTruncatedWarning(msg), stacklevel=stacklevel)
        raw = raw[:limit]
    return raw
