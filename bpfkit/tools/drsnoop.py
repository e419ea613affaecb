"""drsnoop: direct reclaim events — the task that had to reclaim memory before its allocation
could go on, how long that took and how many pages it freed — as bcc's drsnoop, from the vmscan
tracepoints. ``--memcg`` (ours) adds the reclaim a task does when its memory cgroup is at its
limit, which is where most direct reclaim happens on a machine of containers.

Example::

    $ sudo bpfkit drsnoop -T
    $ sudo bpfkit drsnoop --memcg -p 1234 --json

    from bpfkit.tools import drsnoop
    with drsnoop.stream(memcg=True) as s:
        for batch in s:
            print(drsnoop.decode(batch))
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

import numpy as np

from ._part2 import Traced, follow, tool_spec
from .common import Scope, add_scope, parser, positive_float, print_json, run_tool

__all__ = ["stream", "decode", "main"]

KINDS = {0: "direct", 1: "memcg"}


def stream(*, memcg: bool = False, pid: Optional[int] = None, tid: Optional[int] = None, comm: Optional[str] = None,
           cgroup: Optional[str] = None, duration: Optional[float] = None) -> Traced:
    """Start tracing direct reclaim (``memcg``: and memory cgroup limit reclaim) of
    ``pid``/``tid``/``comm``/``cgroup`` when given; batches of ``struct dr_event`` (``ts``,
    ``delta_ns``, ``nr_reclaimed``, ``pid``, ``tid``, ``kind``, ``comm``)."""
    spec = tool_spec("drsnoop", Scope(pid=pid, tid=tid, comm=comm, cgroup=cgroup))
    progs = ["on_direct_begin", "on_direct_end"] + (["on_memcg_begin", "on_memcg_end"] if memcg else [])
    return Traced(spec, progs, counters=("missed",), duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per reclaim: ``ts_ns`` (its end), ``comm``, ``pid``, ``tid``, ``kind``
    ("direct" or "memcg"), ``lat_ns``, ``pages``."""
    return [{"ts_ns": int(r["ts"]), "comm": r["comm"].decode(errors="replace"), "pid": int(r["pid"]),
             "tid": int(r["tid"]), "kind": KINDS.get(int(r["kind"]), "?"), "lat_ns": int(r["delta_ns"]),
             "pages": int(r["nr_reclaimed"])} for r in batch]


EXAMPLES = """examples:
    bpfkit drsnoop           # trace all direct reclaim
    bpfkit drsnoop -T        # include timestamps
    bpfkit drsnoop -p 181    # only trace PID 181
    bpfkit drsnoop -t 123    # only trace TID 123
    bpfkit drsnoop -n main   # only print process names that are main
    bpfkit drsnoop -d 10     # trace for 10 seconds only
    bpfkit drsnoop --memcg   # also reclaim forced by a memory cgroup's limit
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("drsnoop", "Trace direct reclaim", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-d", "--duration", type=positive_float, help="total duration of trace in seconds")
    p.add_argument("--memcg", action="store_true", help="also trace reclaim at a memory cgroup's limit")
    add_scope(p, tid=True, comm="-n")
    p.add_argument("--json", action="store_true", help="one JSON object per reclaim")
    return p


def _body(args: argparse.Namespace) -> int:
    s = stream(memcg=args.memcg, pid=args.pid, tid=args.tid, comm=args.comm, cgroup=args.cgroup)
    head = ("%-14s " % "TIME(s)" if args.timestamp else "") + "%-14s %-6s %8s %5s" % ("COMM", "PID", "LAT(ms)",
                                                                                      "PAGES")
    first: list[int] = []

    def show(batch: np.ndarray) -> None:
        if args.json:
            for row in decode(batch):
                print_json(row)
            return
        for r in batch:
            if not first:
                first.append(int(r["ts"]))
            line = "%-14.9f " % ((int(r["ts"]) - first[0]) / 1e9) if args.timestamp else ""
            print(line + "%-14.14s %-6d %8.3f %5d" % (r["comm"].decode(errors="replace"), int(r["pid"]),
                                                      int(r["delta_ns"]) / 1e6, int(r["nr_reclaimed"])))

    follow("drsnoop", s, show, header=head, json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit drsnoop [-T] [-d S] [--memcg] [-p PID] [-t TID] [-n COMM] [--cgroup PATH] [--json]``"""
    return run_tool("drsnoop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
