"""runqlat: run-queue (scheduler) latency as a histogram — how long threads waited on a run queue
after being woken or preempted — as bcc's runqlat. From the ``sched_wakeup``, ``sched_wakeup_new``
and ``sched_switch`` BTF tracepoints.

Example::

    $ sudo bpfkit runqlat 1 10          # 1 second summaries, 10 times
    $ sudo bpfkit runqlat -mP --json

    from bpfkit.tools import runqlat
    h = runqlat.run(duration=5)          # a bpfkit.hist.Log2Hist of microseconds
    print(h.total, h)
    with runqlat.trace(pid=1234, per_thread=True) as t:
        ...
        per_tid = t.read()               # bpfkit.hist.Keyed: {tid: Log2Hist}
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence, Union

from ..hist import Keyed, Log2Hist, log2
from .bcc_format import hist_json, keyed_log2_hist, log2_hist
from .common import Scope, add_duration, add_interval, add_json, add_scope, parser, print_json, run_tool
from .streaming import configure
from .summary import Session, report, wait_and_read

__all__ = ["Runqlat", "trace", "run", "main"]

PER = {None: 0, "pid": 1, "tid": 2, "pidns": 3}

Hist = Union[Log2Hist, Keyed]


class Runqlat(Session):
    """A runqlat trace in progress: :meth:`read` the histogram (``clear`` starts a new interval).
    ``unit`` is "usecs" or "msecs"; ``per`` None, "pid", "tid" or "pidns" (then a Keyed)."""

    def __init__(self, spec: Any, unit: str, per: Optional[str]) -> None:
        super().__init__(spec)
        self.unit = unit
        self.per = per

    def read(self, clear: bool = False) -> Hist:
        """The histogram so far (:class:`Log2Hist`, or :class:`Keyed` by pid/tid/pidns)."""
        maps = self.live.maps
        return log2(maps.hist_by if self.per else maps.hist, clear=clear)


def trace(*, milliseconds: bool = False, per_process: bool = False, per_thread: bool = False,
          per_pidns: bool = False, pid: Optional[int] = None, tid: Optional[int] = None,
          comm: Optional[str] = None, cgroup: Optional[str] = None) -> Runqlat:
    """Start measuring run-queue latency (of ``pid``/``tid``/``comm``/``cgroup`` only, if given);
    read it with ``.read()``, stop with ``.close()`` (or ``with``).

    Example::

        with trace(per_process=True) as t:
            time.sleep(1)
            for pid, h in t.read().items(): print(pid, h.total)
    """
    per = "pid" if per_process else "tid" if per_thread else "pidns" if per_pidns else None
    spec = configure("runqlat", Scope(pid=pid, tid=tid, comm=comm, cgroup=cgroup), per=PER[per],
                     unit_ns=1_000_000 if milliseconds else 1000)
    return Runqlat(spec, "msecs" if milliseconds else "usecs", per)


def run(duration: Optional[float] = None, **options: Any) -> Hist:
    """Measure for ``duration`` seconds (None: until Ctrl-C) and return the histogram; ``options``
    as :func:`trace`.

    Example::

        h = run(duration=5)            # Log2Hist of microseconds
        h = run(5, per_process=True)   # Keyed {pid: Log2Hist}
    """
    with trace(**options) as t:
        return wait_and_read(t, duration, t.read)


def _json(h: Hist, unit: str, section: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"time": time.time(), "val_type": unit}
    if isinstance(h, Keyed):
        doc[section] = {str(k): hist_json(v) for k, v in sorted(h.items_by_key.items())}
    else:
        doc["data"] = hist_json(h)
    return doc


EXAMPLES = """examples:
    bpfkit runqlat            # summarize run queue latency as a histogram
    bpfkit runqlat 1 10       # print 1 second summaries, 10 times
    bpfkit runqlat -mT 1      # 1s summaries, milliseconds, and timestamps
    bpfkit runqlat -P         # show each PID separately
    bpfkit runqlat -p 185     # trace PID 185 only
    bpfkit runqlat --json 1   # one JSON document per second
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("runqlat", "Summarize run queue (scheduler) latency as a histogram", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    group = p.add_mutually_exclusive_group()
    group.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
    group.add_argument("--pidnss", action="store_true", help="print a histogram per PID namespace")
    group.add_argument("-L", "--tids", action="store_true", help="print a histogram per thread ID")
    add_scope(p, tid=True, comm="--comm")
    add_duration(p)
    add_json(p)
    add_interval(p)
    return p


def _body(args: argparse.Namespace) -> int:
    t = trace(milliseconds=args.milliseconds, per_process=args.pids, per_thread=args.tids, per_pidns=args.pidnss,
              pid=args.pid, tid=args.tid, comm=args.comm, cgroup=args.cgroup)
    section = {"pid": "pid", "tid": "tid", "pidns": "pidns", None: ""}[t.per]

    def emit(last: bool) -> None:
        h = t.read(clear=True)
        if args.json:
            print_json(_json(h, t.unit, section))
            return
        print()
        if args.timestamp:
            print("%-8s" % time.strftime("%H:%M:%S"))
        if isinstance(h, Keyed):
            sys.stdout.write(keyed_log2_hist(h, t.unit, section))
        else:
            text = log2_hist(h, t.unit)
            if text:
                print(text)

    report("runqlat", t, emit, interval=args.interval, count=args.count, duration=args.duration,
           tracing="Tracing run queue latency... Hit Ctrl-C to end.", json_mode=args.json)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit runqlat [-T] [-m] [-P|--pidnss|-L] [-p PID] [-t TID] [--comm COMM] [--cgroup PATH] [-d S]
    [--json] [interval [count]]``"""
    return run_tool("runqlat", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
