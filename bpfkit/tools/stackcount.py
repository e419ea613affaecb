"""stackcount: count the stacks that reach a probe (bcc's stackcount).

Any probe bpfkit can attach (:mod:`bpfkit.probes.spec`): ``tracepoint:CAT:NAME``, ``u:LIB:FUNC``
(or bcc's ``LIB:FUNC``), ``usdt:BIN:[PROVIDER:]NAME``, ``rawtracepoint:NAME``,
``software:EVENT:PERIOD``, and kernel functions (``kprobe:FUNC`` or a bare name) where the kernel
has kprobes. Stacks are counted in the kernel; the distinct ones are read at the end (or every
``-i`` seconds), named, and printed as bcc does.

A uprobe on a function's entry runs before the function sets up its frame, so a frame-pointer
walk skips its direct caller; the BPF side also records the return address at the top of the
stack and puts the caller back.

Example::

    $ sudo bpfkit stackcount -p 1234 u:c:malloc
    $ sudo bpfkit stackcount -K t:sched:sched_switch -D 5 -f > switch.folded

    from bpfkit.tools.stackcount import stackcount
    prof = stackcount("t:syscalls:sys_enter_getpid", 2, kernel=True, user=False)
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from collections import defaultdict
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import BpfNotFoundError
from ..loader import open as open_object
from ..probes.discovery import list_probes
from ..probes.link import Link, MultiLink
from ..probes.spec import ProbeSpec, attach_probe, parse_probe
from ..stacks import StackProfile
from ..symbols import Symbolizer
from . import _stacks
from .common import (ToolError, add_json, parser, positive_float, positive_int, run_tool, Scope, stop_signals)

__all__ = ["stackcount", "StackCountRun", "main"]

# the program of stackcount.bpf.c that runs each program type
PROGRAMS = {"tracepoint": "on_tracepoint", "raw_tracepoint": "on_raw_tracepoint", "kprobe": "on_kprobe",
            "perf_event": "on_perf_event"}


def _count_links(link: Link) -> int:
    if isinstance(link, MultiLink):
        return sum(_count_links(sub) for sub in link.links)
    return 1


def _at_entry(spec: ProbeSpec) -> bool:
    """A uprobe on a function's first instruction (not name+offset, not a return probe)."""
    return spec.kind == "uprobe" and "+" not in spec.name


def _regexp_specs(spec: ProbeSpec, regexp: str, pid: Optional[int]) -> list[ProbeSpec]:
    """bcc's -r: the probes whose name matches the regular expression, each as its own spec."""
    rx = re.compile(regexp)
    kind = {"kretprobe": "kprobe", "uretprobe": "uprobe"}.get(spec.kind, spec.kind)
    if kind == "tracepoint":
        pattern = f"tracepoint:{spec.target}:*"
    elif kind == "usdt":
        pattern = f"usdt:{spec.target or '*'}:*:*"
    elif kind == "uprobe":
        pattern = f"uprobe:{spec.target}:*"
    else:
        pattern = f"{kind}:*"
    out = []
    for p in list_probes(pattern, pid=pid):
        name = p.name.split(":", 1)[1] if kind == "usdt" else p.name
        if rx.search(name):
            if kind == "usdt":
                prov, _, nm = p.name.partition(":")
                out.append(ProbeSpec("usdt", p.target, nm, provider=prov, text=f"usdt:{p.target}:{p.name}"))
            else:
                out.append(ProbeSpec(spec.kind, spec.target if kind != "tracepoint" else p.target, name,
                                     text=f"{spec.kind}:{p.target + ':' if p.target else ''}{name}"))
    if not out:
        raise BpfNotFoundError(f"no {kind} matches the regular expression {regexp!r}")
    return out


class StackCountRun:
    """One stackcount session; :func:`stackcount` is the one-call form. After :meth:`start`,
    :meth:`read` gives the stacks so far (``clear`` for interval output); :meth:`close` detaches.

    Example::

        with StackCountRun("u:c:malloc", pid=1234) as run:
            time.sleep(5); prof = run.read().profile()
    """

    def __init__(self, probe: str, *, pid: Optional[int] = None, cpu: Optional[int] = None, user: bool = True,
                 kernel: bool = True, regexp: bool = False, offsets: bool = False,
                 stack_storage_size: int = 1024, symbolizer: Optional[Symbolizer] = None) -> None:
        if not user and not kernel:
            raise ToolError("-K and -U are mutually exclusive. If you want both stacks, that is the default.")
        self.spec = parse_probe(probe)
        self.specs = _regexp_specs(self.spec, self.spec.name, pid) if regexp else [self.spec]
        self.scope = Scope(pid=pid)
        self.scope.check()
        self.cpu, self.user, self.kernel, self.offsets = cpu, user, kernel, offsets
        self.stack_storage_size = stack_storage_size
        self.sym = symbolizer if symbolizer is not None else Symbolizer()
        self.obj: Any = None
        self.links: list[Link] = []
        self.functions = 0
        self.remember: Optional[_stacks.Rememberer] = None

    def start(self) -> "StackCountRun":
        """Load and attach (the probes count from here on)."""
        program = self.spec.program
        spec = open_object("tools/stackcount")
        spec.rodata.user_stacks, spec.rodata.kernel_stacks = self.user, self.kernel
        spec.rodata.target_cpu = -1 if self.cpu is None else self.cpu
        uprobe_entry = all(_at_entry(s) for s in self.specs)
        spec.rodata.entry_return = self.user and uprobe_entry
        spec.maps.stacks.max_entries = self.stack_storage_size
        self.scope.apply(spec)
        # kprobe-type programs serve kprobes, uprobes and USDT; SEC("uprobe") is the same type
        wanted = "on_uprobe" if self.spec.kind in ("uprobe", "uretprobe", "usdt") else PROGRAMS[program]
        for name in spec.programs:
            spec.programs[name].autoload = name == wanted
        self.obj = spec.load()
        try:
            prog = self.obj.progs[wanted]
            pid = -1 if self.scope.pid is None else self.scope.pid
            if program == "perf_event" and pid < 0 and self.cpu is not None:
                raise ToolError("-c with a perf event: the event is opened on every CPU; use -p or drop -c")
            for s in self.specs:
                link = attach_probe(prog.fd, s, pid=pid)
                self.links.append(link)
                self.functions += _count_links(link)
            if self.user:
                self.remember = _stacks.Rememberer(self.obj, self.sym, "tgid", self.scope.pid)
        except BaseException:
            self.close()
            raise
        return self

    def tick(self) -> None:
        """Remember processes seen so far (their user stacks name after they exit)."""
        if self.remember is not None:
            self.remember()

    def read(self, clear: bool = False) -> _stacks.Report:
        """The stacks counted so far, named (``clear``: and start counting afresh)."""
        rows = _stacks.read_rows(self.obj, pid_field="tgid", clear=clear)
        if self.user and len(rows) and np.any(rows.keys["entry_ret"]):
            _put_back_callers(rows)
        tracepoint = self.spec.program in ("tracepoint", "raw_tracepoint")
        report = _stacks.name_rows(rows, self.sym, user=self.user, kernel=self.kernel, offsets=self.offsets,
                                   from_tracepoint=tracepoint)
        if self.kernel and len(rows) and (rows.kernel_ids == -14).all():  # -EFAULT everywhere
            # seen on 6.1: syscalls:* programs get the user-mode registers, nothing to walk in the kernel
            hint = ("; this kernel hands syscalls:* tracepoint programs the user registers, while "
                    "t:raw_syscalls:sys_enter has kernel stacks" if self.spec.target == "syscalls" else "")
            report.warnings.append(f"the kernel gave no kernel stack at {self.spec.text}{hint}")
        return report

    def losses(self) -> _stacks.StackLosses:
        """Stacks the BPF side could not record so far."""
        return _stacks.stack_losses(self.obj)

    @property
    def hits(self) -> int:
        """Probe hits in scope so far."""
        return int(self.obj.bss.hits)

    def close(self) -> None:
        """Detach and unload."""
        for link in self.links:
            link.close()
        self.links = []
        if self.obj is not None:
            self.obj.close()
            self.obj = None

    def __enter__(self) -> "StackCountRun":
        return self.start() if self.obj is None else self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _put_back_callers(rows: _stacks.Rows) -> None:
    """Insert each key's entry return address as the second user frame (see the module docs)."""
    ret = rows.keys["entry_ret"].astype(np.uint64)
    has = (ret != 0) & (rows.user[:, 0] != 0)
    if not has.any():
        return
    user = rows.user.copy()
    user[has, 2:] = rows.user[has, 1:-1]
    user[has, 1] = ret[has]
    rows.user = user


def _profile(report: _stacks.Report, per_pid: bool, delimited: bool, title: str) -> StackProfile:
    if per_pid:
        return report.profile(unit="samples", delimited=delimited, title=title)
    # bcc without -P: stacks of every process together, no process frame
    stacks, counts = [], []
    for e in report.entries:
        stacks.append(report.frames(e, delimited, ""))
        counts.append(e.count)
    prof = StackProfile.from_frames(stacks, counts, title=title, kinds=report.kinds)
    prof.warnings = list(report.warnings)
    return prof


def stackcount(probe: str, duration: Optional[float] = 10.0, *, pid: Optional[int] = None,
               cpu: Optional[int] = None, user: bool = True, kernel: bool = True, per_pid: bool = False,
               regexp: bool = False, offsets: bool = False, stack_storage_size: int = 1024,
               symbolizer: Optional[Symbolizer] = None,
               on_attached: Optional[Callable[[], Any]] = None) -> StackProfile:
    """Count the stacks reaching ``probe`` for ``duration`` seconds (None: until Ctrl-C).

    ``per_pid`` roots each stack at its command name (bcc's -P); ``offsets`` names frames
    ``func+0x1a``. ``prof.lost`` counts hits whose stack could not be stored.

    Example::

        prof = stackcount("u:/usr/bin/python3:PyObject_Malloc", 5, pid=1234, kernel=False)
    """
    with StackCountRun(probe, pid=pid, cpu=cpu, user=user, kernel=kernel, regexp=regexp, offsets=offsets,
                       stack_storage_size=stack_storage_size, symbolizer=symbolizer) as run:
        if on_attached is not None:
            on_attached()
        _stacks.run_until(duration, run.tick)
        report = run.read()
        losses = run.losses()
    prof = _profile(report, per_pid, False, f"stackcount {probe}")
    prof.lost = losses.lost
    return prof


# -- command ----------------------------------------------------------------------------------------

EXAMPLES = """examples:
    bpfkit stackcount submit_bio         # count kernel stack traces for submit_bio (needs kprobes)
    bpfkit stackcount -d ip_output       # include a user/kernel stack delimiter
    bpfkit stackcount -s ip_output       # show symbol offsets
    bpfkit stackcount -sv ip_output      # show offsets and raw addresses (verbose)
    bpfkit stackcount 'tcp_send*'        # count stacks for funcs matching tcp_send*
    bpfkit stackcount -r '^tcp_send.*'   # same as above, using regular expressions
    bpfkit stackcount -Ti 5 ip_output    # output every 5 seconds, with timestamps
    bpfkit stackcount -p 185 c:malloc    # count stacks for malloc in PID 185 (also u:c:malloc)
    bpfkit stackcount t:sched:sched_fork # count stacks for sched_fork tracepoint
    bpfkit stackcount -p 185 'usdt:node:*'  # count stacks for all USDT probes in node
    bpfkit stackcount -K t:sched:sched_switch   # kernel stacks only
    bpfkit stackcount -U t:sched:sched_switch   # user stacks only
    bpfkit stackcount -f -D 5 --svg out.svg t:syscalls:sys_enter_write   # folded, and a flame graph
probes: tracepoint:CAT:NAME (t:), rawtracepoint:NAME, u:BIN:FUNC or BIN:FUNC (uprobe),
        usdt:BIN:[PROVIDER:]NAME, software:EVENT:PERIOD, kprobe:FUNC or FUNC (kernels with kprobes)
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("stackcount", "Count events and their stack traces", EXAMPLES)
    p.add_argument("-p", "--pid", type=positive_int, help="trace this PID only")
    p.add_argument("-c", "--cpu", type=int, help="trace this CPU only")
    p.add_argument("-i", "--interval", type=positive_float, help="summary interval, seconds")
    p.add_argument("-D", "--duration", type=positive_float, help="total duration of trace, seconds")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-r", "--regexp", action="store_true",
                   help='use regular expressions. Default is "*" wildcards only.')
    p.add_argument("-s", "--offset", action="store_true", help="show address offsets")
    p.add_argument("-P", "--perpid", action="store_true", help="display stacks separately for each process")
    _stacks.add_stack_options(p, storage_default=1024, delimited="-d")
    p.add_argument("-v", "--verbose", action="store_true", help="show raw addresses")
    add_json(p)
    p.add_argument("pattern", help="the probe: e.g. t:sched:sched_switch, u:c:malloc, usdt:BIN:NAME, FUNC")
    return p


def print_default(report: _stacks.Report, args: argparse.Namespace, out: Any = None) -> None:
    """bcc's multi-line output: kernel frames, then user frames, innermost first; ``comm [pid]``
    with -P; then the count. Without -P equal stacks of different processes are one."""
    out = out if out is not None else sys.stdout  # looked up now: tests and callers swap sys.stdout
    groups: dict[tuple[Any, ...], list[_stacks.Entry]] = defaultdict(list)
    for e in report.entries:
        key: tuple[Any, ...] = (tuple(e.kernel or ()), tuple(e.user or ()))
        if args.perpid:
            key += (e.pid,)
        if args.verbose:
            key += (tuple(e.kernel_addrs), tuple(e.user_addrs))
        groups[key].append(e)
    order = sorted(groups.values(), key=lambda g: sum(x.count for x in g))
    for g in order:
        e = g[0]
        lines = []
        addr = (lambda a: f"{a:<16x} ") if args.verbose else (lambda a: "")
        if report.want_kernel:
            for i, n in enumerate(e.kernel or ()):
                lines.append(f"  {addr(e.kernel_addrs[i]) if i < len(e.kernel_addrs) else ''}{n}")
        if args.delimited and report.want_kernel and report.want_user:
            lines.append("    --")
        if report.want_user:
            for i, n in enumerate(e.user or ()):
                lines.append(f"  {addr(e.user_addrs[i]) if i < len(e.user_addrs) else ''}{n}")
        if args.perpid and not args.pid:
            lines.append(f"    {e.comm} [{e.pid}]")
        lines.append(f"    {int(sum(x.count for x in g))}\n")
        out.write("\n".join(lines) + "\n")


def body(args: argparse.Namespace) -> int:
    run = StackCountRun(args.pattern, pid=args.pid, cpu=args.cpu, user=not args.kernel_stacks_only,
                        kernel=not args.user_stacks_only, regexp=args.regexp, offsets=args.offset,
                        stack_storage_size=args.stack_storage_size)
    per_pid = args.perpid or args.pid is not None  # bcc: -p implies per-process stacks
    total: Optional[StackProfile] = None
    with run:
        if not (args.folded or args.json):
            print(f'Tracing {run.functions} functions for "{args.pattern}"... Hit Ctrl-C to end.', flush=True)
        deadline = None if args.duration is None else time.monotonic() + args.duration
        last = False
        with stop_signals():
            while not last:
                wait = args.interval
                if deadline is not None:
                    left = max(0.0, deadline - time.monotonic())
                    wait = left if wait is None else min(wait, left)
                last = _stacks.run_until(wait, run.tick) or args.interval is None or (
                    deadline is not None and time.monotonic() >= deadline)
                report = run.read(clear=args.interval is not None)
                prof = _profile(report, per_pid, args.delimited, f"stackcount {args.pattern}")
                losses = run.losses()
                prof.lost = losses.lost
                total = prof if total is None else total + prof
                if not args.folded and not args.json:
                    print()
                if args.timestamp:
                    print(time.strftime("%H:%M:%S"))
                if args.json:
                    _stacks.dump_json(report, prof, losses, "samples")
                elif args.folded:
                    sys.stdout.write(prof.folded())
                else:
                    print_default(report, argparse.Namespace(**{**vars(args), "perpid": per_pid}))
                sys.stdout.flush()
    if total is not None:
        _stacks.write_outputs(total, args)
        _stacks.print_warnings(total, losses, report.missing)
    if not (args.folded or args.json):
        print("Detaching...")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit stackcount [-p PID] [-c CPU] [-i S] [-D S] [-T] [-r] [-s] [-P] [-K|-U] [-v] [-d] [-f] PROBE``"""
    return run_tool("stackcount", build_parser(), argv, body)


if __name__ == "__main__":
    sys.exit(main())
