"""What ``/proc/PID`` says about a traced process: the files it maps and where.

Shared by USDT attachment (probes in whatever a pid has loaded), discovery (``list(..., pid=)``)
and every attach path that takes a pid, so a missing process is reported the same way
everywhere (:func:`no_process`).

Example::

    from bpfkit.binaries import mapped_files, load_address

    mapped_files(1234)                          # ['/usr/bin/python3.11', '/usr/lib/.../libc.so.6', ...]
    load_address(1234, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0x28000)
"""
from __future__ import annotations

import errno
import os
import re
from typing import Optional

from ..errors import BpfNotFoundError

__all__ = ["load_address", "mapped_files", "no_process", "parse_load_address", "parse_mapped_files"]


def no_process(pid: int, what: str = "", err: int = errno.ESRCH) -> BpfNotFoundError:
    """The error for a pid that does not exist (any more): the same class and wording whether
    perf_event_open said ESRCH or ``/proc/PID`` was missing.

    Example::

        raise no_process(pid, f"uprobe {path}:{symbol}")
    """
    prefix = f"{what}: " if what else ""
    return BpfNotFoundError(f"{prefix}no process {pid} (it has exited, or the pid is wrong)", err)


def _maps_text(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/maps", errors="surrogateescape") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        raise no_process(pid) from None


def mapped_files(pid: int) -> list[str]:
    """Regular files mapped executable by process ``pid``, in address order, each once.

    Example::

        [p for p in mapped_files(pid) if "libc" in p]
    """
    return parse_mapped_files(_maps_text(pid))


def load_address(pid: int, path: str, file_offset: int) -> Optional[int]:
    """Run-time address of ``file_offset`` of ``path`` in process ``pid`` (None when that part of
    the file is not mapped).

    Example::

        load_address(pid, "/usr/lib/libfoo.so", note.offset)
    """
    return parse_load_address(_maps_text(pid), path, file_offset)


_RANGE = re.compile(r"^([0-9a-fA-F]{1,16})-([0-9a-fA-F]{1,16})$")
_HEX = re.compile(r"^[0-9a-fA-F]{1,16}$")


def _mapping(line: str) -> Optional[tuple[int, int, str, int, str]]:
    """(start, end, perms, file offset, path) of a maps line; None for a line that is not one."""
    parts = line.split(maxsplit=5)
    if len(parts) < 6 or "\0" in parts[5]:
        return None
    r, off = _RANGE.match(parts[0]), parts[2]
    if r is None or not _HEX.match(off):
        return None
    start, end = int(r.group(1), 16), int(r.group(2), 16)
    if end <= start:
        return None
    return start, end, parts[1], int(off, 16), parts[5].strip()


def parse_mapped_files(text: str) -> list[str]:
    """:func:`mapped_files` of the text of a ``/proc/PID/maps``; lines that are not mappings are skipped.

    Example::

        parse_mapped_files("400000-401000 r-xp 00000000 08:01 42 /usr/bin/prog\n")   # ['/usr/bin/prog']
    """
    out: dict[str, None] = {}
    for line in text.splitlines():
        m = _mapping(line)
        if m is not None and "x" in m[2] and m[4].startswith("/") and not m[4].endswith(" (deleted)"):
            out.setdefault(m[4])
    return list(out)


def parse_load_address(text: str, path: str, file_offset: int) -> Optional[int]:
    """:func:`load_address` in the text of a ``/proc/PID/maps``.

    Example::

        parse_load_address(maps_text, "/usr/lib/libfoo.so", 0x1a40)
    """
    real = os.path.realpath(path)
    for line in text.splitlines():
        m = _mapping(line)
        if m is None:
            continue
        start, end, _perms, off, mpath = m
        if mpath != path and mpath != real and os.path.realpath(mpath) != real:
            continue
        if off <= file_offset < off + (end - start):
            return start + file_offset - off
    return None
