"""biotop: block device I/O by process, disk and direction — I/Os, KiB and average latency —
printed as a top table every interval, as bcc's biotop. Summed in the kernel from the block
tracepoints (no kprobes); the process is the one that submitted the I/O.

Example::

    $ sudo bpfkit biotop -C 5               # every 5 seconds, without clearing the screen
    $ sudo bpfkit biotop -p 1234 --json 1 3

    from bpfkit.tools import biotop
    with biotop.trace() as t:
        time.sleep(1)
        for row in t.read(): print(row.comm, row.disk, row.io, row.bytes)
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

from ._block import disk_dev, disk_name, disks, start_program
from ._part2 import Traced, every, tool_spec
from .common import Scope, add_scope, parser, positive_float, positive_int, print_json, run_tool, stop_flag

__all__ = ["Row", "Biotop", "trace", "format_table", "main"]


@dataclass
class Row:
    """One process/disk/direction: ``io`` requests, ``bytes``, total latency ``ns``."""

    pid: int
    comm: str
    write: bool
    major: int
    minor: int
    disk: str
    io: int
    bytes: int
    ns: int

    @property
    def avg_ms(self) -> float:
        return self.ns / 1e6 / self.io if self.io else 0.0


class Biotop(Traced):
    """biotop in progress: :meth:`read` the rows (busiest first; ``clear`` starts a new interval)."""

    def read(self, clear: bool = True) -> list[Row]:
        keys, vals = self.obj.maps.counts.pop_all() if clear else self.obj.maps.counts.to_numpy()
        known = disks()
        rows = [Row(int(k["pid"]), bytes(k["comm"]).split(b"\0", 1)[0].decode(errors="replace"), bool(k["write"]),
                    int(k["dev"]) >> 20, int(k["dev"]) & 0xFFFFF, disk_name(int(k["dev"]), known), int(v["io"]),
                    int(v["bytes"]), int(v["ns"])) for k, v in zip(keys, vals)]
        rows.sort(key=lambda r: (-r.bytes, r.pid, r.disk, r.write))
        return rows


def trace(*, disk: Optional[str] = None, pid: Optional[int] = None, comm: Optional[str] = None,
          cgroup: Optional[str] = None) -> Biotop:
    """Start summing block I/O (of ``disk``; submitted by ``pid``/``comm``/``cgroup`` if given).

    Example::

        with trace(pid=1234) as t:
            time.sleep(1); print(t.read())
    """
    scope = Scope(pid=pid, comm=comm, cgroup=cgroup)
    spec = tool_spec("biotop", scope, filter_dev=disk_dev(disk) if disk else 0, scoped=not scope.any)
    return Biotop(spec, ["on_issue", "on_complete", start_program()], counters=("missed", "full"))


def format_table(rows: list[Row], maxrows: int = 20) -> str:
    """bcc's biotop table (header and rows)."""
    lines = ["%-7s %-16s %1s %-3s %-3s %-8s %5s %7s %6s" % ("PID", "COMM", "D", "MAJ", "MIN", "DISK", "I/O",
                                                         "Kbytes", "AVGms")]
    for r in rows[:maxrows]:
        lines.append("%-7d %-16s %1s %-3d %-3d %-8s %5s %7s %6.2f" % (
            r.pid, r.comm, "W" if r.write else "R", r.major, r.minor, r.disk, r.io, r.bytes // 1024, r.avg_ms))
    return "\n".join(lines)


EXAMPLES = """examples:
    bpfkit biotop            # block device I/O top, 1 second refresh
    bpfkit biotop -C         # don't clear the screen
    bpfkit biotop -p 181     # only trace PID 181
    bpfkit biotop 5          # 5 second summaries
    bpfkit biotop 5 10       # 5 second summaries, 10 times only
    bpfkit biotop --json 1 3 # three JSON documents, one a second
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("biotop", "Block device (disk) I/O by process", EXAMPLES)
    p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
    p.add_argument("-r", "--maxrows", type=positive_int, default=20, help="maximum rows to print, default 20")
    p.add_argument("-d", "--disk", help="trace this disk only")
    add_scope(p, comm="--comm")
    p.add_argument("--json", action="store_true", help="one JSON document per interval")
    p.add_argument("interval", nargs="?", type=positive_float, default=1.0, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")
    return p


def _body(args: argparse.Namespace) -> int:
    t = trace(disk=args.disk, pid=args.pid, comm=args.comm, cgroup=args.cgroup)
    clear = not args.noclear and not args.json and sys.stdout.isatty()

    def emit(last: bool) -> None:
        rows = t.read(clear=True)
        if args.json:
            print_json({"time": time.strftime("%H:%M:%S"), "rows": [asdict(r) for r in rows[:args.maxrows]],
                        "lost": t.lost})
            return
        if clear:
            sys.stdout.write("\033[H\033[2J")
        else:
            print()
        with open("/proc/loadavg") as f:
            print("%-8s loadavg: %s" % (time.strftime("%H:%M:%S"), f.read().rstrip("\n")))
        print(format_table(rows, args.maxrows))

    with t, stop_flag() as stop:
        print(f"Tracing... Output every {args.interval:g} secs. Hit Ctrl-C to end",
              file=sys.stderr if args.json else sys.stdout, flush=True)
        every(args.interval, args.count, None, emit, stop)
        lost = t.lost
    if not args.json:
        print("Detaching...")
    if lost:
        print(f"biotop: {lost} I/Os not counted (a table was full)", file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit biotop [-C] [-r MAXROWS] [-d DISK] [-p PID] [--comm COMM] [--cgroup PATH] [--json] [interval [count]]``"""
    return run_tool("biotop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
