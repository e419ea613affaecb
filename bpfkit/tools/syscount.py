"""syscount: system calls per process for a few seconds, then a table and a log2
histogram of read() sizes.

Example::

    $ sudo bpfkit syscount --duration 3
    $ sudo python -m bpfkit.tools.syscount --pid 1234
"""
from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import BpfError
from ..hist import Log2Hist, log2
from ..loader import open as open_object

__all__ = ["SyscountResult", "run", "format_result", "main"]


@dataclass
class SyscountResult:
    """What one run measured: per-process rows and the read-size log2 histogram."""

    procs: np.ndarray  # structured: pid, comm, calls, reads — sorted by calls, descending
    read_bytes: Log2Hist  # sizes returned by read()
    seconds: float
    dropped: int


def run(duration: float, pid: Optional[int] = None,
        on_attached: Optional[Callable[[], object]] = None) -> SyscountResult:
    """Trace every process (or ``pid``) for ``duration`` seconds; Ctrl-C stops early.
    ``on_attached`` is called once tracing is on (e.g. to start the workload)."""
    spec = open_object("tools/syscount")
    spec.rodata.target_pid = 0 if pid is None else pid  # 0: the BPF side counts every process
    with spec.load() as obj, obj.attach():
        if on_attached is not None:
            on_attached()
        start = time.monotonic()
        try:
            time.sleep(duration)
        except KeyboardInterrupt:
            pass
        seconds = time.monotonic() - start
        rows = [(k, v["comm"], int(v["calls"]), int(v["reads"])) for k, v in obj.maps.procs.items()]
        hist = log2(obj.maps.read_bytes)
        dropped = obj.bss.dropped
    dt = np.dtype([("pid", "u4"), ("comm", "S16"), ("calls", "u8"), ("reads", "u8")])
    procs = np.array(rows, dtype=dt)
    procs = procs[np.argsort(-procs["calls"].astype(np.int64), kind="stable")]
    return SyscountResult(procs, hist, seconds, dropped)


def format_result(res: SyscountResult, top: int = 15) -> str:
    """The table and the histogram as text."""
    out = [f"Tracing {res.seconds:.1f}s: {int(res.procs['calls'].sum())} syscalls from {len(res.procs)} processes",
           "", f"{'PID':>8}  {'COMM':<16} {'SYSCALLS':>10} {'READS':>8}"]
    for row in res.procs[:top]:
        out.append(f"{int(row['pid']):>8}  {row['comm'].decode(errors='replace'):<16} "
                   f"{int(row['calls']):>10} {int(row['reads']):>8}")
    if len(res.procs) > top:
        out.append(f"{'':>8}  ... {len(res.procs) - top} more")
    out += ["", res.read_bytes.format("@read_bytes")]
    if res.dropped:
        out.append(f"warning: {res.dropped} events not counted (process table full)")
    return "\n".join(out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: ``bpfkit syscount [--duration S] [--pid PID] [--top N]``."""
    ap = argparse.ArgumentParser(prog="bpfkit syscount", description=__doc__.split("\n\n")[0])
    ap.add_argument("-d", "--duration", type=float, default=3.0, help="seconds to trace (default 3)")
    ap.add_argument("-p", "--pid", type=int, default=None, help="only this process")
    ap.add_argument("-n", "--top", type=int, default=15, help="rows to show (default 15)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        res = run(args.duration, args.pid)
    except BpfError as e:
        print(f"syscount: {e}", file=sys.stderr)
        return 1
    print(format_result(res, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
