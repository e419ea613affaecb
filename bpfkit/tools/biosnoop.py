"""biosnoop: one line per block I/O — the process that submitted it, disk, R/W, sector, bytes and
latency (``-Q``: also the time queued in the OS; ``-P``: sequential or random) — as bcc's
biosnoop. From the block tracepoints, no kprobes.

Example::

    $ sudo bpfkit biosnoop -Q -d sda
    $ sudo bpfkit biosnoop --json -p 1234

    from bpfkit.tools import biosnoop
    with biosnoop.stream(disk="sda", duration=5) as s:
        for batch in s:                      # numpy records of struct bio_event
            print(batch["pid"], batch["len"], batch["delta"])
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

import numpy as np

from ._block import disk_dev, is_write, start_program
from ._part2 import Traced, follow, tool_spec
from .common import Scope, add_scope, parser, positive_float, print_json, run_tool

__all__ = ["stream", "decode", "main"]

PATTERNS = {0: "?", 1: "S", 2: "R"}


def stream(*, disk: Optional[str] = None, pid: Optional[int] = None, comm: Optional[str] = None,
           cgroup: Optional[str] = None, duration: Optional[float] = None) -> Traced:
    """Start tracing block I/O (of ``disk``, submitted by ``pid``/``comm``/``cgroup`` when given);
    iterate for numpy batches of ``struct bio_event`` (``ts``, ``delta`` and ``qdelta`` in ns,
    ``sector``, ``len``, ``pid``, ``dev``, ``flags``, ``pattern``, ``comm``, ``disk``) until
    ``duration`` passes or ``close()``.

    Example::

        with stream(disk="loop3") as s:
            ...
            rows = decode(s.drain())
    """
    scope = Scope(pid=pid, comm=comm, cgroup=cgroup)
    spec = tool_spec("biosnoop", scope, filter_dev=disk_dev(disk) if disk else 0, scoped=not scope.any)
    return Traced(spec, ["on_issue", "on_complete", start_program()], counters=("missed",), duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per I/O: ``ts_ns`` (completion), ``comm``, ``pid``, ``disk``, ``rw`` ("R"/"W"),
    ``sector``, ``bytes``, ``queue_ns``, ``lat_ns``, ``flags``, ``pattern`` ("S"/"R"/"?")."""
    return [{"ts_ns": int(r["ts"]), "comm": r["comm"].decode(errors="replace"), "pid": int(r["pid"]),
             "disk": r["disk"].decode(errors="replace"), "rw": "W" if is_write(int(r["flags"])) else "R",
             "sector": int(r["sector"]), "bytes": int(r["len"]), "queue_ns": int(r["qdelta"]),
             "lat_ns": int(r["delta"]), "flags": int(r["flags"]), "pattern": PATTERNS.get(int(r["pattern"]), "?")}
            for r in batch]


EXAMPLES = """examples:
    bpfkit biosnoop           # trace all block I/O
    bpfkit biosnoop -Q        # include OS queued time
    bpfkit biosnoop -d sdc    # trace sdc only
    bpfkit biosnoop -P        # display block I/O pattern
    bpfkit biosnoop -p 181    # only I/O submitted by PID 181
    bpfkit biosnoop --json    # one JSON object per I/O
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("biosnoop", "Trace block I/O", EXAMPLES)
    p.add_argument("-Q", "--queue", action="store_true", help="include OS queued time")
    p.add_argument("-d", "--disk", help="trace this disk only")
    p.add_argument("-P", "--pattern", action="store_true", help="display block I/O pattern (sequential or random)")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    add_scope(p, comm="--comm")
    p.add_argument("--json", action="store_true", help="one JSON object per I/O")
    return p


def _body(args: argparse.Namespace) -> int:
    s = stream(disk=args.disk, pid=args.pid, comm=args.comm, cgroup=args.cgroup)
    head = "%-11s %-14s %-7s %-9s %-1s %-10s %-7s" % ("TIME(s)", "COMM", "PID", "DISK", "T", "SECTOR", "BYTES")
    head += " P" * args.pattern + (" %7s" % "QUE(ms)") * args.queue + " %7s" % "LAT(ms)"
    first: list[int] = []
    out = sys.stdout

    def show(batch: np.ndarray) -> None:
        if args.json:
            for row in decode(batch):
                print_json(row)
            return
        if not first:
            first.append(int(batch["ts"][0]))
        lines = []
        for ts, comm, pid, disk, flags, sector, size, pattern, q, lat in zip(
                batch["ts"].tolist(), batch["comm"].tolist(), batch["pid"].tolist(), batch["disk"].tolist(),
                batch["flags"].tolist(), batch["sector"].tolist(), batch["len"].tolist(), batch["pattern"].tolist(),
                batch["qdelta"].tolist(), batch["delta"].tolist()):
            line = b"%-11.6f %-14.14s %-7d %-9s %-1s %-10d %-7d" % (
                (ts - first[0]) / 1e9, comm, pid, disk or b"<unknown>", b"W" if flags & 0xFF == 1 else b"R",
                sector, size)
            if args.pattern:
                line += b" " + PATTERNS.get(pattern, "?").encode()
            if args.queue:
                line += b" %7.2f" % (q / 1e6)
            lines.append(line + b" %7.2f" % (lat / 1e6))
        out.flush()
        out.buffer.write(b"\n".join(lines) + b"\n")

    follow("biosnoop", s, show, header=head, json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit biosnoop [-Q] [-d DISK] [-P] [-p PID] [--comm COMM] [--cgroup PATH] [--duration S] [--json]``"""
    return run_tool("biosnoop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
