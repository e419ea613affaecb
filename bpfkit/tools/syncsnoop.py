"""syncsnoop: trace calls that flush data to storage — sync(2), syncfs, fsync, fdatasync,
sync_file_range and msync — as bcc's syncsnoop (which sees sync() only), with the caller's PID and
command. From the syscall entry tracepoints.

Example::

    $ sudo bpfkit syncsnoop
    $ sudo bpfkit syncsnoop --json -d 10

    from bpfkit.tools import syncsnoop
    with syncsnoop.stream(duration=5) as s:
        calls = [e["call"] for b in s for e in syncsnoop.decode(b)]
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

import numpy as np

from .common import Scope, add_duration, add_json, add_scope, parser, print_json, run_tool
from .streaming import Clock, EventStream, configure, follow

__all__ = ["CALLS", "stream", "decode", "main"]

CALLS = ("sync", "syncfs", "fsync", "fdatasync", "sync_file_range", "msync")  # CALL_* in order


def stream(*, pid: Optional[int] = None, comm: Optional[str] = None, cgroup: Optional[str] = None,
           duration: Optional[float] = None, clock: Optional[Clock] = None) -> EventStream:
    """Start tracing sync calls; iterate for numpy batches of ``struct sync_event`` (``ts``, ``pid``,
    ``tid``, ``call``, ``comm``).

    Example::

        with stream(pid=os.getpid()) as s:
            os.sync()
            print(syncsnoop.decode(s.drain())[0]["call"])   # 'sync'
    """
    spec = configure("syncsnoop", Scope(pid=pid, comm=comm, cgroup=cgroup))
    return EventStream(spec, duration=duration, clock=clock)


def decode(batch: np.ndarray, clock: Optional[Clock] = None) -> list[dict[str, Any]]:
    """One dict per call: ``time`` (epoch s), ``ts`` (s since boot, bcc's TIME(s)), ``pid``, ``tid``,
    ``comm``, ``call``."""
    clock = clock or Clock()
    return [{"time": float(clock.wall(int(r["ts"]))), "ts": int(r["ts"]) / 1e9, "pid": int(r["pid"]),
             "tid": int(r["tid"]), "comm": r["comm"].decode(errors="replace"),
             "call": CALLS[int(r["call"])] if int(r["call"]) < len(CALLS) else "?"} for r in batch]


EXAMPLES = """examples:
    bpfkit syncsnoop            # trace sync(), syncfs(), fsync(), fdatasync(), sync_file_range(), msync()
    bpfkit syncsnoop -p 181     # only PID 181
    bpfkit syncsnoop --json     # one JSON object per call
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("syncsnoop", "Trace sync() syscalls (and the other calls that flush to storage)", EXAMPLES)
    add_scope(p, comm="--comm")
    add_duration(p)
    add_json(p)
    return p


def _body(args: argparse.Namespace) -> int:
    clock = Clock()
    s = stream(pid=args.pid, comm=args.comm, cgroup=args.cgroup, duration=args.duration, clock=clock)
    head = "%-18s %-7s %-16s %s" % ("TIME(s)", "PID", "COMM", "CALL")

    def show(batch: np.ndarray) -> None:
        for ev in decode(batch, clock):
            if args.json:
                print_json(ev)
            else:
                print("%-18.9f %-7d %-16s %s()" % (ev["ts"], ev["pid"], ev["comm"], ev["call"]))

    follow("syncsnoop", s, show, header=head, json_mode=args.json, summary=lambda n: f"syncsnoop: {n} calls shown")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit syncsnoop [-p PID] [--comm COMM] [--cgroup PATH] [-d SECONDS] [--json]``"""
    return run_tool("syncsnoop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
