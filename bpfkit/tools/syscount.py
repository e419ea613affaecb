"""``bpfkit syscount``: system calls counted by syscall or by process, with the time spent in them
and only the failed ones if asked, like bcc's syscount(8). Runs until Ctrl-C (or ``-d``), printing
the top entries then, or every ``-i`` seconds.

Example::

    $ sudo bpfkit syscount                  # top 10 syscalls, until Ctrl-C
    $ sudo bpfkit syscount -P -d 5          # by process, for 5 seconds
    $ sudo bpfkit syscount -L -x -p 1234    # failed syscalls of one process, with their time
    $ sudo bpfkit syscount -e ENOENT -i 1   # every second: the syscalls that failed with ENOENT

    with Syscount(Scope(pid=1234), by_process=True) as sc:   # the same from Python
        time.sleep(1)
        print(format_summary(sc.read()))
"""
from __future__ import annotations

import argparse
import errno as _errno
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from .. import _sys as sc
from .._sys import Resource
from ..errors import ClosedError
from ..loader import Object
from ..loader import open as open_object
from .common import (Scope, ToolError, add_duration, add_json, add_scope, parser, positive_float, positive_int,
                     print_json, run_tool, stop_signals, ticks)

__all__ = ["ROW_DTYPE", "Summary", "Syscount", "count", "format_summary", "parse_errno", "main"]

ROW_DTYPE = np.dtype([("key", "u4"), ("name", "U32"), ("count", "u8"), ("total_ns", "u8")])
EXAMPLES = """examples:
    bpfkit syscount                 # top 10 syscalls, until Ctrl-C
    bpfkit syscount -P              # by process
    bpfkit syscount -L -m           # with the time spent in them, in ms
    bpfkit syscount -x              # only failed syscalls
    bpfkit syscount -e ENOENT       # only syscalls that failed with ENOENT
    bpfkit syscount -p 181 -i 1     # one process, a summary every second
    bpfkit syscount -c nginx -d 10  # processes named nginx, for 10 seconds
"""


@dataclass
class Summary:
    """One summary: ``rows`` (:data:`ROW_DTYPE`: key = syscall number or pid, name = syscall
    name or command) sorted by count, or by time with ``latency``; ``dropped``: syscalls not
    counted because the table was full."""

    rows: np.ndarray
    by_process: bool
    latency: bool
    dropped: int
    at: float  # time.time() when read

    def as_dict(self) -> dict[str, int]:
        """``{name: count}`` (by process: ``{"pid comm": count}``)."""
        if self.by_process:
            return {f"{r['key']} {r['name']}": int(r["count"]) for r in self.rows}
        return {str(r["name"]): int(r["count"]) for r in self.rows}


def parse_errno(text: str) -> int:
    """An errno by name (``ENOENT``) or number (``2``), as ``-e`` takes it.

    Example::

        parse_errno("EPERM")   # 1
    """
    if text.isdigit():
        value = int(text)
        if value in _errno.errorcode:
            return value
        raise argparse.ArgumentTypeError(f"{text} is not an errno this system knows")
    named = getattr(_errno, text.upper(), None)
    if isinstance(named, int) and text.upper().startswith("E"):
        return named
    raise argparse.ArgumentTypeError(f"unknown errno {text!r} (a name like ENOENT, or a number)")


class Syscount(Resource):
    """Counting system calls from construction until :meth:`close`; :meth:`read` takes a summary
    (``clear=True`` starts the next interval from zero).

    Example::

        with Syscount(Scope(pid=1234), latency=True) as s:
            time.sleep(1)
            print(s.read().as_dict())
    """

    def __init__(self, scope: Scope = Scope(), *, by_process: bool = False, latency: bool = False,
                 failures: bool = False, errno: Optional[int] = None) -> None:
        self.by_process, self.latency = by_process, latency
        self._obj: Optional[Object] = None
        spec = open_object("tools/syscount")
        scope.apply(spec)
        ro = spec.rodata
        ro.by_process, ro.measure_latency, ro.only_failures = by_process, latency, failures
        ro.only_errno = errno or 0
        obj = spec.load()
        try:
            obj.attach()
        except BaseException:
            obj.close()
            raise
        self._obj = obj

    def read(self, clear: bool = False) -> Summary:
        """The counts so far (since the last ``clear``)."""
        if self._obj is None:
            raise ClosedError("syscount is closed")
        counts = self._obj.maps.counts
        keys, values = counts.pop_all() if clear else counts.to_numpy()
        rows = np.zeros(len(keys), ROW_DTYPE)
        rows["key"], rows["count"], rows["total_ns"] = keys, values["count"], values["total_ns"]
        if self.by_process:
            rows["name"] = [bytes(c).split(b"\0", 1)[0].decode(errors="replace") for c in values["comm"]]
        else:
            rows["name"] = [sc.syscall_name(int(k)) for k in keys]
        # most first; ties by name, so the same counts always print the same way
        order = np.lexsort((rows["name"], -(rows["total_ns"] if self.latency else rows["count"]).astype(np.float64)))
        dropped = int(self._obj.bss.dropped)
        if clear:
            self._obj.bss.dropped = 0
        return Summary(rows[order], self.by_process, self.latency, dropped, time.time())

    def close(self) -> None:
        """Detach and close everything. Idempotent."""
        obj, self._obj = getattr(self, "_obj", None), None
        if obj is not None:
            obj.close()


def count(duration: float, scope: Scope = Scope(), *, by_process: bool = False, latency: bool = False,
          failures: bool = False, errno: Optional[int] = None,
          on_attached: Optional[Callable[[], object]] = None) -> Summary:
    """Count for ``duration`` seconds (Ctrl-C ends it early) and return the summary; the Python
    function behind ``bpfkit syscount``. ``on_attached`` runs once counting is on (start the
    workload there).

    Example::

        s = count(1.0, Scope(pid=1234)); print(s.as_dict())   # {'read': 300, 'writev': 1}
    """
    with Syscount(scope, by_process=by_process, latency=latency, failures=failures, errno=errno) as s:
        if on_attached is not None:
            on_attached()
        try:
            time.sleep(duration)
        except KeyboardInterrupt:  # Ctrl-C ends the count early: what was counted still counts
            pass
        return s.read()


def format_summary(s: Summary, top: int = 10, milliseconds: bool = False) -> str:
    """A summary as bcc's syscount prints it: ``[HH:MM:SS]``, a header, the top rows.

    Example::

        print(format_summary(count(1.0), top=5))
    """
    label = "PID    COMM" if s.by_process else "SYSCALL"
    out = [time.strftime("[%H:%M:%S]", time.localtime(s.at))]
    unit = "TIME (ms)" if milliseconds else "TIME (us)"
    out.append(f"{label:<22} {'COUNT':>8} {unit:>16}" if s.latency else f"{label:<22} {'COUNT':>8}")
    for r in s.rows[:top]:
        name = f"{int(r['key']):<6d} {r['name']:<15}" if s.by_process else str(r["name"])
        line = f"{name:<22} {int(r['count']):>8d}"
        if s.latency:
            t = int(r["total_ns"]) / (1e6 if milliseconds else 1e3)
            line += f" {t:>16.6f}" if milliseconds else f" {t:>16.3f}"
        out.append(line)
    if s.dropped:
        out.append(f"warning: {s.dropped} syscalls not counted: the table of {'processes' if s.by_process else 'syscalls'} "
                   "was full")
    return "\n".join(out) + "\n"


def _json(s: Summary, top: int) -> dict[str, object]:
    key = "pid" if s.by_process else "syscall"
    rows = []
    for r in s.rows[:top]:
        row: dict[str, object] = {"pid": int(r["key"]), "comm": str(r["name"])} if s.by_process else \
            {"syscall": str(r["name"]), "nr": int(r["key"])}
        row["count"] = int(r["count"])
        if s.latency:
            row["time_ns"] = int(r["total_ns"])
        rows.append(row)
    return {"time": time.strftime("%H:%M:%S", time.localtime(s.at)), "by": key, "rows": rows,
            "dropped": s.dropped}


def _body(args: argparse.Namespace) -> int:
    if args.list:
        names = sc.syscall_names()
        if not names:
            raise ToolError("no syscall table: <asm/unistd*.h> is missing (Debian: apt-get install linux-libc-dev)",
                            _errno.ENOENT)
        print("\n".join(names[n] for n in sorted(names)))
        return 0
    scope = Scope.from_args(args)
    if args.milliseconds and not args.latency:
        raise ToolError("-m shows times in milliseconds: it needs -L")
    with Syscount(scope, by_process=args.process, latency=args.latency, failures=args.failures,
                  errno=args.errno) as counter:
        what = "failed " if args.failures or args.errno else ""
        # with --json on stderr: stdout stays JSON, and whoever waits for tracing to start can see it
        print(f"Tracing {what}syscalls, printing top {args.top}... Ctrl+C to quit.", flush=True,
              file=sys.stderr if args.json else sys.stdout)
        with stop_signals():
            for _ in ticks(args.interval, None, args.duration):
                s = counter.read(clear=True)
                if args.json:
                    print_json(_json(s, args.top))
                else:
                    print(format_summary(s, args.top, args.milliseconds), flush=True)
        if not args.json:
            print("Detaching...")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit syscount [-p PID] [-t TID] [-c COMM] [--cgroup PATH] [-i INTERVAL] [-d DURATION]
    [-T TOP] [-x] [-e ERRNO] [-L] [-m] [-P] [-l] [--json]``; returns the exit status."""
    p = parser("syscount", "Summarize syscall counts and latencies.", EXAMPLES)
    add_scope(p, tid=True, comm="-c")
    p.add_argument("-i", "--interval", type=positive_float, metavar="INTERVAL",
                   help="print a summary every INTERVAL seconds")
    add_duration(p)
    p.add_argument("-T", "--top", type=positive_int, default=10, help="print only the top TOP entries (default 10)")
    p.add_argument("-x", "--failures", action="store_true", help="count only failed syscalls (return < 0)")
    p.add_argument("-e", "--errno", type=parse_errno, metavar="ERRNO",
                   help="count only syscalls that failed with this error (a name like ENOENT, or a number)")
    p.add_argument("-L", "--latency", action="store_true", help="also measure the time spent in syscalls")
    p.add_argument("-m", "--milliseconds", action="store_true", help="times in milliseconds (default: microseconds)")
    p.add_argument("-P", "--process", action="store_true", help="count by process, not by syscall")
    p.add_argument("-l", "--list", action="store_true", help="print the syscall names this machine knows, and exit")
    add_json(p)
    return run_tool("syscount", p, argv, _body)


if __name__ == "__main__":
    sys.exit(main())
