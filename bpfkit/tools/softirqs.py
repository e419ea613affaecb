"""softirqs: time spent in soft interrupts per kind (or their counts, or time distributions), as
bcc's softirqs. From the ``irq:softirq_entry`` / ``irq:softirq_exit`` tracepoints.

Soft interrupts run on behalf of the whole machine, not a process: like bcc's, the tool is scoped
by CPU (``-c``), not by ``-p``/``--cgroup``.

Example::

    $ sudo bpfkit softirqs 1 5
    $ sudo bpfkit softirqs -d -N --json

    from bpfkit.tools import softirqs
    r = softirqs.run(duration=2)
    r.counts["net_rx"], r.total_ns["timer"]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ..hist import Keyed, log2
from .common import ToolError, add_duration, add_interval, add_json, nonnegative_int, parser, run_tool
from .streaming import configure
from .summary import Session, irq_cli, wait_and_read

__all__ = ["VECTORS", "SoftirqResult", "Softirqs", "trace", "run", "main"]

#: The kernel's softirq kinds in vector order (include/linux/interrupt.h), as bcc names them.
VECTORS = ("hi", "timer", "net_tx", "net_rx", "block", "irq_poll", "tasklet", "sched", "hrtimer", "rcu")


@dataclass
class SoftirqResult:
    """Per kind (bcc's names): ``counts`` (times it ran), ``total_ns`` (time in it), and with
    ``dist`` a :class:`bpfkit.hist.Keyed` of log2 histograms (of ``unit``)."""

    counts: dict[str, int]
    total_ns: dict[str, int]
    hist: Optional[Keyed] = None
    unit: str = "usecs"
    kinds: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kinds = [k for k in VECTORS if self.counts.get(k)]


class Softirqs(Session):
    """Soft interrupt accounting in progress: :meth:`read`."""

    def __init__(self, spec: Any, dist: bool, unit: str) -> None:
        super().__init__(spec, counters=())
        self.dist = dist
        self.unit = unit

    def read(self, clear: bool = False) -> SoftirqResult:
        """Counts and time per kind so far (``clear`` starts a new interval)."""
        maps = self.live.maps
        _, v = maps.stats.pop_all() if clear else maps.stats.to_numpy()
        count = np.asarray(v["count"], np.uint64).sum(axis=1)
        total = np.asarray(v["total_ns"], np.uint64).sum(axis=1)
        hist = None
        if self.dist:
            raw = log2(maps.hist_by, clear=clear)
            hist = Keyed({VECTORS[k]: h for k, h in raw.items_by_key.items() if k < len(VECTORS)})
        return SoftirqResult({VECTORS[i]: int(count[i]) for i in range(len(VECTORS))},
                             {VECTORS[i]: int(total[i]) for i in range(len(VECTORS))}, hist, self.unit)


def trace(*, dist: bool = False, nanoseconds: bool = False, cpu: Optional[int] = None) -> Softirqs:
    """Start counting soft interrupts (on ``cpu`` only, if given); ``dist`` also keeps a time
    histogram per kind (in ns with ``nanoseconds``, else us)."""
    if cpu is not None and not 0 <= cpu < 4096:
        raise ToolError(f"-c {cpu}: not a CPU number")
    spec = configure("softirqs", target_cpu=-1 if cpu is None else cpu, dist=dist,
                     unit_ns=1 if nanoseconds else 1000)
    return Softirqs(spec, dist, "nsecs" if nanoseconds else "usecs")


def run(duration: Optional[float] = None, **options: Any) -> SoftirqResult:
    """Count for ``duration`` seconds (None: until Ctrl-C); ``options`` as :func:`trace`.

    Example::

        r = run(1); print(r.kinds)   # e.g. ['timer', 'net_rx', 'sched', 'rcu']
    """
    with trace(**options) as t:
        return wait_and_read(t, duration, t.read)


EXAMPLES = """examples:
    bpfkit softirqs            # sum soft irq event time
    bpfkit softirqs -C         # show the number of soft irq events
    bpfkit softirqs -d         # show soft irq event time as histograms
    bpfkit softirqs 1 10       # print 1 second summaries, 10 times
    bpfkit softirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
    bpfkit softirqs -c 1       # sum soft irq event time on CPU 1 only
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("softirqs", "Summarize soft irq event time as histograms.", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-N", "--nanoseconds", action="store_true", help="output in nanoseconds")
    p.add_argument("-C", "--events", action="store_true", help="show the number of soft irq events")
    p.add_argument("-d", "--dist", action="store_true", help="show distributions as histograms")
    p.add_argument("-c", "--cpu", type=nonnegative_int, help="trace this CPU only")
    add_duration(p, short=False)
    add_json(p)
    add_interval(p)
    return p


def _body(args: argparse.Namespace) -> int:
    return irq_cli("softirqs", "softirq", lambda: trace(dist=args.dist, nanoseconds=args.nanoseconds, cpu=args.cpu),
                   args, width=16, count_option="--events")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit softirqs [-T] [-N] [-C] [-d] [-c CPU] [--duration S] [--json] [interval [count]]``"""
    return run_tool("softirqs", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
