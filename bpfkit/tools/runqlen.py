"""runqlen: scheduler run-queue length, sampled 99 times a second on every CPU, as a linear
histogram, like bcc's runqlen. A cpu-clock perf event runs the BPF side, which reads the CPU's
``struct rq`` with CO-RE (every scheduling class counts, bcc's counts CFS only).

Run queues belong to CPUs, not to processes: there is no ``-p``/``--cgroup`` scope here.

Example::

    $ sudo bpfkit runqlen -C 1 5
    $ sudo bpfkit runqlen -O --json

    from bpfkit.tools import runqlen
    r = runqlen.run(duration=5)
    r.hist()             # samples by queue length, all CPUs: numpy array
    r.occupancy(cpu=0)   # share of CPU 0's samples with a thread waiting
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from .bcc_format import keyed_linear_hist, linear_hist
from .common import add_duration, add_interval, add_json, parser, positive_int, print_json, run_tool
from .streaming import configure
from .summary import Session, report, wait_and_read

__all__ = ["MAX_QLEN", "RunqlenResult", "Runqlen", "trace", "run", "main"]

MAX_QLEN = 1023  # the BPF side counts longer queues in this slot
FREQUENCY = 99


@dataclass
class RunqlenResult:
    """Samples by run-queue length per CPU: ``counts[cpu, length]``."""

    counts: np.ndarray
    cpus: list[int]

    def hist(self, cpu: Optional[int] = None) -> np.ndarray:
        """Samples by queue length for one CPU, or summed over all."""
        if cpu is None:
            return self.counts.sum(axis=0)
        return self.counts[self.cpus.index(cpu)]

    @property
    def total(self) -> int:
        """Number of samples."""
        return int(self.counts.sum())

    def occupancy(self, cpu: Optional[int] = None) -> float:
        """Share of samples (0..1) in which at least one thread was waiting."""
        h = self.hist(cpu)
        n = int(h.sum())
        return float(h[1:].sum()) / n if n else 0.0


class Runqlen(Session):
    """A runqlen sampling in progress: :meth:`read` the samples so far."""

    def read(self, clear: bool = False) -> RunqlenResult:
        """The samples so far (``clear`` starts a new interval)."""
        m = self.live.maps.qlen
        _, values = m.pop_all() if clear else m.to_numpy()
        counts = np.asarray(values, np.uint64).T  # (cpus, lengths)
        return RunqlenResult(counts, list(range(counts.shape[0])))

    @property
    def unreadable(self) -> int:
        """Samples on which the run queue could not be read (kernels without group scheduling)."""
        return int(self.live.bss.unreadable)


def trace(frequency: int = FREQUENCY) -> Runqlen:
    """Start sampling every CPU's run-queue length ``frequency`` times a second.

    Example::

        with trace() as t:
            time.sleep(1)
            print(t.read().occupancy())
    """
    spec = configure("runqlen")
    return Runqlen(spec, attach=lambda obj: obj.progs.on_sample.attach_perf_event("cpu-clock", frequency=frequency),
                   counters=("unreadable",))


def run(duration: Optional[float] = None, frequency: int = FREQUENCY) -> RunqlenResult:
    """Sample for ``duration`` seconds (None: until Ctrl-C) and return the counts.

    Example::

        r = run(5); print(r.hist(), r.occupancy())
    """
    with trace(frequency) as t:
        return wait_and_read(t, duration, t.read)


EXAMPLES = """examples:
    bpfkit runqlen            # summarize run queue length as a histogram
    bpfkit runqlen 1 10       # print 1 second summaries, 10 times
    bpfkit runqlen -T 1       # 1s summaries and timestamps
    bpfkit runqlen -O         # report run queue occupancy
    bpfkit runqlen -C         # show each CPU separately
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("runqlen", "Summarize scheduler run queue length as a histogram", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-O", "--runqocc", action="store_true", help="report run queue occupancy")
    p.add_argument("-C", "--cpus", action="store_true", help="print output for each CPU separately")
    p.add_argument("-F", "--frequency", type=positive_int, default=FREQUENCY,
                   help=f"samples per second per CPU (default {FREQUENCY})")
    add_duration(p)
    add_json(p)
    add_interval(p)
    return p


def _trimmed(h: np.ndarray) -> list[int]:
    nz = np.nonzero(h)[0]
    return [int(x) for x in h[: int(nz[-1]) + 1]] if len(nz) else []


def _body(args: argparse.Namespace) -> int:
    t = trace(args.frequency)

    def emit(last: bool) -> None:
        r = t.read(clear=True)
        active = [c for c in r.cpus if r.hist(c).sum()]
        if args.json:
            doc: dict[str, Any] = {"time": time.time(), "samples": r.total}
            if args.cpus:
                doc["cpus"] = {str(c): {"runqlen": _trimmed(r.hist(c)), "runqocc": r.occupancy(c)} for c in active}
            else:
                doc["runqlen"] = _trimmed(r.hist())
                doc["runqocc"] = r.occupancy()
            print_json(doc)
            return
        print()
        if args.timestamp:
            print("%-8s" % time.strftime("%H:%M:%S"))
        if args.runqocc:
            if args.cpus:
                for c in range(max(active, default=-1) + 1):
                    print("runqocc, CPU %-3d %6.2f%%" % (c, 100 * r.occupancy(c)))
            else:
                print("runqocc: %0.2f%%" % (100 * r.occupancy()))
        elif args.cpus:
            sys.stdout.write(keyed_linear_hist({c: r.hist(c) for c in active}, "runqlen", "cpu"))
        else:
            text = linear_hist(r.hist(), "runqlen")
            if text:
                print(text)

    report("runqlen", t, emit, interval=args.interval, count=args.count, duration=args.duration,
           tracing="Sampling run queue length... Hit Ctrl-C to end.", json_mode=args.json)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit runqlen [-T] [-O] [-C] [-F HZ] [-d S] [--json] [interval [count]]``"""
    return run_tool("runqlen", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
