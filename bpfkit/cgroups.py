"""cgroup v2 as the BPF side sees it: where the hierarchy is mounted, and the id of a cgroup
(``bpf_get_current_cgroup_id()`` is the inode number of the cgroup's directory) both ways.

Example::

    cgroup2_mount()                       # '/sys/fs/cgroup', or '/sys/fs/cgroup/unified' on hybrid systems
    cgroup_id("system.slice/ssh.service") # relative paths are taken below the mount
"""
from __future__ import annotations

import errno as _errno
import os
import re
from pathlib import Path
from typing import Optional

from .errors import BpfNotFoundError, BpfUsageError

__all__ = ["cgroup2_mount", "cgroup_id", "cgroup_paths"]


def _unescape_mount(path: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> Optional[str]:
    """Where the cgroup v2 hierarchy is mounted (``/sys/fs/cgroup``, or ``/sys/fs/cgroup/unified``
    on hybrid systems), or None when none is.

    Example::

        cgroup2_mount()   # '/sys/fs/cgroup'
    """
    try:
        lines = Path(mountinfo).read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        left, sep, right = line.partition(" - ")
        if sep and right.split(" ", 1)[0] == "cgroup2":
            fields = left.split(" ")
            if len(fields) >= 5:
                return _unescape_mount(fields[4])
    return None


def cgroup_id(path: str) -> int:
    """The id the BPF side sees for cgroup v2 directory ``path`` (its inode number). A relative path
    is taken below the cgroup2 mount. BpfNotFoundError / BpfUsageError say what is wrong.

    Example::

        cgroup_id("/sys/fs/cgroup/system.slice")   # e.g. 1789
    """
    if not os.path.isabs(path):
        mount = cgroup2_mount()
        if mount is None:
            raise BpfNotFoundError("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)",
                                   _errno.ENOENT)
        full = os.path.join(mount, path)
    else:
        full = path
    try:
        st = os.stat(full)
    except FileNotFoundError:
        raise BpfNotFoundError(f"cgroup {path}: no such cgroup (looked at {full})", _errno.ENOENT) from None
    if not os.path.isfile(os.path.join(full, "cgroup.procs")):
        raise BpfUsageError(f"cgroup {path}: {full} is not a cgroup v2 directory (no cgroup.procs)", _errno.EINVAL)
    return st.st_ino


def cgroup_paths(root: Optional[str] = None) -> dict[int, str]:
    """Every cgroup below ``root`` (default: the cgroup2 mount) by id, as paths from the root
    (``/`` for the root itself): for naming the ids BPF programs record.

    Example::

        cgroup_paths()[cgroup_id("system.slice")]   # '/system.slice'
    """
    base = root or cgroup2_mount()
    if base is None:
        raise BpfNotFoundError("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)",
                               _errno.ENOENT)
    index: dict[int, str] = {}
    for dirpath, _dirs, _files in os.walk(base):
        try:
            ino = os.stat(dirpath).st_ino
        except OSError:  # removed while walking
            continue
        rel = os.path.relpath(dirpath, base)
        index[ino] = "/" if rel == "." else "/" + rel
    return index
