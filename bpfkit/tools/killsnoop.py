"""killsnoop: trace signals sent with kill(2), tkill(2) and tgkill(2), with the sender, target,
signal and result, as bcc's killsnoop. From the ``syscalls:sys_{enter,exit}_{kill,tkill,tgkill}``
tracepoints.

Example::

    $ sudo bpfkit killsnoop -x
    $ sudo bpfkit killsnoop -s 9 --json

    from bpfkit.tools import killsnoop
    with killsnoop.stream(duration=5) as s:
        tuples = [(e["pid"], e["tpid"], e["sig"], e["ret"]) for b in s for e in killsnoop.decode(b)]
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from .common import Scope, add_duration, add_json, add_scope, nonnegative_int, parser, print_json, run_tool
from .streaming import Clock, EventStream, configure, follow

__all__ = ["CALLS", "stream", "decode", "main"]

CALLS = ("kill", "tkill", "tgkill")  # the BPF side's KIND_* in order


def _int(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def stream(*, failed: bool = False, pid: Optional[int] = None, tpid: Optional[int] = None,
           signal: Optional[int] = None, comm: Optional[str] = None, cgroup: Optional[str] = None,
           duration: Optional[float] = None, clock: Optional[Clock] = None) -> EventStream:
    """Start tracing signals sent; iterate for numpy batches of ``struct kill_event``. ``pid``
    (the sender), ``comm``, ``cgroup``, ``tpid`` (the target argument) and ``signal`` restrict
    what is traced on the BPF side; ``failed`` keeps only calls that returned an error.

    Example::

        with stream(tpid=child_pid) as s: ...
    """
    spec = configure("killsnoop", Scope(pid=pid, comm=comm, cgroup=cgroup), failed_only=failed,
                     target_pid=tpid, filter_sig=signal is not None, target_sig=signal)
    return EventStream(spec, duration=duration, counters=("missed",), clock=clock)


def decode(batch: np.ndarray, clock: Optional[Clock] = None) -> list[dict[str, Any]]:
    """One dict per call: ``time``, ``pid`` (sender), ``tid``, ``comm``, ``sig``, ``tpid`` (target),
    ``ret`` (0 or -errno), ``call`` ("kill", "tkill", "tgkill")."""
    clock = clock or Clock()
    return [{"time": float(clock.wall(int(r["ts"]))), "pid": int(r["pid"]), "tid": int(r["tid"]),
             "comm": r["comm"].decode(errors="replace"), "sig": int(r["sig"]), "tpid": int(r["tpid"]),
             "ret": int(r["ret"]), "call": CALLS[int(r["kind"])] if int(r["kind"]) < len(CALLS) else "?"}
            for r in batch]


def _pid_width() -> int:
    try:
        with open("/proc/sys/kernel/pid_max") as f:
            return len(f.read().strip()) + 1
    except OSError:
        return 6


EXAMPLES = """examples:
    bpfkit killsnoop           # trace all kill() signals
    bpfkit killsnoop -x        # only show failed kills
    bpfkit killsnoop -p 181    # only trace PID 181
    bpfkit killsnoop -T 189    # only trace target PID 189
    bpfkit killsnoop -s 9      # only trace signal 9
    bpfkit killsnoop --json    # one JSON object per signal sent
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("killsnoop", "Trace signals issued by the kill() syscall", EXAMPLES)
    p.add_argument("-x", "--failed", action="store_true", help="only show failed kill syscalls")
    p.add_argument("-T", "--tpid", type=_int, help="trace this target PID only which is the receiver of signal")
    p.add_argument("-s", "--signal", type=nonnegative_int, help="trace this signal only")
    add_scope(p, comm="--comm")
    add_duration(p)
    add_json(p)
    return p


def _body(args: argparse.Namespace) -> int:
    clock = Clock()
    s = stream(failed=args.failed, pid=args.pid, tpid=args.tpid, signal=args.signal, comm=args.comm,
               cgroup=args.cgroup, duration=args.duration, clock=clock)
    w = _pid_width()
    head = "%-9s %-*s %-16s %-4s %-*s %s" % ("TIME", w, "PID", "COMM", "SIG", w, "TPID", "RESULT")

    def show(batch: np.ndarray) -> None:
        for ev in decode(batch, clock):
            if args.json:
                print_json(ev)
            else:
                print("%-9s %-*d %-16s %-4d %-*d %d" % (time.strftime("%H:%M:%S", time.localtime(ev["time"])), w,
                                                        ev["pid"], ev["comm"], ev["sig"], w, ev["tpid"], ev["ret"]))

    follow("killsnoop", s, show, header=head, json_mode=args.json, summary=lambda n: f"killsnoop: {n} signals shown")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit killsnoop [-x] [-p PID] [-T TPID] [-s SIG] [--comm COMM] [--cgroup PATH] [-d SECONDS] [--json]``"""
    return run_tool("killsnoop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
