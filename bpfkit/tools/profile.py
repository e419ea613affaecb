"""profile: sample stack traces on every CPU at a timed interval (bcc's profile).

A ``cpu-clock`` software perf event fires ``-F`` times a second on each CPU (49 Hz by default);
each sample counts its (process, user stack, kernel stack) in the kernel, and only the distinct
stacks are read at the end, named, and printed as bcc does (or folded, or as a flame graph).

Example::

    $ sudo bpfkit profile -F 99 -p 1234 -d 10 --svg cpu.svg
    $ sudo bpfkit profile -f 5 > out.folded

    from bpfkit.tools.profile import profile
    prof = profile(duration=2, pid=1234)          # a StackProfile
    prof.functions()[:5]; prof.write_svg("cpu.svg")
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Optional, Sequence

from ..loader import open as open_object
from ..stacks import StackProfile
from ..symbols import Symbolizer
from . import _stacks
from .common import (ToolError, add_json, parser, positive_float, positive_int, run_tool, Scope,
                     stop_signals)

__all__ = ["profile", "ProfileRun", "main"]


class ProfileRun:
    """One profiling session, for callers that want more than the folded profile: the named
    stacks per process (:attr:`report`), the loss counters (:attr:`losses`) and the sample count.
    :func:`profile` is the one-call form.

    Example::

        run = ProfileRun(pid=1234); run.run(2); prof = run.profile()
    """

    def __init__(self, *, pid: Optional[int] = None, tid: Optional[int] = None, frequency: int = 49,
                 period: int = 0, user: bool = True, kernel: bool = True, include_idle: bool = False,
                 cpu: Optional[int] = None, stack_storage_size: int = 16384,
                 symbolizer: Optional[Symbolizer] = None) -> None:
        if not user and not kernel:
            raise ToolError("nothing to sample: user and kernel stacks are both off")
        if frequency and period:
            raise ToolError("give a frequency or a period, not both")
        self.scope = Scope(pid=pid, tid=tid)
        self.scope.check()
        self.frequency, self.period = (frequency, 0) if not period else (0, period)
        self.user, self.kernel = user, kernel
        self.include_idle, self.cpu = include_idle, cpu
        self.stack_storage_size = stack_storage_size
        self.sym = symbolizer if symbolizer is not None else Symbolizer()
        self.report: Optional[_stacks.Report] = None
        self.losses = _stacks.StackLosses()
        self.samples = 0
        self.signaled = False

    def run(self, duration: Optional[float] = None, on_attached: Optional[Callable[[], Any]] = None) -> "ProfileRun":
        """Sample for ``duration`` seconds (None: until Ctrl-C/SIGTERM), then read and name the stacks."""
        spec = open_object("tools/profile")
        spec.rodata.user_stacks = self.user
        spec.rodata.kernel_stacks = self.kernel
        spec.rodata.include_idle = self.include_idle
        spec.maps.stacks.max_entries = self.stack_storage_size
        spec.maps.counts.max_entries = self.stack_storage_size
        self.scope.apply(spec)
        with spec.load() as obj:
            cpus = None if self.cpu is None else [self.cpu]
            with obj.progs.do_sample.attach_perf_event("cpu-clock", frequency=self.frequency, period=self.period,
                                                       cpus=cpus):
                tick = _stacks.Rememberer(obj, self.sym, "pid", self.scope.pid) if self.user else None
                if on_attached is not None:
                    on_attached()
                self.signaled = _stacks.run_until(duration, tick)
            rows = _stacks.read_rows(obj, pid_field="pid")
            self.losses = _stacks.stack_losses(obj)
            self.samples = int(obj.bss.samples)
        self.report = _stacks.name_rows(rows, self.sym, user=self.user, kernel=self.kernel)
        return self

    def profile(self, delimited: bool = False) -> StackProfile:
        """The samples as a StackProfile (``comm;user frames;kernel frames``, bcc's folding)."""
        assert self.report is not None, "run() first"
        prof = self.report.profile(unit="samples", delimited=delimited, title="CPU profile")
        prof.lost = self.losses.lost
        return prof


def profile(duration: Optional[float] = 10.0, *, pid: Optional[int] = None, tid: Optional[int] = None,
            frequency: int = 49, period: int = 0, user: bool = True, kernel: bool = True,
            include_idle: bool = False, cpu: Optional[int] = None, stack_storage_size: int = 16384,
            symbolizer: Optional[Symbolizer] = None,
            on_attached: Optional[Callable[[], Any]] = None) -> StackProfile:
    """Sample stacks for ``duration`` seconds (None: until Ctrl-C) and return them folded.

    ``pid``/``tid`` limit sampling to a process or thread; ``user``/``kernel`` pick the stacks;
    ``frequency`` (Hz) or ``period`` (every N ns of CPU clock); idle CPUs are skipped unless
    ``include_idle``. ``prof.warnings`` names binaries without frame pointers; ``prof.lost``
    counts samples whose stack could not be stored.

    Example::

        prof = profile(2, pid=proc.pid)
        print(prof.folded())
    """
    run = ProfileRun(pid=pid, tid=tid, frequency=frequency, period=period, user=user, kernel=kernel,
                     include_idle=include_idle, cpu=cpu, stack_storage_size=stack_storage_size, symbolizer=symbolizer)
    return run.run(duration, on_attached).profile()


# -- command ----------------------------------------------------------------------------------------

EXAMPLES = """examples:
    bpfkit profile             # profile stack traces at 49 Hertz until Ctrl-C
    bpfkit profile -F 99       # profile stack traces at 99 Hertz
    bpfkit profile -c 1000000  # profile stack traces every 1 in a million events (ns of CPU clock)
    bpfkit profile 5           # profile at 49 Hertz for 5 seconds only (also: -d 5)
    bpfkit profile -f 5        # output in folded format for flame graphs
    bpfkit profile --svg cpu.svg 10   # 10 seconds, and an interactive flame graph
    bpfkit profile -p 185      # only profile process with PID 185
    bpfkit profile -L 185      # only profile thread with TID 185
    bpfkit profile -U          # only show user space stacks (no kernel)
    bpfkit profile -K          # only show kernel space stacks (no user)
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("profile", "Profile CPU stack traces at a timed interval", EXAMPLES)
    g = p.add_mutually_exclusive_group()
    g.add_argument("-p", "--pid", type=positive_int, help="profile this process only")
    g.add_argument("-L", "--tid", type=positive_int, help="profile this thread only")
    s = p.add_mutually_exclusive_group()
    s.add_argument("-F", "--frequency", type=positive_int, help="sample frequency, Hertz (default 49)")
    s.add_argument("-c", "--count", type=positive_int, help="sample period, number of events")
    _stacks.add_stack_options(p, storage_default=16384)
    p.add_argument("-a", "--annotations", action="store_true", help="add _[k] annotations to kernel frames")
    p.add_argument("-I", "--include-idle", action="store_true", help="include CPU idle stacks")
    p.add_argument("-C", "--cpu", type=int, help="cpu number to run profile on")
    p.add_argument("-d", "--duration", type=positive_float, metavar="SECONDS",
                   help="profile for this many seconds (default: until Ctrl-C)")
    add_json(p)
    p.add_argument("seconds", nargs="?", type=positive_float, metavar="duration",
                   help="duration of trace, in seconds (as -d)")
    return p


def annotate(prof: StackProfile) -> StackProfile:
    """bcc's -a: kernel frames get a ``_[k]`` suffix."""
    stacks = [tuple(f + "_[k]" if prof.kinds.get(f) == "kernel" else f for f in st) for st in prof.stacks]
    kinds = {**prof.kinds, **{f + "_[k]": "kernel" for f, k in prof.kinds.items() if k == "kernel"}}
    out = StackProfile.from_frames(stacks, prof.counts, unit=prof.unit, title=prof.title, kinds=kinds)
    out.warnings, out.lost = prof.warnings, prof.lost
    return out


def print_default(report: _stacks.Report, delimited: bool, annotations: bool, out: Any = None) -> None:
    """bcc's multi-line output: kernel frames then user frames, innermost first, then
    ``-  comm (pid)`` and the count; lightest stack first."""
    out = out if out is not None else sys.stdout  # looked up now: tests and callers swap sys.stdout
    k_suffix = "_[k]" if annotations else ""
    for e in report.entries:
        lines = []
        if report.want_kernel:
            lines += ["    [Missed Kernel Stack]"] if e.kernel is None else [f"    {n}{k_suffix}" for n in e.kernel]
        if report.want_user:
            if delimited and e.user and e.kernel:
                lines.append("    --")
            lines += ["    [Missed User Stack]"] if e.user is None else [f"    {n}" for n in e.user]
        lines.append(f"    {'-':<16} {e.comm} ({e.pid})")
        lines.append(f"        {int(e.count)}\n")
        out.write("\n".join(lines) + "\n")


def body(args: argparse.Namespace) -> int:
    duration = args.duration if args.duration is not None else args.seconds
    run = ProfileRun(pid=args.pid, tid=args.tid, frequency=0 if args.count else (args.frequency or 49),
                     period=args.count or 0, user=not args.kernel_stacks_only, kernel=not args.user_stacks_only,
                     include_idle=args.include_idle, cpu=args.cpu, stack_storage_size=args.stack_storage_size)

    def header() -> None:  # once attached, as bcc prints it
        if args.folded or args.json:
            return
        rate = f"{run.frequency} Hertz" if run.frequency else f"every {run.period} events"
        who = f"PID {args.pid}" if args.pid else f"TID {args.tid}" if args.tid else "all threads"
        what = "user" if args.user_stacks_only else "kernel" if args.kernel_stacks_only else "user + kernel"
        where = f" on CPU#{args.cpu}" if args.cpu is not None else ""
        when = f" for {duration:g} secs." if duration else "... Hit Ctrl-C to end."
        print(f"Sampling at {rate} of {who} by {what} stack{where}{when}", flush=True)
    with stop_signals():
        run.run(duration, on_attached=header)
    if run.report is None:  # stopped before sampling began
        return 0
    prof = run.profile(delimited=args.delimited)
    if args.annotations:
        prof = annotate(prof)
    if args.json:
        _stacks.dump_json(run.report, prof, run.losses, "samples")
    elif args.folded:
        sys.stdout.write(prof.folded())
    else:
        print()
        print_default(run.report, args.delimited, args.annotations)
    _stacks.write_outputs(prof, args)
    _stacks.print_warnings(prof, run.losses, run.report.missing)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit profile [-p PID | -L TID] [-U | -K] [-F HZ | -c N] [-f] [--svg FILE] [-d SECONDS] [duration]``"""
    return run_tool("profile", build_parser(), argv, body)


if __name__ == "__main__":
    sys.exit(main())
