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
from typing import Optional, Sequence

import numpy as np

import bpfkit


@dataclass
class SyscountResult:
    """What one run measured: per-process rows and the read-size log2 histogram."""

    procs: np.ndarray  # structured: pid, comm, calls, reads — sorted by calls, descending
    read_size_log2: np.ndarray  # bpftrace log2 slots: [0], [1], [2, 4), ...
    seconds: float
    dropped: int


def run(duration: float, pid: int = 0) -> SyscountResult:
    """Trace every process (or ``pid``) for ``duration`` seconds; Ctrl-C stops early."""
    spec = bpfkit.open("tools/syscount")
    spec.rodata.target_pid = pid
    with spec.load() as obj, obj.attach():
        start = time.monotonic()
        try:
            time.sleep(duration)
        except KeyboardInterrupt:
            pass
        seconds = time.monotonic() - start
        rows = [(k, v["comm"], int(v["calls"]), int(v["reads"])) for k, v in obj.maps.procs.items()]
        hist = obj.bss.read_size_log2.copy()
        dropped = obj.bss.dropped
    dt = np.dtype([("pid", "u4"), ("comm", "S16"), ("calls", "u8"), ("reads", "u8")])
    procs = np.array(rows, dtype=dt)
    procs = procs[np.argsort(-procs["calls"].astype(np.int64), kind="stable")]
    return SyscountResult(procs, hist, seconds, dropped)


def _size_label(v: int) -> str:
    for unit, shift in (("E", 60), ("P", 50), ("T", 40), ("G", 30), ("M", 20), ("K", 10)):
        if v >= 1 << shift and v % (1 << shift) == 0:
            return f"{v >> shift}{unit}"
    return str(v)


def format_log2(counts: np.ndarray, width: int = 52) -> str:
    """bpftrace's log2 histogram layout, from slot counts [0], [1], [2, 4), ..."""
    nz = np.flatnonzero(counts)
    if not nz.size:
        return "(no data)\n"
    top = int(counts.max())
    lines = []
    for slot in range(int(nz[0]), int(nz[-1]) + 1):
        if slot < 2:
            label = f"[{slot}]"
        else:
            label = f"[{_size_label(1 << (slot - 1))}, {_size_label(1 << slot)})"
        n = int(counts[slot])
        bar = "@" * (n * width // top if top else 0)
        lines.append(f"{label:<20}{n:>8} |{bar:<{width}}|")
    return "\n".join(lines) + "\n"


def format_result(res: SyscountResult, top: int = 15) -> str:
    """The table and the histogram as text."""
    out = [f"Tracing {res.seconds:.1f}s: {int(res.procs['calls'].sum())} syscalls from {len(res.procs)} processes",
           "", f"{'PID':>8}  {'COMM':<16} {'SYSCALLS':>10} {'READS':>8}"]
    for row in res.procs[:top]:
        out.append(f"{int(row['pid']):>8}  {row['comm'].decode(errors='replace'):<16} "
                   f"{int(row['calls']):>10} {int(row['reads']):>8}")
    if len(res.procs) > top:
        out.append(f"{'':>8}  ... {len(res.procs) - top} more")
    out += ["", "@read_bytes:", format_log2(res.read_size_log2)]
    if res.dropped:
        out.append(f"warning: {res.dropped} events not counted (process table full)")
    return "\n".join(out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: ``bpfkit syscount [--duration S] [--pid PID] [--top N]``."""
    ap = argparse.ArgumentParser(prog="bpfkit syscount", description=__doc__.split("\n\n")[0])
    ap.add_argument("-d", "--duration", type=float, default=3.0, help="seconds to trace (default 3)")
    ap.add_argument("-p", "--pid", type=int, default=0, help="only this process")
    ap.add_argument("-n", "--top", type=int, default=15, help="rows to show (default 15)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        res = run(args.duration, args.pid)
    except bpfkit.BpfError as e:
        print(f"syscount: {e}", file=sys.stderr)
        return 1
    print(format_result(res, args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
