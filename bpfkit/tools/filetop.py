"""filetop: file reads and writes by process and file — count and KB — as a top table every
interval, as bcc's filetop. kprobes on vfs_read / vfs_write (no VFS tracepoints), so
FeatureNotSupported naming kprobes on a kernel without them.

Example::

    $ sudo bpfkit filetop -C 5

    from bpfkit.tools import filetop
    with filetop.trace(pid=1234, all_files=True) as t:
        ...
        for row in t.read(clear=True):
            print(row["file"], row["reads"], row["rbytes"])
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence

from ._part2 import Traced, every, require_kprobes, tool_spec
from .common import Scope, add_scope, parser, positive_float, positive_int, print_json, run_tool, stop_flag

__all__ = ["Filetop", "trace", "main"]

SORTS = ("all", "reads", "writes", "rbytes", "wbytes")


def _text(raw: Any) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


class Filetop(Traced):
    """filetop's kernel-side table; :meth:`read` returns it."""

    def read(self, clear: bool = False, sort: str = "all") -> list[dict[str, Any]]:
        """One dict per (thread, file): ``pid``, ``tid``, ``comm``, ``file``, ``type`` (R
        regular, S socket, O other), ``ino``, ``reads``, ``writes``, ``rbytes``, ``wbytes``;
        sorted by ``sort`` (bcc's -s), largest first."""
        m = self.obj.maps["files"]
        keys, vals = m.pop_all() if clear else m.to_numpy()
        rows: list[dict[str, Any]] = [{"pid": int(k["pid"]), "tid": int(k["tid"]), "comm": _text(k["comm"]), "file": _text(k["name"]),
                 "type": chr(int(k["type"])) if int(k["type"]) > 0 else "O", "ino": int(k["ino"]), "reads": int(v["reads"]),
                 "writes": int(v["writes"]), "rbytes": int(v["rbytes"]), "wbytes": int(v["wbytes"])}
                for k, v in zip(keys, vals)]
        if sort == "all":
            rows.sort(key=lambda r: -(r["rbytes"] + r["wbytes"] + r["reads"] + r["writes"]))
        else:
            rows.sort(key=lambda r: -r[sort])
        return rows


def trace(*, pid: Optional[int] = None, comm: Optional[str] = None, cgroup: Optional[str] = None,
          all_files: bool = False) -> Filetop:
    """Start counting reads and writes (of ``pid``/``comm``/``cgroup``; regular files only
    unless ``all_files``)."""
    require_kprobes("filetop (vfs_read/vfs_write have no tracepoints)")
    spec = tool_spec("filetop", Scope(pid=pid, comm=comm, cgroup=cgroup), regular_only=not all_files)
    return Filetop(spec, counters=("missed",))


EXAMPLES = """examples:
    bpfkit filetop            # file I/O top, 1 second refresh
    bpfkit filetop -C         # don't clear the screen
    bpfkit filetop -p 181     # PID 181 only
    bpfkit filetop 5          # 5 second summaries
    bpfkit filetop 5 10       # 5 second summaries, 10 times only
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("filetop", "File reads and writes by process", EXAMPLES)
    p.add_argument("-a", "--all-files", action="store_true", help="include non-regular file types (sockets, FIFOs, etc)")
    p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
    p.add_argument("-r", "--maxrows", type=positive_int, default=20, help="maximum rows to print, default 20")
    p.add_argument("-s", "--sort", choices=SORTS, default="all", help="sort column, default all")
    p.add_argument("interval", nargs="?", default=1.0, type=positive_float, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")
    add_scope(p, comm="--comm")
    p.add_argument("--json", action="store_true", help="one JSON document per interval")
    return p


def _body(args: argparse.Namespace) -> int:
    with trace(pid=args.pid, comm=args.comm, cgroup=args.cgroup, all_files=args.all_files) as t, \
            stop_flag() as stop:
        print("Tracing... Output every %s secs. Hit Ctrl-C to end" % args.interval,
              file=sys.stderr if args.json else sys.stdout, flush=True)

        def emit(last: bool) -> None:
            rows = t.read(clear=True, sort=args.sort)[:args.maxrows]
            if args.json:
                print_json({"time": time.strftime("%H:%M:%S"), "files": rows, "lost": t.lost})
                return
            if not args.noclear:
                sys.stdout.write("\033[2J\033[H")
            with open("/proc/loadavg") as f:
                print("%-8s loadavg: %s\n" % (time.strftime("%H:%M:%S"), f.read().strip()))
            print("%-7s %-16s %-6s %-6s %-7s %-7s %1s %s" % ("TID", "COMM", "READS", "WRITES", "R_Kb", "W_Kb",
                                                               "T", "FILE"))
            for r in rows:
                print("%-7d %-16.16s %-6d %-6d %-7d %-7d %1s %s" % (
                    r["tid"], r["comm"], r["reads"], r["writes"], r["rbytes"] // 1024, r["wbytes"] // 1024,
                    r["type"], r["file"]))

        every(args.interval, args.count, None, emit, stop)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit filetop [-a] [-C] [-r N] [-s SORT] [-p PID] [--json] [interval [count]]``"""
    return run_tool("filetop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
