"""cpudist: how long threads run on a CPU each time they are switched in (or, with ``-O``, how long
they stay off CPU), as a histogram, like bcc's cpudist. From the ``sched_switch`` BTF tracepoint
(bcc's needs a kprobe on finish_task_switch).

Example::

    $ sudo bpfkit cpudist 1 5
    $ sudo bpfkit cpudist -O -P -p 1234

    from bpfkit.tools import cpudist
    h = cpudist.run(duration=5)                  # Log2Hist of microseconds on CPU
    with cpudist.trace(offcpu=True, pid=1234) as t:
        ...
        print(t.read(), t.stats())
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence, Union

from ..hist import Keyed, Log2Hist, Stats, log2, stats
from .bcc_format import hist_json, keyed_log2_hist, log2_hist
from .common import Scope, add_duration, add_interval, add_json, add_scope, comm_of, parser, print_json, run_tool
from .streaming import configure
from .summary import Session, report, wait_and_read

__all__ = ["Cpudist", "trace", "run", "main"]

PER = {None: 0, "pid": 1, "tid": 2}

Hist = Union[Log2Hist, Keyed]


class Cpudist(Session):
    """A cpudist trace in progress: :meth:`read` the histogram, :meth:`stats` its count and total."""

    def __init__(self, spec: Any, unit: str, per: Optional[str], offcpu: bool) -> None:
        super().__init__(spec)
        self.unit = unit
        self.per = per
        self.offcpu = offcpu

    def read(self, clear: bool = False) -> Hist:
        """The histogram so far (:class:`Log2Hist`, or :class:`Keyed` by pid/tid)."""
        maps = self.live.maps
        return log2(maps.hist_by if self.per else maps.hist, clear=clear)

    def stats(self, clear: bool = False) -> Stats:
        """Count, total, min and max of the recorded times (bcc's ``-e``)."""
        result: Stats = stats(self.live.maps.total, clear=clear)
        return result


def trace(*, offcpu: bool = False, milliseconds: bool = False, per_process: bool = False, per_thread: bool = False,
          include_idle: bool = False, pid: Optional[int] = None, tid: Optional[int] = None,
          comm: Optional[str] = None, cgroup: Optional[str] = None) -> Cpudist:
    """Start measuring on-CPU (or ``offcpu``) time per switch; read with ``.read()``.

    Example::

        with trace(per_thread=True, pid=os.getpid()) as t:
            busy_work()
            print(t.read())
    """
    per = "pid" if per_process else "tid" if per_thread else None
    spec = configure("cpudist", Scope(pid=pid, tid=tid, comm=comm, cgroup=cgroup), per=PER[per], offcpu=offcpu,
                     include_idle=include_idle, unit_ns=1_000_000 if milliseconds else 1000)
    return Cpudist(spec, "msecs" if milliseconds else "usecs", per, offcpu)


def run(duration: Optional[float] = None, **options: Any) -> Hist:
    """Measure for ``duration`` seconds (None: until Ctrl-C) and return the histogram; ``options``
    as :func:`trace`.

    Example::

        h = run(5, offcpu=True)
    """
    with trace(**options) as t:
        return wait_and_read(t, duration, t.read)


def _label(per: Optional[str]) -> Any:
    def label(key: Any) -> str:
        comm = comm_of(int(key)) if per == "pid" else ""
        return f"{key} {comm}" if comm else str(key)
    return label


EXAMPLES = """examples:
    bpfkit cpudist              # summarize on-CPU time as a histogram
    bpfkit cpudist -O           # summarize off-CPU time as a histogram
    bpfkit cpudist 1 10         # print 1 second summaries, 10 times
    bpfkit cpudist -mT 1        # 1s summaries, milliseconds, and timestamps
    bpfkit cpudist -P           # show each PID separately
    bpfkit cpudist -p 185       # trace PID 185 only
    bpfkit cpudist -I           # include CPU idle time
    bpfkit cpudist -e           # show extension summary (average/total/count)
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("cpudist", "Summarize on- and off-CPU time per task as a histogram.", EXAMPLES)
    p.add_argument("-O", "--offcpu", action="store_true", help="measure off-CPU time")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    group = p.add_mutually_exclusive_group()
    group.add_argument("-P", "--pids", action="store_true", help="print a histogram per process ID")
    group.add_argument("-L", "--tids", action="store_true", help="print a histogram per thread ID")
    p.add_argument("-I", "--include-idle", action="store_true", help="include CPU idle time")
    p.add_argument("-e", "--extension", action="store_true", help="show extension summary (average/total/count)")
    add_scope(p, tid=True, comm="--comm")
    add_duration(p)
    add_json(p)
    add_interval(p)
    return p


def _body(args: argparse.Namespace) -> int:
    t = trace(offcpu=args.offcpu, milliseconds=args.milliseconds, per_process=args.pids, per_thread=args.tids,
              include_idle=args.include_idle, pid=args.pid, tid=args.tid, comm=args.comm, cgroup=args.cgroup)
    section = {"pid": "pid", "tid": "tid", None: ""}[t.per]

    def emit(last: bool) -> None:
        h = t.read(clear=True)
        st = t.stats(clear=True) if args.extension else None
        if args.json:
            doc: dict[str, Any] = {"time": time.time(), "val_type": t.unit, "offcpu": t.offcpu}
            if isinstance(h, Keyed):
                doc[section] = {str(k): hist_json(v) for k, v in sorted(h.items_by_key.items())}
            else:
                doc["data"] = hist_json(h)
            if st is not None:
                doc["extension"] = {"count": st.count, "total": st.total}
            print_json(doc)
            return
        print()
        if args.timestamp:
            print("%-8s" % time.strftime("%H:%M:%S"))
        if isinstance(h, Keyed):
            sys.stdout.write(keyed_log2_hist(h, t.unit, section, _label(t.per)))
        else:
            text = log2_hist(h, t.unit)
            if text:
                print(text)
        if st is not None and st.count:
            print("\navg = %d %s, total: %d %s, count: %d\n" % (st.total // st.count, t.unit, st.total, t.unit,
                                                                st.count))

    report("cpudist", t, emit, interval=args.interval, count=args.count, duration=args.duration,
           tracing="Tracing %s-CPU time... Hit Ctrl-C to end." % ("off" if args.offcpu else "on"),
           json_mode=args.json)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit cpudist [-O] [-T] [-m] [-P|-L] [-I] [-e] [-p PID] [-t TID] [--comm COMM] [--cgroup PATH] [-d S]
    [--json] [interval [count]]``"""
    return run_tool("cpudist", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
