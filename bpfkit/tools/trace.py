"""trace: print a line per call of any function, tracepoint or USDT probe, like bcc's ``trace`` --
without a compiler: the probe configures a prebuilt program (see :mod:`bpfkit.tools.oneliner`).

A probe is ``SPEC [(FILTER)] ["FORMAT"[, ARG...]]``::

    $ sudo bpfkit trace 'p:c:open "%s", arg1'
    $ sudo bpfkit trace 'r:c:malloc (retval) "allocated = %x", retval'
    $ sudo bpfkit trace 't:syscalls:sys_enter_openat "%s", args->filename' -p 1234
    $ sudo bpfkit trace 'p:c:write(int fd, char *buf, size_t count) (fd == 1) "%d bytes: %s", count, buf'
    $ sudo bpfkit trace -U 'p:c:malloc(size_t size) (size > 4096) "%d", size'

The same from Python, as numpy batches::

    for batch in bpfkit.trace("p:c:malloc(size_t size)", filter="size > 4096", duration=5):
        print(batch["size"], batch["pid"])
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from ..errors import BpfUsageError
from ..probes.spec import ProbeSpec, ProbeSpecError, check_probe, parse_probe, parse_probe_prefix
from .common import (Scope, add_json, nonnegative_int, parser, positive_float, positive_int, print_json,
                     run_tool, stop_signals)
from .oneliner.engine import DEFAULT_RING_BYTES, BatchEnv, Tracer
from .oneliner.expr import Expr, evaluate, name_of, parse_expr, split_top
from .oneliner.plan import Plan, build_plan

__all__ = ["TraceProbe", "parse_trace_probe", "trace", "format_messages", "main"]

# printf conversions bcc's trace accepts, and the C type each one casts its value to
_CONV = re.compile(r"%([-+ #0]*\d*(?:\.\d+)?)(llu|lld|llx|lu|ld|lx|hhd|hhu|hd|hu|d|i|u|x|X|c|s|p|K|U)")
_CASTS = {"d": "<i4", "i": "<i4", "u": "<u4", "x": "<u4", "X": "<u4", "ld": "<i8", "lld": "<i8", "lu": "<u8",
          "llu": "<u8", "lx": "<u8", "llx": "<u8", "hd": "<i2", "hu": "<u2", "hhd": "<i1", "hhu": "<u1",
          "c": "<u1", "p": "<u8", "K": "<u8", "U": "<u8"}


@dataclass
class TraceProbe:
    """One probe of ``bpfkit trace``: the spec, its filter, format string and arguments."""

    text: str
    spec: ProbeSpec
    filter: Optional[str] = None
    filter_base: int = 0
    format: str = ""
    format_base: int = 0
    convs: list[tuple[str, str]] = field(default_factory=list)  # (flags/width, conversion)
    args: list[Expr] = field(default_factory=list)

    @property
    def strings(self) -> set[str]:
        """Names whose strings the format prints with %s."""
        out: set[str] = set()
        for (_, conv), e in zip(self.convs, self.args):
            if conv == "s":
                n = name_of(e.tree)
                if n is not None:
                    out.add(n)
            out |= e.strings
        return out


def _unescape(text: str, base: int, whole: str) -> str:
    try:
        return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError as e:
        raise ProbeSpecError(whole, base + e.start, "bad escape in the format string") from None


def parse_trace_probe(text: str) -> TraceProbe:
    """Parse ``SPEC [(FILTER)] ["FORMAT"[, ARG...]]`` (bcc's trace syntax); errors show a caret.

    Example::

        p = parse_trace_probe('p:c:open (arg2 == 0) "%s", arg1')
        p.filter, p.format, [a.text for a in p.args]    # ('arg2 == 0', '%s', ['arg1'])
    """
    spec, pos = parse_probe_prefix(text, patterns=False, u="usdt")
    probe = TraceProbe(text, spec)
    pos = _skip(text, pos)
    if pos < len(text) and text[pos] == "(":
        depth, end = 0, pos
        while end < len(text):
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            if depth == 0:
                break
            end += 1
        if end >= len(text):
            raise ProbeSpecError(text, pos, "expected ')' closing the filter")
        probe.filter, probe.filter_base = text[pos + 1:end], pos + 1
        parse_expr(probe.filter, text, probe.filter_base)  # errors now, with the caret in place
        pos = _skip(text, end + 1)
    if pos < len(text):
        if text[pos] != '"':
            raise ProbeSpecError(text, pos, "expected a filter in (...) or a format string in \"...\"")
        end = pos + 1
        while end < len(text) and text[end] != '"':
            end += 2 if text[end] == "\\" else 1
        if end >= len(text):
            raise ProbeSpecError(text, pos, "expected '\"' closing the format string")
        probe.format, probe.format_base = _unescape(text[pos + 1:end], pos + 1, text), pos + 1
        rest = text[end + 1:]
        rest_base = end + 1
        pieces = split_top(rest, ",")
        if pieces[0][0].strip():
            raise ProbeSpecError(text, rest_base + len(pieces[0][0]) - len(pieces[0][0].lstrip()),
                                 "expected ',' and the arguments after the format string")
        for piece, start in pieces[1:]:
            probe.args.append(parse_expr(piece, text, rest_base + start))
        probe.convs = [(m.group(1), m.group(2)) for m in _CONV.finditer(probe.format.replace("%%", ""))]
        if len(probe.convs) != len(probe.args):
            raise ProbeSpecError(text, probe.format_base, f"the format has {len(probe.convs)} conversions "
                                 f"but {len(probe.args)} arguments follow")
    return probe


def _skip(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def plan_for(probe: TraceProbe, *, string_size: int = 80, ustack: bool = False, kstack: bool = False) -> Plan:
    """The oneliner plan of a parsed trace probe."""
    names = set().union(*(a.names for a in probe.args)) if probe.args else set()
    if probe.filter:
        names |= parse_expr(probe.filter, probe.text, probe.filter_base).names
    paired = probe.spec.is_return and any(n == "latency" or n.startswith("entry__") for n in names)
    plan = build_plan(probe.spec, strings=probe.strings, filter=probe.filter, string_size=string_size,
                      ustack=ustack, kstack=kstack, paired=paired, filter_base=probe.filter_base,
                      filter_spec=probe.text)
    known = set(plan.ints) | set(plan.strings)
    for a in probe.args:
        for n in a.names:
            if n not in known:
                raise ProbeSpecError(probe.text, a.base, f"unknown name {n!r} in {a.text!r}; known names: "
                                     + ", ".join(sorted(known)))
    return plan


# -- formatting ------------------------------------------------------------------------------

class _Stacks:
    def __init__(self, addresses: bool) -> None:
        from ..symbols import Symbolizer

        self.sym = Symbolizer()
        self.addresses = addresses
        self.seen: set[int] = set()

    def lines(self, tracer: Tracer, index: int, stack_id: int, pid: Optional[int]) -> list[str]:
        if pid is not None and pid not in self.seen:
            self.seen.add(pid)
            self.sym.remember(pid)  # its mappings now, while it runs: it may exit before the next event
        if stack_id < 0:
            return [f"        {stack_id}"]
        addrs = tracer.sessions[index].stack(stack_id)
        try:
            frames = self.sym.kernel(addrs) if pid is None else self.sym.user(pid, addrs)
            labels = frames.labels(offset=True, module=True)
        except Exception:  # the process exited: addresses are all we have
            labels = ["[unknown]"] * len(addrs)
        return [f"        {int(a):16x} {lab}" if self.addresses else f"        {lab}" for a, lab in zip(addrs, labels)]


def format_messages(probe: TraceProbe, plan: Plan, batch: np.ndarray,
                    symbol: Optional[Callable[[str, int, int], str]] = None) -> list[str]:
    """The message of every event of ``batch``: ``probe``'s format with its arguments evaluated on
    the batch (vectorised), then one ``%`` per event."""
    n = len(batch)
    if not probe.format:
        return [""] * n
    env = BatchEnv(plan, batch)
    columns: list[list[Any]] = []
    fmt = probe.format.replace("%%", "\0")
    pieces = []
    last = 0
    for m, (flags, conv), e in zip(_CONV.finditer(fmt), probe.convs, probe.args):
        pieces.append(fmt[last:m.start()].replace("%", "%%"))
        last = m.end()
        if conv == "s":
            name = name_of(e.tree)
            v = evaluate(e, env, as_string=name is not None and name in plan.strings)
            if isinstance(v, np.ndarray) and v.dtype.kind == "S":
                col = [x.decode("utf-8", "replace") for x in v]
            else:
                col = [str(x) for x in np.broadcast_to(v, (n,))]
            pieces.append(f"%{flags}s")
        else:
            v = evaluate(e, env)
            ints = np.broadcast_to(np.asarray(v), (n,)).astype(np.int64 if np.asarray(v).dtype.kind != "u"
                                                               else np.uint64)
            cast = ints.astype(np.dtype(_CASTS[conv]))
            if conv == "c":
                col = [chr(int(x)) for x in cast]
                pieces.append(f"%{flags}s")
            elif conv == "p":
                col = [f"0x{int(x):x}" for x in cast]
                pieces.append(f"%{flags}s")
            elif conv in ("K", "U"):
                col = [symbol(conv, int(x), int(p)) if symbol else f"0x{int(x):x}"
                       for x, p in zip(cast, batch["pid"])]
                pieces.append(f"%{flags}s")
            else:
                col = [int(x) for x in cast]
                py = {"x": "x", "lx": "x", "llx": "x", "X": "X"}.get(conv, "d")
                pieces.append(f"%{flags}{py}")
        columns.append(col)
    pieces.append(fmt[last:].replace("%", "%%"))
    template = "".join(pieces).replace("\0", "%%")
    return [template % row for row in zip(*columns)] if columns else [template % ()] * n


# -- the Python API ---------------------------------------------------------------------------

def trace(probe: str, filter: Optional[str] = None, *, pid: Optional[int] = None, tid: Optional[int] = None,
          comm: Optional[str] = None, cgroup: Optional[str] = None, strings: Any = "all", string_size: int = 80,
          user_stack: bool = False, kernel_stack: bool = False, duration: Optional[float] = None,
          timeout: Optional[float] = None, max_events: Optional[int] = None, ring_bytes: int = DEFAULT_RING_BYTES,
          bpf_filter: bool = True, on_attached: Optional[Callable[[], Any]] = None) -> Iterator[np.ndarray]:
    """Trace ``probe`` (bcc or bpftrace syntax, with an optional C signature) and yield its events
    as numpy batches: ``ts``, ``pid``, ``tid``, ``uid``, ``gid``, ``cpu``, ``comm``, then the
    probe's values -- ``arg1``..``arg6`` and the signature's names (entry probes), ``retval``
    (return probes), the tracepoint's fields, ``arg1``.. (USDT) -- and the strings behind
    ``char *`` values (``strings="all"``, or a set of names). ``filter`` is a C expression: its
    simple ``&&``-parts (``size > 4096``, ``fd == 3``, ``flags & 0x40``) run in BPF, so events they
    reject never reach user space; the rest runs on each batch with numpy.

    Ends after ``duration`` seconds, ``timeout`` seconds without events, ``max_events`` events,
    or Ctrl-C (leaving the loop early also detaches). ``on_attached`` is called once the probe is
    live (start a workload there).

    Example::

        for batch in bpfkit.trace("p:c:malloc(size_t size)", filter="size > 4096", duration=5):
            print(batch["size"].sum())
        for b in bpfkit.trace("t:syscalls:sys_enter_openat", pid=1234, max_events=10):
            print(b["filename"])
    """
    spec = parse_probe(probe, patterns=False, u="usdt")
    check_probe(spec, pid)
    plan = build_plan(spec, strings=strings, filter=filter, string_size=string_size, ustack=user_stack,
                      kstack=kernel_stack, bpf_filter=bpf_filter,
                      paired=spec.is_return and bool(filter and ("$latency" in filter or "$entry" in filter)))
    scope = Scope(pid, tid, comm, cgroup)
    scope.check()
    seen = 0
    with Tracer([plan], scope=scope, ring_bytes=ring_bytes) as tracer:
        if on_attached is not None:
            on_attached()
        for _, batch in tracer.batches(duration=duration, timeout=timeout):
            if max_events is not None and seen + len(batch) >= max_events:
                yield batch[: max_events - seen]
                return
            seen += len(batch)
            yield batch


# -- the command ------------------------------------------------------------------------------

EXAMPLES = """examples:
  bpfkit trace do_sys_openat2                     # kprobe, a line per call
  bpfkit trace 'p:c:open "%s", arg1'              # libc open() and its path
  bpfkit trace 'r:c:malloc (retval) "allocated = %x", retval'
  bpfkit trace 'p:c:write (arg1 == 1) "writing %d bytes to STDOUT", arg3'
  bpfkit trace 't:syscalls:sys_enter_openat "%s", args->filename'
  bpfkit trace 'u:/usr/bin/python3:function__entry "%s", arg2'
  bpfkit trace -U 'p:c:malloc(size_t size) (size > 4096) "%d", size'
"""


def _build_parser() -> argparse.ArgumentParser:
    p = parser("trace", "Attach to functions and print trace messages.", EXAMPLES)
    p.add_argument("-b", "--buffer-pages", type=positive_int, default=64,
                   help="pages of ring buffer per CPU (default 64)")
    p.add_argument("-p", "--pid", type=positive_int, help="id of the process to trace")
    p.add_argument("-L", "--tid", type=positive_int, help="id of the thread to trace")
    p.add_argument("--uid", type=nonnegative_int, help="id of the user to trace")
    p.add_argument("-c", "--cgroup-path", dest="cgroup", metavar="CGROUP_PATH", help="cgroup path")
    p.add_argument("-Z", "--string-size", type=positive_int, default=80, help="maximum size to read from strings")
    p.add_argument("-S", "--include-self", action="store_true", help="do not filter trace's own pid from the trace")
    p.add_argument("-M", "--max-events", type=positive_int, help="number of events to print before quitting")
    p.add_argument("-t", "--timestamp", action="store_true", help="print timestamp column (offset from trace start)")
    p.add_argument("-u", "--unix-timestamp", action="store_true",
                   help="print UNIX timestamp instead of offset from trace start, requires -t")
    p.add_argument("-T", "--time", action="store_true", help="print time column")
    p.add_argument("-C", "--print_cpu", action="store_true", help="print CPU id")
    p.add_argument("-n", "--name", help="only print process names containing this name")
    p.add_argument("-f", "--msg-filter", help="only print the msg of event containing this string")
    p.add_argument("-K", "--kernel-stack", action="store_true", help="output kernel stack trace")
    p.add_argument("-U", "--user-stack", action="store_true", help="output user stack trace")
    p.add_argument("-a", "--address", action="store_true", help="print virtual address in stacks")
    p.add_argument("-A", "--aggregate", action="store_true", help="aggregate amount of each trace (needs -M)")
    p.add_argument("-d", "--duration", type=positive_float, metavar="SECONDS", help="trace for this many seconds")
    add_json(p)
    p.add_argument("probes", nargs="+", metavar="probe", help="probe specifier (see examples)")
    return p


def _body(args: argparse.Namespace) -> int:
    if args.aggregate and args.max_events is None:
        raise BpfUsageError("-M/--max-events should be specified with -A/--aggregate")
    probes = [parse_trace_probe(t) for t in args.probes]
    for pr in probes:
        check_probe(pr.spec, args.pid)
    plans = [plan_for(pr, string_size=args.string_size, ustack=args.user_stack, kstack=args.kernel_stack)
             for pr in probes]
    scope = Scope(args.pid, args.tid, None, args.cgroup)
    scope.check()
    ring = args.buffer_pages * 4096 * (os.cpu_count() or 1)
    me = os.getpid()
    out = sys.stdout
    stacks = _Stacks(args.address) if (args.user_stack or args.kernel_stack) else None
    sym = _Symbols() if any(c in ("K", "U") for pr in probes for _, c in pr.convs) else None
    if args.pid is not None:  # its mappings now: it may exit before its first event is printed
        if stacks is not None and args.user_stack:
            stacks.seen.add(args.pid)
            stacks.sym.remember(args.pid)
        if sym is not None:
            sym.sym.remember(args.pid)
    printed = 0
    counts: dict[str, int] = {}
    with Tracer(plans, scope=scope, ring_bytes=ring) as tracer:
        first_ts = time.monotonic_ns()
        first_real = time.time()
        if not args.json:
            head = ""
            if args.timestamp or args.time:
                head += ("%-17s " if args.unix_timestamp else "%-8s ") % "TIME"
            if args.print_cpu:
                head += "%-3s " % "CPU"
            trivial = all(not pr.format for pr in probes)
            head += "%-7s %-7s %-15s %-16s %s" % ("PID", "TID", "COMM", "FUNC", "" if trivial else "-")
            print(head, flush=True)
        with stop_signals():
            for i, batch in _in_time_order(tracer.rounds(
                    duration=args.duration, stop=lambda: args.max_events is not None and printed >= args.max_events),
                    tracer):
                if not args.include_self:
                    batch = batch[batch["pid"] != me]
                if args.uid is not None:
                    batch = batch[batch["uid"] == args.uid]
                if args.name:
                    batch = batch[np.char.find(batch["comm"], args.name.encode()) >= 0]
                if not len(batch):
                    continue
                probe, plan = probes[i], plans[i]
                msgs = format_messages(probe, plan, batch, sym.lookup if sym else None)
                lines = []
                for k, (rec, msg) in enumerate(zip(batch, msgs)):
                    if args.msg_filter and args.msg_filter not in msg:
                        continue
                    if args.json:
                        print_json({"ts": int(rec["ts"]), "pid": int(rec["pid"]), "tid": int(rec["tid"]),
                                    "comm": rec["comm"], "cpu": int(rec["cpu"]), "func": probe.spec.display_name,
                                    "msg": msg}, out)
                    else:
                        line = ""
                        if args.timestamp or args.time:
                            if args.timestamp:
                                off = (int(rec["ts"]) - first_ts) * 1e-9
                                t = "%.6f" % (off + first_real if args.unix_timestamp else off)
                            else:
                                t = time.strftime("%H:%M:%S")
                            line += ("%-17s " % t[:17]) if args.unix_timestamp else ("%-8s " % t[:8])
                        if args.print_cpu:
                            line += "%-3s " % int(rec["cpu"])
                        line += "%-7d %-7d %-15s %-16s %s" % (int(rec["pid"]), int(rec["tid"]),
                                                              rec["comm"].decode("utf-8", "replace"),
                                                              probe.spec.display_name, msg)
                        if stacks is not None:
                            extra = []
                            if args.kernel_stack:
                                extra += stacks.lines(tracer, i, int(rec["kstack"]), None)
                            if args.user_stack:
                                extra += stacks.lines(tracer, i, int(rec["ustack"]), int(rec["pid"]))
                            line += "\n" + "\n".join(extra) + "\n"
                        if args.aggregate:
                            counts[line] = counts.get(line, 0) + 1
                        else:
                            lines.append(line)
                    printed += 1
                    if args.max_events is not None and printed >= args.max_events:
                        break
                if lines:
                    out.write("\n".join(lines) + "\n")
                    out.flush()
                if args.max_events is not None and printed >= args.max_events:
                    break
        if args.aggregate:
            for line, c in sorted(counts.items(), key=lambda kv: kv[1], reverse=True):
                print("%s-->COUNT %d\n\n" % (line, c), end="")
        lost = tracer.dropped
    if lost:
        print(f"Possibly lost {lost} samples", file=sys.stderr)
    return 0


def _in_time_order(rounds: Iterator[list[tuple[int, np.ndarray]]], tracer: Tracer) -> Iterator[tuple[int, np.ndarray]]:
    """Events of several probes in timestamp order, as runs of one probe. The buffers are read one
    after the other, so a look can find a later buffer's records newer than what it found in an
    earlier one, whose next records come only in the next look: records stamped after the moment
    of the look wait for the next one (bcc's trace prints each buffer as it comes)."""
    held: list[tuple[int, np.ndarray]] = []
    for group in rounds:
        if len(group) == 1 and not held and len(tracer.sessions) == 1:
            yield group[0]
            continue
        yield from _ordered(held + group, tracer.looked_ns, held)
    yield from _ordered(list(held), None, held)


def _ordered(group: list[tuple[int, np.ndarray]], until: Optional[int],
             held: list[tuple[int, np.ndarray]]) -> Iterator[tuple[int, np.ndarray]]:
    """Runs of ``group`` in time order up to ``until`` (all when None); the rest replaces ``held``."""
    if not group:
        return
    ts = np.concatenate([b["ts"] for _, b in group])
    which = np.concatenate([np.full(len(b), k) for k, (_, b) in enumerate(group)])
    pos = np.concatenate([np.arange(len(b)) for _, b in group])
    order = np.argsort(ts, kind="stable")
    which, pos, ts = which[order], pos[order], ts[order]
    n = len(ts) if until is None else int(np.searchsorted(ts, np.uint64(until), side="right"))
    held[:] = [(group[int(k)][0], group[int(k)][1][pos[n:][which[n:] == k]]) for k in np.unique(which[n:])]
    which, pos = which[:n], pos[:n]
    cuts = np.flatnonzero(np.diff(which)) + 1
    for seg_w, seg_p in zip(np.split(which, cuts), np.split(pos, cuts)):
        if len(seg_w):
            i, b = group[int(seg_w[0])]
            yield i, b[seg_p]


class _Symbols:
    """%K / %U: an address as ``symbol+0xoff [module]``."""

    def __init__(self) -> None:
        from ..symbols import Symbolizer

        self.sym = Symbolizer()

    def lookup(self, conv: str, addr: int, pid: int) -> str:
        try:
            frames = self.sym.kernel([addr]) if conv == "K" else self.sym.user(pid, [addr])
            return frames.labels(offset=True, module=conv == "U")[0]
        except Exception:
            return f"0x{addr:x}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit trace [options] PROBE...`` (bcc's trace options)."""
    return run_tool("trace", _build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
