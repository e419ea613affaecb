"""hardirqs: time spent in hard interrupt handlers per handler name (or their counts, or time
distributions), as bcc's hardirqs. From the ``irq:irq_handler_entry`` / ``irq:irq_handler_exit``
tracepoints. As in bcc, an invocation counts when the handler handled it (did not return
IRQ_NONE); the others are kept apart as ``unhandled``.

Interrupts are not a process's: like bcc's, the tool is scoped by CPU (``-c``), not by
``-p``/``--cgroup``.

Example::

    $ sudo bpfkit hardirqs 1 5
    $ sudo bpfkit hardirqs -C --json

    from bpfkit.tools import hardirqs
    r = hardirqs.run(duration=2)
    r.counts        # {'virtio1-req.0': 208, ...}
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ..hist import Keyed, log2
from .common import ToolError, add_duration, add_interval, add_json, nonnegative_int, parser, run_tool
from .streaming import configure
from .summary import Session, irq_cli, wait_and_read

__all__ = ["HardirqResult", "Hardirqs", "trace", "run", "main"]


@dataclass
class HardirqResult:
    """Per handler name: ``counts`` (handled invocations), ``total_ns`` (time in them),
    ``unhandled`` (IRQ_NONE), ``irqs`` (the IRQ number), and with ``dist`` a Keyed of histograms."""

    counts: dict[str, int]
    total_ns: dict[str, int]
    unhandled: dict[str, int]
    irqs: dict[str, int]
    hist: Optional[Keyed] = None
    unit: str = "usecs"


def _name(raw: Any) -> str:
    return bytes(raw).split(b"\0", 1)[0].decode(errors="replace")


class Hardirqs(Session):
    """Hard interrupt accounting in progress: :meth:`read`."""

    def __init__(self, spec: Any, dist: bool, unit: str) -> None:
        super().__init__(spec)
        self.dist = dist
        self.unit = unit

    def read(self, clear: bool = False) -> HardirqResult:
        """Counts and time per handler so far (``clear`` starts a new interval)."""
        maps = self.live.maps
        keys, v = maps.stats.pop_all() if clear else maps.stats.to_numpy()
        names = [_name(k["name"]) for k in keys]
        res = HardirqResult({n: int(x) for n, x in zip(names, v["count"])},
                            {n: int(x) for n, x in zip(names, v["total_ns"])},
                            {n: int(x) for n, x in zip(names, v["unhandled"])},
                            {n: int(x) for n, x in zip(names, v["irq"])}, None, self.unit)
        if self.dist:
            raw = log2(maps.hist_by, clear=clear)
            res.hist = Keyed({_name(k): h for k, h in raw.items_by_key.items()})
        return res


def trace(*, dist: bool = False, nanoseconds: bool = False, cpu: Optional[int] = None) -> Hardirqs:
    """Start accounting hard interrupt handlers (on ``cpu`` only, if given)."""
    if cpu is not None and not 0 <= cpu < 4096:
        raise ToolError(f"-c {cpu}: not a CPU number")
    spec = configure("hardirqs", target_cpu=-1 if cpu is None else cpu, dist=dist,
                     unit_ns=1 if nanoseconds else 1000)
    return Hardirqs(spec, dist, "nsecs" if nanoseconds else "usecs")


def run(duration: Optional[float] = None, **options: Any) -> HardirqResult:
    """Account for ``duration`` seconds (None: until Ctrl-C); ``options`` as :func:`trace`."""
    with trace(**options) as t:
        return wait_and_read(t, duration, t.read)


EXAMPLES = """examples:
    bpfkit hardirqs            # sum hard irq event time
    bpfkit hardirqs -d         # show hard irq event time as histograms
    bpfkit hardirqs 1 10       # print 1 second summaries, 10 times
    bpfkit hardirqs -NT 1      # 1s summaries, nanoseconds, and timestamps
    bpfkit hardirqs -c 1       # sum hard irq event time on CPU 1 only
    bpfkit hardirqs -C --json  # counts as JSON
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("hardirqs", "Summarize hard irq event time as histograms", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-N", "--nanoseconds", action="store_true", help="output in nanoseconds")
    p.add_argument("-C", "--count", dest="events", action="store_true", help="show event counts instead of timing")
    p.add_argument("-d", "--dist", action="store_true", help="show distributions as histograms")
    p.add_argument("-c", "--cpu", type=nonnegative_int, help="trace this CPU only")
    add_duration(p, short=False)
    add_json(p)
    add_interval(p)
    return p


def _body(args: argparse.Namespace) -> int:
    return irq_cli("hardirqs", "hardirq", lambda: trace(dist=args.dist, nanoseconds=args.nanoseconds, cpu=args.cpu),
                   args, width=26, count_option="--count", json_extra=lambda r: {"unhandled": r.unhandled})


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit hardirqs [-T] [-N] [-C] [-d] [-c CPU] [--duration S] [--json] [interval [count]]``"""
    return run_tool("hardirqs", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
