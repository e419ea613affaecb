"""vfsstat: VFS calls per second — read, write, fsync, open, create — as bcc's vfsstat. The VFS
has no tracepoints: kprobes on vfs_read, vfs_write, vfs_fsync_range, vfs_open and vfs_create (so
FeatureNotSupported naming kprobes on a kernel without them). ``-p``/``--cgroup`` are ours.

Example::

    $ sudo bpfkit vfsstat 1 5

    from bpfkit.tools import vfsstat
    with vfsstat.trace(pid=1234) as t:
        ...
        print(t.read())        # {'read': 12, 'write': 3, 'fsync': 0, 'open': 2, 'create': 0}
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

from ._part2 import Traced, every, require_kprobes, tool_spec
from .common import Scope, add_scope, parser, positive_float, positive_int, print_json, run_tool, stop_flag

__all__ = ["Vfsstat", "trace", "main", "COLUMNS"]

COLUMNS = ("read", "write", "fsync", "open", "create")
WHY = "the VFS functions it counts have no tracepoints"


class Vfsstat(Traced):
    """The kernel-side counters; :meth:`read` gives them since the start (or the last clear)."""

    _base: tuple[int, ...] = (0, 0, 0, 0, 0)

    def read(self, clear: bool = False) -> dict[str, int]:
        now = tuple(int(v) for v in self.obj.bss.counts)
        out = {name: now[i] - self._base[i] for i, name in enumerate(COLUMNS)}
        if clear:
            self._base = now
        return out


def trace(*, pid: Optional[int] = None, comm: Optional[str] = None, cgroup: Optional[str] = None) -> Vfsstat:
    """Start counting VFS calls (of ``pid``/``comm``/``cgroup`` when given)."""
    require_kprobes(f"vfsstat ({WHY})")
    return Vfsstat(tool_spec("vfsstat", Scope(pid=pid, comm=comm, cgroup=cgroup)))


def build_parser() -> argparse.ArgumentParser:
    p = parser("vfsstat", "Count some VFS calls, with per-second summaries",
               "examples:\n    bpfkit vfsstat          # every second\n    bpfkit vfsstat 2 5      # 5 x 2 second summaries\n")
    p.add_argument("interval", nargs="?", default=1.0, type=positive_float, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")
    add_scope(p, comm="--comm")
    p.add_argument("--json", action="store_true", help="one JSON document per interval (counts, not rates)")
    return p


def _body(args: argparse.Namespace) -> int:
    with trace(pid=args.pid, comm=args.comm, cgroup=args.cgroup) as t, stop_flag() as stop:
        if not args.json:
            print("%-8s: %8s %8s %8s %8s %8s" % ("TIME", "READ/s", "WRITE/s", "FSYNC/s", "OPEN/s", "CREATE/s"),
                  flush=True)
        else:
            print("Tracing VFS calls... Hit Ctrl-C to end.", file=sys.stderr, flush=True)
        last = [time.monotonic()]

        def emit(final: bool) -> None:
            now = time.monotonic()
            counts = t.read(clear=True)
            span = max(now - last[0], 1e-9)
            last[0] = now
            if args.json:
                print_json({"time": time.strftime("%H:%M:%S"), "seconds": round(span, 6), **counts})
            else:
                rates = " ".join("%8d" % int(counts[c] / span) for c in COLUMNS)
                print("%-8s: %s" % (time.strftime("%H:%M:%S"), rates))

        every(args.interval, args.count, None, emit, stop)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit vfsstat [-p PID] [--comm COMM] [--cgroup PATH] [--json] [interval [count]]``"""
    return run_tool("vfsstat", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
