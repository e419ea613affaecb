"""``bpfkit strace``: system calls of a command or a process, shown as strace shows them, captured
by BPF at the raw syscall tracepoints instead of ptrace -- the traced program is not stopped twice
per call, so it runs at close to full speed (``-c`` counts in the kernel and sends nothing).

Example::

    $ sudo bpfkit strace -c dd if=/dev/zero of=/dev/null bs=1 count=500000
    $ sudo bpfkit strace -f -e trace=openat,read -T python3 -c 'open("/etc/hostname").read()'
    $ sudo bpfkit strace -p 1234

From Python: ``summary = strace_counts(["dd", ...])`` returns the per-syscall table.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from typing import IO, Any, Optional, Sequence

import numpy as np

from ..._sys import Resource
from ...errors import BpfNotFoundError, BpfUsageError
from ...loader import open as open_object
from ..common import positive_int, process_exists, run_tool, stop_signals
from .decode import (EV_ENTER, EV_EXIT, EV_FORK, EV_NO_RETURN, Event, format_arg, format_return, parse_event, plans)
from .syscalls import arg_formats, name, resolve_names

__all__ = ["Strace", "SyscallCount", "strace_counts", "format_summary", "main"]

TRACED, WAIT_EXEC = 1, 2


@dataclass
class SyscallCount:
    """One row of ``-c``: calls, errors and wall-clock seconds inside the call."""

    name: str
    calls: int
    errors: int
    ns: int

    @property
    def seconds(self) -> float:
        return self.ns / 1e9


class Strace(Resource):
    """The strace BPF object, loaded and attached, tracing ``tids`` (and their children when
    ``follow``). ``counts_only`` is ``-c``: per-syscall counters in the kernel, no records.

    Example::

        with Strace(counts_only=True) as st:
            st.trace(pid)             # or st.trace(pid, wait_exec=True) for a child about to exec
            ...
            rows = st.counts()
    """

    def __init__(self, *, counts_only: bool = False, follow: bool = False, strsize: int = 32,
                 ring_bytes: int = 16 << 20) -> None:
        self.obj: Any = None
        spec = open_object("tools/strace")
        ro = spec.rodata
        ro.st_mode = 1 if counts_only else 0
        ro.st_follow = int(follow)
        ro.st_strsize = min(max(strsize, 1), 4096)
        ro.st_pathsize = 4096
        size = 4096
        while size < ring_bytes:
            size <<= 1
        spec.maps.events.max_entries = size
        self.counts_only = counts_only
        self.obj = spec.load()
        try:
            if not counts_only:
                table = plans(strsize)
                self.obj.maps.plans.update(np.arange(len(table), dtype=np.uint32), table)
            self._links = self.obj.attach()
        except BaseException:
            self.close()
            raise

    def trace(self, tid: int, wait_exec: bool = False) -> None:
        """Trace thread ``tid`` from now on (``wait_exec``: from its next execve, so a child
        waiting to exec is traced exactly from there, as strace traces a command)."""
        self.obj.maps.traced[np.uint32(tid)] = np.uint8(WAIT_EXEC if wait_exec else TRACED)

    def counts(self) -> list[SyscallCount]:
        """Per-syscall calls, errors and time so far (``counts_only``), in syscall number order."""
        keys, vals = self.obj.maps.counts.sum()
        out = []
        for k, v in zip(np.asarray(keys).reshape(-1), vals):
            if v["calls"]:
                out.append(SyscallCount(name(int(k)), int(v["calls"]), int(v["errors"]), int(v["ns"])))
        return out

    @property
    def reader(self) -> Any:
        return self.obj.reader("events")

    def close(self) -> None:
        obj, self.obj = getattr(self, "obj", None), None
        if obj is not None:
            obj.close()


def format_summary(rows: Sequence[SyscallCount]) -> str:
    """strace -c's table, sorted by time (then by syscall number, as strace leaves ties)."""
    total_s = sum(r.seconds for r in rows)
    total_calls = sum(r.calls for r in rows)
    total_err = sum(r.errors for r in rows)
    lines = ["% time     seconds  usecs/call     calls    errors syscall",
             "------ ----------- ----------- --------- --------- ----------------"]
    for r in sorted(rows, key=lambda r: -r.seconds):
        pct = 100.0 * r.seconds / total_s if total_s else 0.0
        usecs = (r.ns // 1000) // r.calls if r.calls else 0  # whole microseconds, as strace divides
        err = f"{r.errors:9d}" if r.errors else " " * 9
        lines.append(f"{pct:6.2f} {r.seconds:11.6f} {usecs:11d} {r.calls:9d} {err} {r.name}")
    lines.append("------ ----------- ----------- --------- --------- ----------------")
    usecs = (sum(r.ns for r in rows) // 1000) // total_calls if total_calls else 0
    err = f"{total_err:9d}" if total_err else " " * 9
    lines.append(f"{100.0 if rows else 0.0:6.2f} {total_s:11.6f} {usecs:11d} {total_calls:9d} {err} total")
    return "\n".join(lines)


# -- running a command ----------------------------------------------------------------------

def _spawn_waiting(argv: Sequence[str]) -> tuple[int, int]:
    """Fork a child that waits for a byte on a pipe, then execs ``argv``; (pid, write end)."""
    path = argv[0] if os.sep in argv[0] else shutil.which(argv[0])
    if path is None or not os.access(path, os.X_OK):
        raise BpfNotFoundError(f"Can't stat '{argv[0]}': No such file or directory")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing but the read, then exec (one execve, as strace does it)
        try:
            os.close(w)
            os.read(r, 1)
            os.execv(path, list(argv))
        finally:
            os._exit(127)
    os.close(r)
    return pid, w


def strace_counts(argv: Sequence[str], *, follow: bool = False) -> tuple[list[SyscallCount], int]:
    """Run ``argv`` under ``strace -c`` (BPF): per-syscall counts and the exit status.

    Example::

        rows, status = strace_counts(["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=1000"])
    """
    with Strace(counts_only=True, follow=follow) as st:
        pid, w = _spawn_waiting(argv)
        try:
            st.trace(pid, wait_exec=True)
            os.write(w, b"x")
        finally:
            os.close(w)
        _, status = os.waitpid(pid, 0)
        return st.counts(), os.waitstatus_to_exitcode(status)


# -- printing records ---------------------------------------------------------------------------

class Printer:
    """Records to strace's lines."""

    def __init__(self, out: IO[str], *, strsize: int, show_time: bool, prefix_pids: bool, first_tid: int,
                 only: Optional[set[str]], timestamps: int) -> None:
        self.out = out
        self.strsize = strsize
        self.show_time = show_time
        self.prefix_pids = prefix_pids
        self.first_tid = first_tid
        self.only = only
        self.timestamps = timestamps
        self.entered: dict[int, Event] = {}
        self.live: set[int] = {first_tid}  # tracees seen and not exited: more than one, and lines get [pid N]
        self.exit_code: Optional[int] = None
        self.boot_offset = time.time() - time.monotonic()

    def _prefix(self, ev: Event) -> str:
        p = ""
        if self.prefix_pids and len(self.live) > 1:
            p = f"[pid {ev.tid:>5}] "
        if self.timestamps:
            t = ev.ts / 1e9 + self.boot_offset
            if self.timestamps >= 3:
                p += f"{t:.6f} "
            else:
                lt = time.localtime(t)
                p += time.strftime("%H:%M:%S", lt) + (f".{int((t % 1) * 1e6):06d} " if self.timestamps == 2 else " ")
        return p

    def line(self, ev: Event) -> Optional[str]:
        if ev.flags & EV_FORK:
            self.live.add(ev.args[0])
            return f"bpfkit strace: Process {ev.args[0]} attached"
        self.live.add(ev.tid)
        if ev.flags & EV_EXIT:
            status = ev.args[1] or ev.args[0]
            if ev.tid == self.first_tid:
                self.exit_code = status
            sig = status & 0x7F
            what = f"killed by {_signame(sig)}" if sig else f"exited with {(status >> 8) & 0xFF}"
            text = f"{self._prefix(ev)}+++ {what} +++"
            self.live.discard(ev.tid)
            return text
        sc = name(ev.nr)
        if ev.flags & EV_ENTER:
            self.entered[ev.tid] = ev
            return None
        if self.only is not None and sc not in self.only:
            return None
        blobs = ev.blobs
        entered = self.entered.pop(ev.tid, None)
        if entered is not None and entered.nr == ev.nr:
            blobs = entered.blobs
        fmts = arg_formats(sc)
        failed = -4095 <= _s64(ev.ret) < 0
        parts = []
        k = 0
        for i, fmt in enumerate(fmts):
            if fmt == "omode":  # open's mode only matters (and strace only shows it) with O_CREAT/O_TMPFILE
                if not ev.args[i - 1] & (os.O_CREAT | getattr(os, "O_TMPFILE", 0o20200000)):
                    continue
                fmt = "o"
            blob = None
            if fmt in ("s", "bo", "stat", "ts_in", "ts_out", "fds2") or fmt.startswith("bi:"):
                blob = blobs[k] if k < len(blobs) else None
                k += 1
            length = ev.args[int(fmt[3:])] if fmt.startswith("bi:") else None
            parts.append(format_arg(fmt, ev.args[i], blob, self.strsize, _s64(ev.ret), failed, length))
        # strace starts "= " at column 40 when the call is shorter
        text = f"{self._prefix(ev)}{sc}({', '.join(parts)})"
        text = text.ljust(39) + " = "
        if ev.flags & EV_NO_RETURN:
            return text + "?"
        text += format_return(sc, ev.ret)
        if self.show_time:
            text += f" <{ev.duration / 1e9:.6f}>"
        return text


def _s64(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


def _signame(sig: int) -> str:
    import signal

    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


# -- the command --------------------------------------------------------------------------------

EXAMPLES = """examples:
  bpfkit strace ls /                               # a command, strace's output on stderr
  bpfkit strace -c dd if=/dev/zero of=/dev/null bs=1 count=500000
  bpfkit strace -f -e trace=%file sh -c 'cat /etc/hostname'
  bpfkit strace -T -e trace=read,write -p 1234
"""


def _build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bpfkit strace", description="Trace system calls with BPF, shown as strace "
                                "shows them.", epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-c", "--summary-only", action="store_true", help="count time, calls, and errors for each syscall")
    p.add_argument("-w", "--summary-wall-clock", action="store_true",
                   help="summarise wall-clock time inside each call (what -c always measures here)")
    p.add_argument("-f", "--follow-forks", action="store_true", help="trace child processes as they are created")
    p.add_argument("-e", "--expr", action="append", default=[], metavar="trace=SET",
                   help="only these calls: trace=open,read, trace=%%file, trace=!close")
    p.add_argument("-T", "--syscall-times", action="store_true", help="print the time spent in each call")
    p.add_argument("-t", "--absolute-timestamps", action="count", default=0,
                   help="prefix each line with the time of day (-tt: microseconds, -ttt: epoch)")
    p.add_argument("-s", "--string-limit", type=positive_int, default=32, help="maximum string size to print (32)")
    p.add_argument("-p", "--attach", type=positive_int, dest="pid", help="trace the process with this PID")
    p.add_argument("-o", "--output", help="write the trace to this file instead of stderr")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command to run and trace")
    return p


def _only(exprs: list[str]) -> Optional[set[str]]:
    only: Optional[set[str]] = None
    for e in exprs:
        key, sep, val = e.partition("=")
        if not sep:
            key, val = "trace", e
        if key not in ("trace", "t"):
            raise BpfUsageError(f"-e {e}: only trace=SET is supported")
        names = resolve_names(val)
        only = names if only is None else only & names
    return only


def _body(args: argparse.Namespace) -> int:
    if not args.command and args.pid is None:
        raise BpfUsageError("must have PROG [ARGS] or -p PID")
    if args.command and args.pid is not None:
        raise BpfUsageError("give a command or -p PID, not both")
    only = _only(args.expr)
    out: IO[str] = open(args.output, "w") if args.output else sys.stderr
    try:
        return _run(args, only, out)
    finally:
        if args.output:
            out.close()


def _run(args: argparse.Namespace, only: Optional[set[str]], out: IO[str]) -> int:
    status = 0
    with Strace(counts_only=args.summary_only, follow=args.follow_forks, strsize=args.string_limit) as st:
        child = None
        if args.command:
            child, w = _spawn_waiting(args.command)
            try:
                st.trace(child, wait_exec=True)
                os.write(w, b"x")
            finally:
                os.close(w)
            first = child
        else:
            if not process_exists(args.pid):
                raise BpfNotFoundError(f"attach: ptrace(PTRACE_SEIZE, {args.pid}): No such process")
            tids = [args.pid]
            if args.follow_forks:
                try:
                    tids = [int(t) for t in os.listdir(f"/proc/{args.pid}/task")]
                except OSError:
                    pass
            for t in tids:
                st.trace(t)
            first = args.pid
            print(f"bpfkit strace: Process {args.pid} attached", file=sys.stderr)
        printer = None if args.summary_only else Printer(
            out, strsize=args.string_limit, show_time=args.syscall_times, prefix_pids=args.follow_forks,
            first_tid=first, only=only, timestamps=args.absolute_timestamps)
        done = False
        with stop_signals() as stop:
            while not done:
                if child is not None:
                    pid, wstatus = os.waitpid(child, os.WNOHANG)
                    if pid:
                        status = os.waitstatus_to_exitcode(wstatus)
                        done = True
                elif not process_exists(first):
                    done = True
                if printer is not None:
                    _print_records(st, printer, out, 0.0 if done else 0.1)
                elif not done:
                    time.sleep(0.05)
        if stop.signaled and child is not None:
            pass  # strace detaches and leaves the command running; so do we
        if args.summary_only:
            rows = st.counts()
            if only is not None:
                rows = [r for r in rows if r.name in only]
            out.write(format_summary(rows) + "\n")
            out.flush()
        elif printer is not None:
            _print_records(st, printer, out, 0.0)
    if child is not None and status < 0:
        return 128 - status
    return status


def _print_records(st: Strace, printer: Printer, out: IO[str], wait: float) -> None:
    reader = st.reader
    if wait:
        reader.wait(wait)
    batch = reader.drain()
    lines = []
    for rec in batch:
        line = printer.line(parse_event(rec))
        if line is not None:
            lines.append(line)
    if lines:
        out.write("\n".join(lines) + "\n")
        out.flush()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit strace [-c] [-f] [-e trace=SET] [-T] [-t] [-s N] [-o FILE] (-p PID | COMMAND...)``."""
    return run_tool("strace", _build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
