"""exitsnoop: trace process termination (exit and fatal signals) with the process's age, as bcc's
exitsnoop. From the ``sched:sched_process_exit`` tracepoint.

Example::

    $ sudo bpfkit exitsnoop -x -t
    $ sudo bpfkit exitsnoop --per-thread --json

    from bpfkit.tools import exitsnoop
    with exitsnoop.stream(failed=True, duration=5) as s:
        for ev in (e for b in s for e in exitsnoop.decode(b, s.clock)):
            print(ev["pid"], ev["exit_code"], ev["signal"])
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from typing import Any, Optional, Sequence

import numpy as np

from .bcc_format import signal_name
from .common import Scope, add_duration, add_json, add_scope, parser, print_json, run_tool
from .streaming import Clock, EventStream, configure, follow

__all__ = ["stream", "decode", "describe", "main"]


def stream(*, failed: bool = False, per_thread: bool = False, pid: Optional[int] = None, comm: Optional[str] = None,
           cgroup: Optional[str] = None, duration: Optional[float] = None,
           clock: Optional[Clock] = None) -> EventStream:
    """Start tracing exits; iterate for numpy batches of ``struct exit_event`` (:func:`decode` makes
    dicts). ``failed``: only non-zero exits and signals; ``per_thread``: every thread's exit, not only
    each process's main thread; ``pid``/``comm``/``cgroup`` scope it on the BPF side.

    Example::

        with stream(pid=child.pid) as s: ...
    """
    spec = configure("exitsnoop", Scope(pid=pid, comm=comm, cgroup=cgroup), failed_only=failed,
                     per_thread=per_thread)
    return EventStream(spec, duration=duration, clock=clock)


def decode(batch: np.ndarray, clock: Optional[Clock] = None) -> list[dict[str, Any]]:
    """One dict per exit: ``time`` (epoch s), ``pcomm``, ``pid``, ``ppid``, ``tid``, ``age`` (s),
    ``exit_code``, ``signal`` (0: none), ``core_dumped``."""
    clock = clock or Clock()
    return [{"time": float(clock.wall(int(r["exit_time"]))), "pcomm": r["comm"].decode(errors="replace"),
             "pid": int(r["pid"]), "ppid": int(r["ppid"]), "tid": int(r["tid"]),
             "age": (int(r["exit_time"]) - int(r["start_time"])) / 1e9, "exit_code": int(r["exit_code"]),
             "signal": int(r["sig_info"]) & 0x7F, "core_dumped": bool(int(r["sig_info"]) & 0x80)} for r in batch]


def describe(ev: dict[str, Any]) -> str:
    """bcc's EXIT_CODE column: ``0``, ``code 3``, ``signal 9 (KILL)``, ``, core dumped``."""
    if not ev["signal"] and not ev["core_dumped"]:
        return "0" if ev["exit_code"] == 0 else f"code {ev['exit_code']}"
    text = f"signal {ev['signal']} ({signal_name(ev['signal'])})" if ev["signal"] else ""
    return text + (", core dumped " if ev["core_dumped"] else "")


EXAMPLES = """examples:
    bpfkit exitsnoop                # trace all process termination
    bpfkit exitsnoop -x             # trace only fails, exclude exit(0)
    bpfkit exitsnoop -t             # include timestamps (local time)
    bpfkit exitsnoop --utc          # include timestamps (UTC)
    bpfkit exitsnoop -p 181         # only trace PID 181
    bpfkit exitsnoop --label=exit   # label each output line with 'exit'
    bpfkit exitsnoop --per-thread   # trace per thread termination
    bpfkit exitsnoop --json         # one JSON object per exit
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("exitsnoop", "Trace all process termination (exit, fatal signal)", EXAMPLES)
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp (local time default)")
    p.add_argument("--utc", action="store_true", help="include timestamp in UTC (-t implied)")
    p.add_argument("--label", help="label each line")
    p.add_argument("-x", "--failed", action="store_true", help="trace only fails, exclude exit(0)")
    p.add_argument("--per-thread", action="store_true", help="trace per thread termination")
    add_scope(p, comm="--comm")
    add_duration(p)
    add_json(p)
    return p


def _body(args: argparse.Namespace) -> int:
    clock = Clock()
    timestamp = args.timestamp or args.utc
    s = stream(failed=args.failed, per_thread=args.per_thread, pid=args.pid, comm=args.comm, cgroup=args.cgroup,
               duration=args.duration, clock=clock)
    head = ""
    if timestamp:
        head += "%-13s" % ("TIME-" + ("UTC" if args.utc else time.strftime("%Z")))
    if args.label is not None:
        head += "%-6s" % "LABEL"
    head += "%-16s %-7s %-7s %-7s %-7s %-10s" % ("PCOMM", "PID", "PPID", "TID", "AGE(s)", "EXIT_CODE")

    def show(batch: np.ndarray) -> None:
        for ev in decode(batch, clock):
            if args.json:
                print_json(ev)
                continue
            line = ""
            if timestamp:
                tz = timezone.utc if args.utc else None
                line += "%-13s" % datetime.fromtimestamp(ev["time"], tz).strftime("%H:%M:%S.%f")[:-3]
            if args.label is not None:
                line += "%-6s" % (args.label or "exit")
            line += "%-16s %-7d %-7d %-7d %-7.2f " % (ev["pcomm"], ev["pid"], ev["ppid"], ev["tid"], ev["age"])
            print(line + describe(ev))

    follow("exitsnoop", s, show, header=head.rstrip(), json_mode=args.json,
           summary=lambda n: f"exitsnoop: {n} exits shown")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit exitsnoop [-t] [--utc] [--label LABEL] [-x] [--per-thread] [-p PID] [--comm COMM]
    [--cgroup PATH] [-d SECONDS] [--json]``"""
    return run_tool("exitsnoop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
