"""mountsnoop: mount() and umount() system-wide — process, mount namespace, the call with its
arguments and its result — as bcc's mountsnoop, from the syscall tracepoints.

Example::

    $ sudo bpfkit mountsnoop
    COMM             PID     TID     MNT_NS      CALL
    mount            1234    1234    4026531841  mount("tmpfs", "/mnt", "tmpfs", MS_NOSUID|MS_NODEV, "size=1m") = 0

    from bpfkit.tools import mountsnoop
    with mountsnoop.stream() as s:
        for batch in s:
            for row in mountsnoop.decode(batch):
                print(row["call"])
"""
from __future__ import annotations

import argparse
import errno
import sys
from typing import Any, Optional, Sequence

import numpy as np

from ._part2 import Traced, follow, tool_spec
from .common import Scope, add_scope, parser, positive_float, print_json, run_tool

__all__ = ["stream", "decode", "mount_flags", "umount_flags", "main"]

MS_FLAGS = ((1, "MS_RDONLY"), (2, "MS_NOSUID"), (4, "MS_NODEV"), (8, "MS_NOEXEC"), (16, "MS_SYNCHRONOUS"),
            (32, "MS_REMOUNT"), (64, "MS_MANDLOCK"), (128, "MS_DIRSYNC"), (256, "MS_NOSYMFOLLOW"),
            (1024, "MS_NOATIME"), (2048, "MS_NODIRATIME"), (4096, "MS_BIND"), (8192, "MS_MOVE"),
            (16384, "MS_REC"), (32768, "MS_SILENT"), (1 << 16, "MS_POSIXACL"), (1 << 17, "MS_UNBINDABLE"),
            (1 << 18, "MS_PRIVATE"), (1 << 19, "MS_SLAVE"), (1 << 20, "MS_SHARED"), (1 << 21, "MS_RELATIME"),
            (1 << 22, "MS_KERNMOUNT"), (1 << 23, "MS_I_VERSION"), (1 << 24, "MS_STRICTATIME"),
            (1 << 25, "MS_LAZYTIME"))
MS_MGC_MSK, MS_MGC_VAL = 0xFFFF0000, 0xC0ED0000
UMOUNT_FLAGS = ((1, "MNT_FORCE"), (2, "MNT_DETACH"), (4, "MNT_EXPIRE"), (8, "UMOUNT_NOFOLLOW"))


def _flags(value: int, table: tuple[tuple[int, str], ...]) -> str:
    names = [name for bit, name in table if value & bit]
    rest = value & ~sum(bit for bit, _ in table)
    if rest:
        names.append(hex(rest))
    return "|".join(names) or "0"


def mount_flags(value: int) -> str:
    """mount(2) flags as bcc prints them (``MS_NOSUID|MS_NODEV``; the old magic number kept as
    ``MS_MGC_VAL``)."""
    if value & MS_MGC_MSK == MS_MGC_VAL:
        rest = _flags(value & ~MS_MGC_MSK, MS_FLAGS)
        return "MS_MGC_VAL" + ("" if rest == "0" else "|" + rest)
    return _flags(value, MS_FLAGS)


def umount_flags(value: int) -> str:
    """umount2(2) flags (``MNT_DETACH``...)."""
    return _flags(value, UMOUNT_FLAGS)


def _text(raw: Any) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


def _result(ret: int) -> str:
    return str(ret) if ret >= 0 else "-" + errno.errorcode.get(-ret, str(-ret))


def stream(*, pid: Optional[int] = None, comm: Optional[str] = None, cgroup: Optional[str] = None,
           duration: Optional[float] = None) -> Traced:
    """Start tracing mount() and umount() (of ``pid``/``comm``/``cgroup`` when given); batches
    of ``struct mount_event`` (``op`` 0 mount / 1 umount, ``source``, ``target``, ``fstype``,
    ``flags``, ``data``, ``ret``, ``pid``, ``tid``, ``mnt_ns``, ``comm``)."""
    return Traced(tool_spec("mountsnoop", Scope(pid=pid, comm=comm, cgroup=cgroup)), counters=("missed",),
                  duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per call: ``ts_ns``, ``comm``, ``pid``, ``tid``, ``mnt_ns``, ``op`` ("mount" or
    "umount"), ``source``, ``target``, ``fstype``, ``flags``, ``data``, ``ret`` and ``call`` (the
    call as bcc prints it)."""
    rows = []
    for r in batch:
        mount = int(r["op"]) == 0
        flags = int(r["flags"])
        ret = int(r["ret"])
        row: dict[str, Any] = {"ts_ns": int(r["ts"]), "comm": _text(r["comm"]), "pid": int(r["pid"]), "tid": int(r["tid"]),
               "mnt_ns": int(r["mnt_ns"]), "op": "mount" if mount else "umount", "source": _text(r["source"]),
               "target": _text(r["target"]), "fstype": _text(r["fstype"]), "flags": flags,
               "data": _text(r["data"]), "ret": ret}
        if mount:
            call = 'mount("%s", "%s", "%s", %s, "%s")' % (row["source"], row["target"], row["fstype"],
                                                         mount_flags(flags), row["data"])
        else:
            call = 'umount("%s", %s)' % (row["target"], umount_flags(flags))
        row["call"] = f"{call} = {_result(ret)}"
        rows.append(row)
    return rows


def build_parser() -> argparse.ArgumentParser:
    p = parser("mountsnoop", "Trace mount() and umount() syscalls",
               "examples:\n    bpfkit mountsnoop          # trace mount() and umount() system-wide\n")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    add_scope(p, comm="--comm")
    p.add_argument("--json", action="store_true", help="one JSON object per call")
    return p


def _body(args: argparse.Namespace) -> int:
    s = stream(pid=args.pid, comm=args.comm, cgroup=args.cgroup)

    def show(batch: np.ndarray) -> None:
        for row in decode(batch):
            if args.json:
                print_json(row)
            else:
                print("%-16s %-7d %-7d %-11d %s" % (row["comm"], row["pid"], row["tid"], row["mnt_ns"], row["call"]))

    follow("mountsnoop", s, show, header="%-16s %-7s %-7s %-11s %s" % ("COMM", "PID", "TID", "MNT_NS", "CALL"),
           json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit mountsnoop [-p PID] [--comm COMM] [--cgroup PATH] [--duration S] [--json]``"""
    return run_tool("mountsnoop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
