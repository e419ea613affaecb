"""statsnoop: trace stat-family calls (stat, lstat, fstatat, statx, statfs) with the path and
result, as bcc's statsnoop. From the syscall tracepoints; unlike bcc's it sees ``newfstatat``,
which is what glibc's stat() calls today.

Example::

    $ sudo bpfkit statsnoop -x
    $ sudo bpfkit statsnoop -p 1234 --json

    from bpfkit.tools import statsnoop
    with statsnoop.stream(pid=1234, duration=5) as s:
        rows = [e for b in s for e in statsnoop.decode(b)]
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

import numpy as np

from .common import Scope, add_duration, add_json, add_scope, parser, print_json, run_tool
from .streaming import Clock, EventStream, configure, cstrings, follow

__all__ = ["CALLS", "stream", "decode", "main"]

CALLS = ("statfs", "newstat", "newlstat", "newfstatat", "statx")  # the BPF side's CALL_* in order


def stream(*, failed: bool = False, pid: Optional[int] = None, comm: Optional[str] = None,
           cgroup: Optional[str] = None, duration: Optional[float] = None,
           clock: Optional[Clock] = None) -> EventStream:
    """Start tracing stat calls; iterate for numpy batches of ``struct stat_event`` (``pid``,
    ``tid``, ``ret``, ``call``, ``comm``, ``name``); ``failed`` keeps only errors.

    Example::

        with stream(pid=os.getpid()) as s:
            os.stat("/etc")
            print(statsnoop.decode(s.drain()))
    """
    spec = configure("statsnoop", Scope(pid=pid, comm=comm, cgroup=cgroup), failed_only=failed)
    return EventStream(spec, duration=duration, counters=("missed",), clock=clock)


def decode(batch: np.ndarray, clock: Optional[Clock] = None) -> list[dict[str, Any]]:
    """One dict per call: ``time``, ``pid``, ``tid``, ``comm``, ``call``, ``ret``, ``err``, ``path``,
    ``truncated`` (the path was longer than the 255 bytes kept)."""
    clock = clock or Clock()
    return [{"time": float(clock.wall(int(r["ts"]))), "ts_ns": int(r["ts"]), "pid": int(r["pid"]),
             "tid": int(r["tid"]), "comm": r["comm"].decode(errors="replace"),
             "call": CALLS[int(r["call"])] if int(r["call"]) < len(CALLS) else "?", "ret": int(r["ret"]),
             "err": -int(r["ret"]) if int(r["ret"]) < 0 else 0, "path": name.decode(errors="replace"),
             "truncated": bool(r["name_cut"])}
            for r, name in zip(batch, cstrings(batch["name"]))]


EXAMPLES = """examples:
    bpfkit statsnoop           # trace all stat() syscalls
    bpfkit statsnoop -t        # include timestamps
    bpfkit statsnoop -x        # only show failed stats
    bpfkit statsnoop -p 181    # only trace PID 181
    bpfkit statsnoop --json    # one JSON object per call
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("statsnoop", "Trace stat() syscalls", EXAMPLES)
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-x", "--failed", action="store_true", help="only show failed stats")
    add_scope(p, comm="--comm")
    add_duration(p)
    add_json(p)
    return p


def _body(args: argparse.Namespace) -> int:
    clock = Clock()
    s = stream(failed=args.failed, pid=args.pid, comm=args.comm, cgroup=args.cgroup, duration=args.duration,
               clock=clock)
    head = ("%-14s" % "TIME(s)" if args.timestamp else "") + "%-7s %-16s %4s %3s %s" % ("PID", "COMM", "FD", "ERR",
                                                                                        "PATH")
    first: list[int] = []

    def show(batch: np.ndarray) -> None:
        for ev in decode(batch, clock):
            if args.json:
                print_json(ev)
                continue
            if not first:
                first.append(ev["ts_ns"])
            line = "%-14.9f" % ((ev["ts_ns"] - first[0]) / 1e9) if args.timestamp else ""
            fd = ev["ret"] if ev["ret"] >= 0 else -1
            print(line + "%-7d %-16s %4d %3d %s%s" % (ev["pid"], ev["comm"], fd, ev["err"], ev["path"],
                                                      "..." if ev["truncated"] else ""))

    follow("statsnoop", s, show, header=head, json_mode=args.json, summary=lambda n: f"statsnoop: {n} calls shown")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit statsnoop [-t] [-x] [-p PID] [--comm COMM] [--cgroup PATH] [-d SECONDS] [--json]``"""
    return run_tool("statsnoop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
