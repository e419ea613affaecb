"""funccount: count calls of every function, tracepoint or USDT probe matching a pattern, like
bcc's ``funccount`` -- one prebuilt program attached to all targets, each with a cookie naming
its counter: one uprobe_multi (or kprobe_multi) link for many functions where the kernel has it,
one probe per target otherwise.

Patterns (``*`` wildcards, or regular expressions with ``-r``)::

    $ sudo bpfkit funccount 'c:str*'                     # libc's str* functions
    $ sudo bpfkit funccount 't:syscalls:sys_enter_*'     # every syscall entry tracepoint
    $ sudo bpfkit funccount -p 1234 -i 1 'c:malloc'
    $ sudo bpfkit funccount 'vfs_*'                       # kernel functions (kprobes)
    $ sudo bpfkit funccount 'u:/usr/bin/python3:function__*'

From Python::

    counts = funccount("c:str*", duration=5)      # {'strlen': 1234, ...}
"""
from __future__ import annotations

import argparse
import fnmatch
import re
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np

from .. import _sys as sc
from .._sys import Resource
from .. import features
from ..errors import BpfNotFoundError
from ..loader import open as open_object
from ..probes.link import LinkGroup
from ..probes.spec import ProbeSpec, ProbeSpecError, check_probe, parse_probe
from .common import Scope, nonnegative_int, parser, positive_float, positive_int, print_json, run_tool, stop_signals

__all__ = ["Target", "parse_pattern", "targets", "Counter", "funccount", "main"]


@dataclass(frozen=True)
class Target:
    """One thing counted: ``name`` as printed; ``where`` how to attach (a function name, a file
    offset, ``category:event``, ``provider:name``)."""

    name: str
    where: Any


def parse_pattern(text: str, regex: bool = False) -> ProbeSpec:
    """bcc's funccount patterns: ``func``, ``lib:func``, ``p::func``, ``p:lib:func``,
    ``t:cat:event``, ``u:lib:probe``, with ``*`` wildcards (``regex``: regular expressions in the
    last part, as ``-r``).

    Example::

        parse_pattern("c:str*").binary        # 'c'
    """
    if not regex:
        spec = parse_probe(text, signature=False, patterns=True, u="usdt")
        if spec.is_return:
            raise ProbeSpecError(text, 0, "funccount counts calls: use p:, t: or u:, not a return probe")
        if spec.offset:
            raise ProbeSpecError(text, spec.span("offset")[0], "funccount takes no +offset")
        return spec
    parts = text.split(":")
    if len(parts) == 1:
        parts = ["p", "", parts[0]]
    elif len(parts) == 2:
        parts = ["p", parts[0], parts[1]]
    elif len(parts) == 4 and parts[0] == "u":
        parts = ["u", parts[1], parts[2] + ":" + parts[3]]
    if len(parts) != 3 or parts[0] not in ("p", "t", "u"):
        raise ProbeSpecError(text, 0, "expected [p:][LIBRARY:]REGEX, t:CATEGORY:REGEX or u:LIBRARY:REGEX")
    try:
        re.compile(parts[2])
    except re.error as e:
        raise ProbeSpecError(text, len(text) - len(parts[2]) + (e.pos or 0), f"bad regular expression: {e.msg}") \
            from None
    kind = {"t": "tracepoint", "u": "usdt"}.get(parts[0], "uprobe" if parts[1] else "kprobe")
    return ProbeSpec(kind, parts[1], parts[2], text=text)


def _matcher(pattern: str, regex: bool) -> Callable[[str], bool]:
    if regex:
        rx = re.compile(pattern)
        return lambda name: rx.search(name) is not None
    return lambda name: fnmatch.fnmatchcase(name, pattern)


def targets(spec: ProbeSpec, regex: bool = False) -> list[Target]:
    """Everything ``spec`` matches, one Target per attach point (aliases of one function are one).

    Example::

        [t.name for t in targets(parse_pattern("c:strl*"))]   # ['strlen', 'strlcpy', ...]
    """
    match = _matcher(spec.name, regex)
    if spec.kind == "tracepoint":
        from ..probes.discovery import list_probes

        cats = "*" if regex else spec.category
        out = [Target(f"{p.target}:{p.name}", (p.target, p.name)) for p in list_probes(f"tracepoint:{cats}:*")
               if match(p.name) and (not regex or p.target == spec.category)]
        return out
    if spec.kind == "kprobe":
        from ..probes.kprobe import kernel_functions

        features.require("kprobes", str(spec))
        names = kernel_functions("*") if regex or spec.is_pattern else kernel_functions(spec.name)
        return [Target(n, n) for n in names if match(n)]
    from ..binaries import read_usdt_notes, resolve_library

    path = resolve_library(spec.binary)
    if spec.kind == "usdt":
        seen: dict[tuple[str, str], None] = {}
        for n in read_usdt_notes(path):
            full = f"{n.provider}:{n.name}"
            if (match(n.name) or match(full)) and (not spec.provider or n.provider == spec.provider):
                seen.setdefault((n.provider, n.name), None)
        return [Target(f"{p}:{n}", (path, p, n)) for p, n in seen]
    from ..binaries.functions import matching

    return [Target(name, (path, off)) for name, off in matching(path, spec.name, regex)]


def _syscall_slots(found: list[Target]) -> Optional[dict[str, dict[int, int]]]:
    """For targets that are all ``syscalls:sys_{enter,exit}_NAME`` of this machine's syscall
    table: {"enter"|"exit": {syscall number: slot + 1}}; else None (one perf event each)."""
    from .strace.syscalls import TRACEPOINT_NAMES, table

    by_tp = {TRACEPOINT_NAMES.get(n, n): nr for n, nr in table().items() if 0 <= nr < 1024}
    out: dict[str, dict[int, int]] = {"enter": {}, "exit": {}}
    for slot, t in enumerate(found):
        cat, name = t.where
        side, _, call = name.partition("_")[2].partition("_")
        if cat != "syscalls" or side not in out or call not in by_tp:
            return None
        out[side][by_tp[call]] = slot + 1
    return out if len(found) > 1 else None


class Counter(Resource):
    """``spec``'s targets counted in the kernel. :meth:`read` returns the counts since the last
    read (exact: the BPF side only adds, Python subtracts what it printed before).

    Example::

        with Counter(parse_pattern("c:str*")) as c:
            time.sleep(1); print(c.read())
    """

    def __init__(self, spec: ProbeSpec, *, regex: bool = False, scope: Optional[Scope] = None,
                 cpu: Optional[int] = None, multi: Optional[bool] = None) -> None:
        self.spec = spec
        self.obj: Any = None
        self.links = LinkGroup()
        self.targets = targets(spec, regex)
        if not self.targets:
            raise BpfNotFoundError(f"no {spec.kind} matches {spec.text!r}")
        obj_spec = open_object("tools/funccount")
        prog_name = {"tracepoint": "fc_tp", "usdt": "fc_usdt"}.get(spec.kind, "fc_fn")
        self.syscalls = _syscall_slots(self.targets) if spec.kind == "tracepoint" and multi is not False else None
        wanted = {prog_name}
        if self.syscalls is not None:
            wanted = {f"fc_sys_{side}" for side, slots in self.syscalls.items() if slots}
        for p in obj_spec.programs.values():
            p.autoload = p.name in wanted
        self.multi = False
        if spec.kind in ("uprobe", "kprobe") and len(self.targets) > 1:
            feature = "uprobe_multi" if spec.kind == "uprobe" else "kprobe_multi"
            self.multi = features.check(feature)[0] if multi is None else multi
            if self.multi:
                obj_spec.programs.fc_fn.expected_attach_type = (sc.BPF_TRACE_UPROBE_MULTI if spec.kind == "uprobe"
                                                                else sc.BPF_TRACE_KPROBE_MULTI)
        obj_spec.maps.counts.max_entries = len(self.targets)
        if cpu is not None:
            obj_spec.rodata.fc_cpu = cpu
        scope = scope or Scope()
        scope.apply(obj_spec)
        self.obj = obj_spec.load()
        try:
            self._attach(self.obj.progs[prog_name] if prog_name in self.obj.progs else None, scope.pid)
        except BaseException:
            self.close()
            raise
        self._last = np.zeros(len(self.targets), np.uint64)

    def _attach(self, prog: Any, pid: Optional[int]) -> None:
        kind = self.spec.kind
        if self.syscalls is not None:
            for side, slots in self.syscalls.items():
                if not slots:
                    continue
                m = self.obj.maps[f"sys_{side}_slots"]
                m.update(np.array(list(slots), np.uint32), np.array(list(slots.values()), np.uint32))
                self.links.add(self.obj.progs[f"fc_sys_{side}"].attach())
            return
        if kind == "tracepoint":
            for i, t in enumerate(self.targets):
                self.links.add(prog.attach_tracepoint(*t.where, cookie=i))
        elif kind == "usdt":
            for i, t in enumerate(self.targets):
                path, provider, name = t.where
                self.links.add(prog.attach_usdt(path, provider, name, pid=pid, cookie=i))
        elif kind == "kprobe":
            if self.multi:
                from ..probes.kprobe import attach_kprobe_multi

                self.links.add(attach_kprobe_multi(prog.fd, [t.where for t in self.targets],
                                                   cookies=list(range(len(self.targets))),
                                                   description=f"kprobe.multi {self.spec.name}"))
            else:
                for i, t in enumerate(self.targets):
                    self.links.add(prog.attach_kprobe(t.where, cookie=i))
        else:
            from ..probes.uprobe import attach_uprobe_multi, attach_uprobe_offset

            path = self.targets[0].where[0]
            if self.multi:
                self.links.add(attach_uprobe_multi(prog.fd, path, [t.where[1] for t in self.targets],
                                                   pid=-1 if pid is None else pid,
                                                   cookies=list(range(len(self.targets))),
                                                   description=f"uprobe.multi {path}:{self.spec.name}"))
            else:
                for i, t in enumerate(self.targets):
                    self.links.add(attach_uprobe_offset(prog.fd, path, t.where[1], pid=-1 if pid is None else pid,
                                                        cookie=i, what=f"uprobe {path}:{t.name}"))

    def totals(self) -> np.ndarray:
        """Calls per target since attaching (summed over CPUs)."""
        _, v = self.obj.maps.counts.sum()
        return np.asarray(v, np.uint64).reshape(-1)[: len(self.targets)]

    def read(self) -> dict[str, int]:
        """Calls per target name since the last read (targets not called are left out)."""
        now = self.totals()
        delta = now - self._last
        self._last = now
        out: dict[str, int] = {}
        for t, d in zip(self.targets, delta):
            if d:
                out[t.name] = out.get(t.name, 0) + int(d)
        return out

    def close(self) -> None:
        links = getattr(self, "links", None)
        if links is not None:
            links.close()
        obj, self.obj = getattr(self, "obj", None), None
        if obj is not None:
            obj.close()


def funccount(pattern: str, *, pid: Optional[int] = None, duration: float = 1.0, regex: bool = False,
              cpu: Optional[int] = None, on_attached: Optional[Callable[[], Any]] = None) -> dict[str, int]:
    """Count calls of everything ``pattern`` matches for ``duration`` seconds (Ctrl-C ends it
    early); ``on_attached`` runs once counting is on.

    Example::

        funccount("c:str*", pid=1234, duration=5)     # {'strlen': 1200, 'strchr': 45}
    """
    spec = parse_pattern(pattern, regex)
    if not regex and not spec.is_pattern:
        check_probe(spec, pid)
    scope = Scope(pid)
    scope.check()
    with Counter(spec, regex=regex, scope=scope, cpu=cpu) as c:
        if on_attached is not None:
            on_attached()
        try:
            time.sleep(duration)
        except KeyboardInterrupt:
            pass
        return c.read()


EXAMPLES = """examples:
    bpfkit funccount 'vfs_*'             # count kernel fns starting with "vfs"
    bpfkit funccount -r '^vfs.*'         # same as above, using regular expressions
    bpfkit funccount -Ti 5 'vfs_*'       # output every 5 seconds, with timestamps
    bpfkit funccount -d 10 'vfs_*'       # trace for 10 seconds only
    bpfkit funccount -p 185 'vfs_*'      # count vfs calls for PID 185 only
    bpfkit funccount t:sched:sched_fork  # count calls to the sched_fork tracepoint
    bpfkit funccount 't:syscalls:sys_enter_*'
    bpfkit funccount -p 185 u:node:gc*   # count all GC USDT probes in node, PID 185
    bpfkit funccount c:malloc            # count all malloc() calls in libc
    bpfkit funccount ./test:read*        # count "read*" calls in the ./test binary
    bpfkit funccount -c 1 'vfs_*'        # count vfs calls on CPU 1 only
"""


def _build_parser() -> argparse.ArgumentParser:
    p = parser("funccount", "Count functions, tracepoints, and USDT probes", EXAMPLES)
    p.add_argument("-p", "--pid", type=positive_int, help="trace this PID only")
    p.add_argument("-i", "--interval", type=positive_float, help="summary interval, seconds")
    p.add_argument("-d", "--duration", type=positive_float, help="total duration of trace, seconds")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-r", "--regexp", action="store_true", help="use regular expressions. Default is \"*\" wildcards only.")
    p.add_argument("-c", "--cpu", type=nonnegative_int, help="trace this CPU only")
    p.add_argument("--no-multi", action="store_true",
                   help="one probe per function even where uprobe_multi/kprobe_multi links exist")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("pattern", help="search expression for events")
    return p


def _body(args: argparse.Namespace) -> int:
    spec = parse_pattern(args.pattern, args.regexp)
    if not args.regexp and not spec.is_pattern:
        check_probe(spec, args.pid)
    scope = Scope(args.pid)
    scope.check()
    with Counter(spec, regex=args.regexp, scope=scope, cpu=args.cpu, multi=False if args.no_multi else None) as c:
        if not args.json:
            print(f'Tracing {len(c.targets)} functions for "{args.pattern}"... Hit Ctrl-C to end.', flush=True)
        interval = args.interval or args.duration
        deadline = None if args.duration is None else time.monotonic() + args.duration
        next_at = None if interval is None else time.monotonic() + interval
        with stop_signals():
            while True:
                wait = None if next_at is None else max(0.0, next_at - time.monotonic())
                stopped = False
                try:
                    if wait is None:
                        while True:
                            time.sleep(3600)
                    time.sleep(wait)
                except KeyboardInterrupt:
                    stopped = True
                last = stopped or (deadline is not None and time.monotonic() >= deadline - 1e-3)
                _print(c.read(), args)
                if last:
                    break
                assert next_at is not None and interval is not None
                next_at += interval
        if not args.json:
            print("Detaching...")
    return 0


def _print(counts: dict[str, int], args: argparse.Namespace) -> None:
    if args.json:
        print_json({"time": time.strftime("%H:%M:%S"), "counts": counts})
        return
    print()
    if args.timestamp:
        print("%-8s\n" % time.strftime("%H:%M:%S"), end="")
    print("%-36s %8s" % ("FUNC", "COUNT"))
    for name, n in sorted(counts.items(), key=lambda kv: kv[1]):
        print("%-36s %8d" % (name, n))
    sys.stdout.flush()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit funccount [options] PATTERN`` (bcc's funccount options)."""
    return run_tool("funccount", _build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
