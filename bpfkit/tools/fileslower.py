"""fileslower: synchronous file reads and writes slower than a threshold (10 ms by default), one
line each, as bcc's fileslower. kprobes and kretprobes on vfs_read / vfs_write (no VFS
tracepoints), so FeatureNotSupported naming kprobes on a kernel without them.

Example::

    $ sudo bpfkit fileslower 1

    from bpfkit.tools import fileslower
    with fileslower.stream(min_ms=0, pid=1234) as s:
        for batch in s:
            print(fileslower.decode(batch))
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

import numpy as np

from ._part2 import Traced, follow, require_kprobes, tool_spec
from .common import Scope, add_scope, parser, positive_float, print_json, run_tool

__all__ = ["stream", "decode", "main"]


def _text(raw: Any) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


def stream(*, min_ms: float = 10.0, pid: Optional[int] = None, tid: Optional[int] = None,
           comm: Optional[str] = None, cgroup: Optional[str] = None, all_files: bool = False,
           duration: Optional[float] = None) -> Traced:
    """Start tracing reads and writes slower than ``min_ms`` (of ``pid``/``tid``/``comm``/
    ``cgroup``; regular files only unless ``all_files``); batches of ``struct slow_event``."""
    require_kprobes("fileslower (vfs_read/vfs_write have no tracepoints)")
    spec = tool_spec("fileslower", Scope(pid=pid, tid=tid, comm=comm, cgroup=cgroup), min_ns=int(min_ms * 1e6),
                     regular_only=not all_files)
    return Traced(spec, counters=("missed",), duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per slow I/O: ``ts_ns``, ``comm``, ``pid``, ``tid``, ``dir`` ("R"/"W"),
    ``bytes`` (asked for), ``ret``, ``lat_ns``, ``file``."""
    return [{"ts_ns": int(r["ts"]), "comm": _text(r["comm"]), "pid": int(r["pid"]), "tid": int(r["tid"]),
             "dir": "W" if int(r["write"]) else "R", "bytes": int(r["size"]), "ret": int(r["ret"]),
             "lat_ns": int(r["delta_ns"]), "file": _text(r["name"])} for r in batch]


EXAMPLES = """examples:
    bpfkit fileslower             # trace sync file I/O slower than 10 ms (default)
    bpfkit fileslower 1           # trace sync file I/O slower than 1 ms
    bpfkit fileslower -p 185      # trace PID 185 only
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("fileslower", "Trace slow synchronous file reads and writes", EXAMPLES)
    p.add_argument("min_ms", nargs="?", type=float, default=10.0, help="minimum I/O duration to trace, in ms "
                   "(default 10)")
    p.add_argument("-a", "--all-files", action="store_true", help="include non-regular file types")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    add_scope(p, tid=True, comm="--comm")
    p.add_argument("--json", action="store_true", help="one JSON object per I/O")
    return p


def _body(args: argparse.Namespace) -> int:
    if args.min_ms < 0:
        raise argparse.ArgumentTypeError("min_ms must not be negative")
    s = stream(min_ms=args.min_ms, pid=args.pid, tid=args.tid, comm=args.comm, cgroup=args.cgroup,
               all_files=args.all_files)
    first: list[int] = []

    def show(batch: np.ndarray) -> None:
        for row in decode(batch):
            if args.json:
                print_json(row)
                continue
            if not first:
                first.append(row["ts_ns"])
            print("%-8.3f %-14.14s %-7d %1s %-7d %7.2f %s" % ((row["ts_ns"] - first[0]) / 1e9, row["comm"],
                                                           row["tid"], row["dir"], row["bytes"],
                                                           row["lat_ns"] / 1e6, row["file"]))

    follow("fileslower", s, show, header="%-8s %-14s %-7s %1s %-7s %7s %s" % (
        "TIME(s)", "COMM", "TID", "D", "BYTES", "LAT(ms)", "FILENAME"), json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit fileslower [min_ms] [-a] [-p PID] [-t TID] [--json]``"""
    return run_tool("fileslower", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
