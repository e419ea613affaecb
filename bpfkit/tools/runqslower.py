"""runqslower: threads that waited on a run queue longer than a threshold, one line each, as
bcc's runqslower. From the ``sched_wakeup``, ``sched_wakeup_new`` and ``sched_switch`` BTF
tracepoints.

Example::

    $ sudo bpfkit runqslower 1000        # waits over 1 ms
    $ sudo bpfkit runqslower -P -p 1234 --json

    from bpfkit.tools import runqslower
    with runqslower.stream(min_us=500, duration=5) as s:
        for batch in s:
            print(batch["pid"], batch["delta_us"])
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from .common import Scope, ToolError, add_duration, add_json, add_scope, nonnegative_int, parser, print_json, run_tool
from .streaming import Clock, EventStream, configure, cstrings, follow

__all__ = ["stream", "decode", "main"]


def stream(min_us: int = 10000, *, pid: Optional[int] = None, tid: Optional[int] = None, comm: Optional[str] = None,
           cgroup: Optional[str] = None, duration: Optional[float] = None,
           clock: Optional[Clock] = None) -> EventStream:
    """Start tracing run-queue waits longer than ``min_us`` microseconds (0: every one); iterate
    for numpy batches of ``struct runq_event`` (``pid`` is the thread that waited, ``delta_us``,
    ``prev_pid`` the thread it waited for, ``task``, ``prev_task``, ``cpu``).

    Example::

        with stream(0, pid=child.pid) as s: ...
    """
    spec = configure("runqslower", Scope(pid=pid, tid=tid, comm=comm, cgroup=cgroup), min_us=min_us)
    return EventStream(spec, duration=duration, counters=("missed",), clock=clock)


def decode(batch: np.ndarray, clock: Optional[Clock] = None) -> list[dict[str, Any]]:
    """One dict per wait: ``time``, ``comm``, ``tid``, ``pid`` (the process), ``lat_us``,
    ``prev_comm``, ``prev_tid``, ``cpu``."""
    clock = clock or Clock()
    # names read with a string helper: cut at the NUL (the ring's old bytes follow it)
    return [{"time": float(clock.wall(int(r["ts"]))), "comm": task.decode(errors="replace"),
             "tid": int(r["pid"]), "pid": int(r["tgid"]), "lat_us": int(r["delta_us"]),
             "prev_comm": prev.decode(errors="replace"), "prev_tid": int(r["prev_pid"]),
             "cpu": int(r["cpu"])}
            for r, task, prev in zip(batch, cstrings(batch["task"]), cstrings(batch["prev_task"]))]


EXAMPLES = """examples:
    bpfkit runqslower         # trace run queue latency higher than 10000 us (default)
    bpfkit runqslower 1000    # trace run queue latency higher than 1000 us
    bpfkit runqslower -p 123  # trace pid 123
    bpfkit runqslower -t 123  # trace tid 123 (use for threads only)
    bpfkit runqslower -P      # also show previous task comm and TID
    bpfkit runqslower --json  # one JSON object per wait
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("runqslower", "Trace high run queue latency", EXAMPLES)
    p.add_argument("min_us", nargs="?", type=nonnegative_int, default=10000,
                   help="minimum run queue latency to trace, in us (default 10000)")
    p.add_argument("-P", "--previous", action="store_true", help="also show previous task name and TID")
    add_scope(p, tid=True, comm="--comm")
    add_duration(p)
    add_json(p)
    return p


def _body(args: argparse.Namespace) -> int:
    if args.pid is not None and args.tid is not None:
        raise ToolError("-p and -t: give one of them")
    clock = Clock()
    s = stream(args.min_us, pid=args.pid, tid=args.tid, comm=args.comm, cgroup=args.cgroup, duration=args.duration,
               clock=clock)
    head = "%-8s %-16s %-6s %14s" % ("TIME", "COMM", "TID", "LAT(us)")
    if args.previous:
        head += " %-16s %-6s" % ("PREV COMM", "PREV TID")

    def show(batch: np.ndarray) -> None:
        for ev in decode(batch, clock):
            if args.json:
                print_json(ev)
                continue
            line = "%-8s %-16s %-6s %14s" % (time.strftime("%H:%M:%S", time.localtime(ev["time"])), ev["comm"],
                                             ev["tid"], ev["lat_us"])
            if args.previous:
                line += " %-16s %-6s" % (ev["prev_comm"], ev["prev_tid"])
            print(line)

    follow("runqslower", s, show, header=head, json_mode=args.json,
           tracing=f"Tracing run queue latency higher than {args.min_us} us",
           summary=lambda n: f"runqslower: {n} waits shown")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit runqslower [min_us] [-P] [-p PID | -t TID] [--comm COMM] [--cgroup PATH] [-d S] [--json]``"""
    return run_tool("runqslower", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
