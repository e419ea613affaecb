"""offcputime: time threads spend blocked (off CPU), per stack (bcc's offcputime).

At each ``sched_switch`` the thread leaving the CPU has its user and kernel stacks taken; when it
runs again the time in between is added to (thread, stacks) in the kernel. Attached with tp_btf
(raw_tp where the kernel has no tp_btf); no kprobes. Times are in microseconds, as in bcc.

Example::

    $ sudo bpfkit offcputime -p 1234 -d 5 --svg offcpu.svg
    $ sudo bpfkit offcputime -m 1000 -f 10 > offcpu.folded     # blocks of 1 ms or more

    from bpfkit.tools.offcputime import offcputime
    prof = offcputime(5, pid=1234)        # StackProfile in µs
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Optional, Sequence

from .. import features
from ..loader import open as open_object
from ..stacks import StackProfile
from ..symbols import Symbolizer
from . import _stacks
from .common import (ToolError, add_json, nonnegative_int, parser, positive_float, positive_int, run_tool, Scope,
                     stop_signals)

__all__ = ["offcputime", "OffCpuRun", "main"]

U64_MAX = (1 << 64) - 1


class OffCpuRun:
    """One off-CPU tracing session; :func:`offcputime` is the one-call form. :attr:`report` has
    the named stacks per thread, :attr:`losses` what the kernel side could not record.

    Example::

        run = OffCpuRun(pid=1234, min_block_us=1000); run.run(5); prof = run.profile()
    """

    def __init__(self, *, pid: Optional[int] = None, tid: Optional[int] = None, user_threads_only: bool = False,
                 kernel_threads_only: bool = False, user: bool = True, kernel: bool = True,
                 min_block_us: int = 1, max_block_us: int = U64_MAX, state: Optional[int] = None,
                 stack_storage_size: int = 1024, symbolizer: Optional[Symbolizer] = None) -> None:
        if not user and not kernel:
            raise ToolError("nothing to trace: user and kernel stacks are both off")
        if user_threads_only and kernel_threads_only:
            raise ToolError("-u and -k exclude each other")
        if kernel_threads_only and user:
            raise ToolError("kernel threads have no user stacks: with -k use -K")
        if min_block_us > max_block_us:
            raise ToolError(f"-m {min_block_us} is more than -M {max_block_us}")
        self.scope = Scope(pid=pid, tid=tid)
        self.scope.check()
        self.user_threads_only, self.kernel_threads_only = user_threads_only, kernel_threads_only
        self.user, self.kernel = user, kernel
        self.min_ns = min(min_block_us * 1000, U64_MAX)
        self.max_ns = min(max_block_us * 1000, U64_MAX) if max_block_us != U64_MAX else U64_MAX
        self.state = state
        self.stack_storage_size = stack_storage_size
        self.sym = symbolizer if symbolizer is not None else Symbolizer()
        self.report: Optional[_stacks.Report] = None
        self.losses = _stacks.StackLosses()
        self.start_full = 0
        self.signaled = False

    def run(self, duration: Optional[float] = None, on_attached: Optional[Callable[[], Any]] = None) -> "OffCpuRun":
        """Trace for ``duration`` seconds (None: until Ctrl-C/SIGTERM), then read and name the stacks."""
        spec = open_object("tools/offcputime")
        ro = spec.rodata
        ro.user_stacks, ro.kernel_stacks = self.user, self.kernel
        ro.user_threads_only, ro.kernel_threads_only = self.user_threads_only, self.kernel_threads_only
        ro.min_block_ns, ro.max_block_ns = self.min_ns, self.max_ns
        if self.state is not None:
            ro.filter_state, ro.state = True, self.state
        spec.maps.stacks.max_entries = self.stack_storage_size
        self.scope.apply(spec)
        # tp_btf gets the task pointers typed; raw_tp is the same program for kernels without it
        use_btf = features.check("tp_btf")[0]
        spec.programs.switch_btf.autoload = use_btf
        spec.programs.switch_raw.autoload = not use_btf
        with spec.load() as obj:
            prog = obj.progs.switch_btf if use_btf else obj.progs.switch_raw
            with prog.attach_btf() if use_btf else prog.attach_raw_tracepoint("sched_switch"):
                tick = _stacks.Rememberer(obj, self.sym, "tgid", self.scope.pid) if self.user else None
                if on_attached is not None:
                    on_attached()
                self.signaled = _stacks.run_until(duration, tick)
            rows = _stacks.read_rows(obj, pid_field="tgid", tid_field="pid")
            self.losses = _stacks.stack_losses(obj)
            self.start_full = int(obj.bss.start_full)
        self.losses.keys_full += self.start_full
        self.report = _stacks.name_rows(rows, self.sym, user=self.user, kernel=self.kernel, scale=1000.0,
                                       from_tracepoint=True)
        return self

    def profile(self, delimited: bool = False) -> StackProfile:
        """Blocked time per stack, in microseconds (``comm;user frames;kernel frames``)."""
        assert self.report is not None, "run() first"
        prof = self.report.profile(unit="us", delimited=delimited, title="Off-CPU Time Flame Graph")
        prof.lost = self.losses.lost
        return prof


def offcputime(duration: Optional[float] = 10.0, *, pid: Optional[int] = None, tid: Optional[int] = None,
               user_threads_only: bool = False, kernel_threads_only: bool = False, user: bool = True,
               kernel: bool = True, min_block_us: int = 1, max_block_us: int = U64_MAX, state: Optional[int] = None,
               stack_storage_size: int = 1024, symbolizer: Optional[Symbolizer] = None,
               on_attached: Optional[Callable[[], Any]] = None) -> StackProfile:
    """Blocked time per stack (µs) over ``duration`` seconds (None: until Ctrl-C).

    ``min_block_us``/``max_block_us`` keep only blocks of that length; ``state`` only threads
    leaving the CPU in that state, a bitmask as in bcc (1: TASK_INTERRUPTIBLE, 2: TASK_UNINTERRUPTIBLE;
    0: exactly runnable, i.e. preempted).

    Example::

        prof = offcputime(3, pid=proc.pid)
        prof.functions()[0]            # the function most time was spent blocked in
    """
    run = OffCpuRun(pid=pid, tid=tid, user_threads_only=user_threads_only, kernel_threads_only=kernel_threads_only,
                    user=user, kernel=kernel, min_block_us=min_block_us, max_block_us=max_block_us, state=state,
                    stack_storage_size=stack_storage_size, symbolizer=symbolizer)
    return run.run(duration, on_attached).profile()


# -- command ----------------------------------------------------------------------------------------

EXAMPLES = """examples:
    bpfkit offcputime             # trace off-CPU stack time until Ctrl-C
    bpfkit offcputime 5           # trace for 5 seconds only (also: -d 5)
    bpfkit offcputime -f 5        # 5 seconds, and output in folded format
    bpfkit offcputime --svg off.svg 5   # 5 seconds, and an interactive flame graph
    bpfkit offcputime -m 1000     # trace only events that last more than 1000 usec
    bpfkit offcputime -M 10000    # trace only events that last less than 10000 usec
    bpfkit offcputime -p 185      # only trace threads for PID 185
    bpfkit offcputime -t 188      # only trace thread 188
    bpfkit offcputime -u          # only trace user threads (no kernel)
    bpfkit offcputime -k          # only trace kernel threads (no user)
    bpfkit offcputime -U          # only show user space stacks (no kernel)
    bpfkit offcputime -K          # only show kernel space stacks (no user)
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("offcputime", "Summarize off-CPU time by stack trace", EXAMPLES)
    g = p.add_mutually_exclusive_group()
    g.add_argument("-p", "--pid", type=positive_int, help="trace this PID only")
    g.add_argument("-t", "--tid", type=positive_int, help="trace this TID only")
    g.add_argument("-u", "--user-threads-only", action="store_true", help="user threads only (no kernel threads)")
    g.add_argument("-k", "--kernel-threads-only", action="store_true", help="kernel threads only (no user threads)")
    _stacks.add_stack_options(p, storage_default=1024)
    p.add_argument("-m", "--min-block-time", type=nonnegative_int, default=1, metavar="MIN_BLOCK_TIME",
                   help="the amount of time in microseconds over which we store traces (default 1)")
    p.add_argument("-M", "--max-block-time", type=nonnegative_int, default=U64_MAX, metavar="MAX_BLOCK_TIME",
                   help="the amount of time in microseconds under which we store traces (default U64_MAX)")
    p.add_argument("--state", type=nonnegative_int,
                   help="filter on this thread state bitmask (eg, 2 == TASK_UNINTERRUPTIBLE) see include/linux/sched.h")
    p.add_argument("-d", "--duration", type=positive_float, metavar="SECONDS",
                   help="trace for this many seconds (default: until Ctrl-C)")
    add_json(p)
    p.add_argument("seconds", nargs="?", type=positive_float, metavar="duration",
                   help="duration of trace, in seconds (as -d)")
    return p


def print_default(report: _stacks.Report, delimited: bool, out: Any = None) -> None:
    """bcc's multi-line output: kernel frames, user frames (innermost first), ``-  comm (tid)``,
    then the total µs; least blocked first."""
    out = out if out is not None else sys.stdout  # looked up now: tests and callers swap sys.stdout
    for e in report.entries:
        lines = []
        if report.want_kernel:
            lines += ["    [Missed Kernel Stack]"] if e.kernel is None else [f"    {n}" for n in e.kernel]
        if report.want_user:
            if delimited and e.user and e.kernel:
                lines.append("    --")
            lines += ["    [Missed User Stack]"] if e.user is None else [f"    {n}" for n in e.user]
        lines.append(f"    {'-':<16} {e.comm} ({e.tid})")
        lines.append(f"        {int(e.count)}\n")
        out.write("\n".join(lines) + "\n")


def body(args: argparse.Namespace) -> int:
    duration = args.duration if args.duration is not None else args.seconds
    run = OffCpuRun(pid=args.pid, tid=args.tid, user_threads_only=args.user_threads_only,
                    kernel_threads_only=args.kernel_threads_only,
                    user=not args.kernel_stacks_only and not args.kernel_threads_only,
                    kernel=not args.user_stacks_only, min_block_us=args.min_block_time,
                    max_block_us=args.max_block_time, state=args.state, stack_storage_size=args.stack_storage_size)

    def header() -> None:  # once attached, as bcc prints it
        if args.folded or args.json:
            return
        who = (f"PID {args.pid}" if args.pid else f"TID {args.tid}" if args.tid else
               "user threads" if args.user_threads_only else "kernel threads" if args.kernel_threads_only
               else "all threads")
        what = "user" if args.user_stacks_only else "kernel" if (args.kernel_stacks_only or
                                                                  args.kernel_threads_only) else "user + kernel"
        when = f" for {duration:g} secs." if duration else "... Hit Ctrl-C to end."
        print(f"Tracing off-CPU time (us) of {who} by {what} stack{when}", flush=True)
    with stop_signals():
        run.run(duration, on_attached=header)
    if run.report is None:
        return 0
    prof = run.profile(delimited=args.delimited)
    if args.json:
        _stacks.dump_json(run.report, prof, run.losses, "us")
    elif args.folded:
        sys.stdout.write(prof.folded())
    else:
        print()
        print_default(run.report, args.delimited)
    _stacks.write_outputs(prof, args)
    _stacks.print_warnings(prof, run.losses, run.report.missing)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit offcputime [-p PID | -t TID | -u | -k] [-U | -K] [-m US] [-M US] [--state N] [-f] [duration]``"""
    return run_tool("offcputime", build_parser(), argv, body)


if __name__ == "__main__":
    sys.exit(main())
