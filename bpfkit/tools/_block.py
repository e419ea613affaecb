"""What the block tools (biolatency, biosnoop, biotop, bitesize) share on the Python side: disks by
name and by the kernel's device number (``c/tools/block_common.h`` keys by ``MKDEV``: major << 20
| minor), the name of a request's operation and flags as bcc prints them, and the choice of the
program that sees a request being accounted.

Example::

    dev = disk_dev("loop3")          # ToolError when there is no such disk
    disk_name(dev)                   # 'loop3'
    flags_text(1 | 1 << 11)          # 'Sync-Write'
"""
from __future__ import annotations

import errno
import os
from typing import Any

from .common import ToolError
from ._part2 import has_tracepoint

__all__ = ["mkdev", "disk_dev", "disk_name", "disks", "flags_text", "is_write", "start_program"]

# enum req_op and req_flag_bits of Linux 5.19+ (include/linux/blk_types.h), the layout bcc prints
OPS = {0: "Read", 1: "Write", 2: "Flush", 3: "Discard", 5: "SecureErase", 7: "ZoneAppend", 9: "WriteZeros",
       17: "ZoneReset"}
OP_MASK = 0xFF
FLAG_NAMES = ((11, "Sync"), (12, "Metadata"), (17, "ForcedUnitAccess"), (13, "Priority"), (14, "NoMerge"),
              (15, "Idle"), (19, "ReadAhead"), (20, "Background"), (21, "NoWait"))


def mkdev(major: int, minor: int) -> int:
    """The kernel's internal ``dev_t`` (what BPF reads from a request's disk)."""
    return (major << 20) | minor


def disks() -> dict[int, str]:
    """Every block device this machine has now: kernel dev -> name (from /proc/partitions)."""
    out: dict[int, str] = {}
    try:
        with open("/proc/partitions") as f:
            for line in f.readlines()[2:]:
                parts = line.split()
                if len(parts) == 4:
                    out[mkdev(int(parts[0]), int(parts[1]))] = parts[3]
    except OSError:
        pass
    return out


def disk_dev(name: str) -> int:
    """The kernel dev of whole disk ``name`` (``sda``, ``/dev/loop3``); ToolError if there is none."""
    base = os.path.basename(name)
    try:
        with open(f"/sys/block/{base}/dev") as f:
            major, minor = f.read().strip().split(":")
    except OSError:
        raise ToolError(f"no such disk {name!r} (the disks are in /sys/block)", errno.ENODEV) from None
    return mkdev(int(major), int(minor))


def disk_name(dev: int, known: dict[int, str] | None = None) -> str:
    """The name of kernel dev ``dev`` ('MAJ:MIN' for a disk that is gone)."""
    name = (known if known is not None else disks()).get(dev)
    return name if name is not None else f"{dev >> 20}:{dev & 0xFFFFF}"


def flags_text(flags: int) -> str:
    """A request's operation and flags as bcc's biolatency -F prints them (``Sync-Write``)."""
    desc = OPS.get(flags & OP_MASK, "Unknown")
    for bit, name in FLAG_NAMES:
        if flags & (1 << bit):
            desc = f"{name}-{desc}"
    return desc


def is_write(flags: Any) -> Any:
    """Whether requests with ``cmd_flags`` (an int or an array) write."""
    return (flags & OP_MASK) == 1


def start_program() -> str:
    """The program that sees a request accounted: ``on_io_start`` (block:block_io_start, Linux
    6.5+, where bcc's kprobe on blk_account_io_start sat) or, before, ``on_insert``."""
    return "on_io_start" if has_tracepoint("block", "block_io_start") else "on_insert"
