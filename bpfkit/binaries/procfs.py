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
from typing import Optional

from ..errors import BpfNotFoundError

__all__ = ["load_address", "mapped_files", "no_process"]


def no_process(pid: int, what: str = "", err: int = errno.ESRCH) -> BpfNotFoundError:
    """The error for a pid that does not exist (any more): the same class and wording whether
    perf_event_open said ESRCH or ``/proc/PID`` was missing.

    Example::

        raise no_process(pid, f"uprobe {path}:{symbol}")
    """
    prefix = f"{what}: " if what else ""
    return BpfNotFoundError(f"{prefix}no process {pid} (it has exited, or the pid is wrong)", err)


def mapped_files(pid: int) -> list[str]:
    """Regular files mapped executable by process ``pid``, in address order, each once.

    Example::

        [p for p in mapped_files(pid) if "libc" in p]
    """
    out: list[str] = []
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(maxsplit=5)
                if len(parts) == 6 and "x" in parts[1] and parts[5].startswith("/"):
                    path = parts[5].strip()
                    if path not in out and not path.endswith(" (deleted)"):
                        out.append(path)
    except FileNotFoundError:
        raise no_process(pid) from None
    return out


def load_address(pid: int, path: str, file_offset: int) -> Optional[int]:
    """Run-time address of ``file_offset`` of ``path`` in process ``pid`` (None when that part of
    the file is not mapped).

    Example::

        load_address(pid, "/usr/lib/libfoo.so", note.offset)
    """
    real = os.path.realpath(path)
    try:
        with open(f"/proc/{pid}/maps") as f:
            lines = f.readlines()
    except FileNotFoundError:
        raise no_process(pid) from None
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or os.path.realpath(parts[5].strip()) != real:
            continue
        start, end = (int(x, 16) for x in parts[0].split("-"))
        off = int(parts[2], 16)
        if off <= file_offset < off + (end - start):
            return start + file_offset - off
    return None
