"""argdist: the distribution of a function's arguments or return values -- a frequency count
(``-C``) or a log2 histogram (``-H``) of any expression over them, printed every interval, as
bcc's ``argdist`` does, without a compiler.

A specifier is ``{p,r,t,u}:{[library],category}:function(signature)[:type[,type...]:expr[,expr...][:filter]][#label]``::

    $ sudo bpfkit argdist -C 'p:c:malloc(size_t size):size_t:size'
    $ sudo bpfkit argdist -H 'r:c:read():ssize_t:$retval'
    $ sudo bpfkit argdist -H 'r:c:malloc(size_t size):u64:$latency'         # ns per call
    $ sudo bpfkit argdist -C 't:syscalls:sys_enter_openat():int:args->flags'
    $ sudo bpfkit argdist -C 'p:c:write(int fd):int:fd' -T 5 -i 5

The events come from the generic probe program; aggregation is numpy on each batch. From Python::

    res = argdist("p:c:malloc(size_t size):size_t:size", kind="count", duration=5)
    res.counts          # {(16,): 123, (32,): 40, ...}
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..errors import BpfUsageError
from ..probes.spec import ProbeSpecError, c_type, check_probe, parse_probe_prefix
from .common import Scope, add_json, parser, positive_float, positive_int, print_json, run_tool, stop_signals
from .oneliner.engine import DEFAULT_RING_BYTES, BatchEnv, Tracer
from .oneliner.expr import Expr, c_type_safe, evaluate, name_of, parse_expr, split_top
from .oneliner.plan import Plan, build_plan

__all__ = ["ArgdistProbe", "parse_specifier", "log2_slots", "bcc_log2_hist", "ArgdistResult", "argdist", "main"]


@dataclass
class ArgdistProbe:
    """One ``-C``/``-H`` specifier: the probe, the value types and expressions, the filter, the
    label; ``kind`` is "count" or "hist"."""

    text: str
    kind: str
    spec: Any
    types: list[str]
    exprs: list[Expr]
    filter: Optional[str] = None
    filter_base: int = 0
    label: Optional[str] = None
    default_expr: bool = False
    plan: Optional[Plan] = None
    counts: dict[tuple[Any, ...], int] = field(default_factory=dict)
    hist: np.ndarray = field(default_factory=lambda: np.zeros(65, np.uint64))

    @property
    def title(self) -> str:
        return self.label or self.text


def parse_specifier(text: str, kind: str) -> ArgdistProbe:
    """Parse one argdist specifier (see the module docs); errors show a caret.

    Example::

        p = parse_specifier("p:c:malloc(size_t size):size_t:size", "count")
        p.types, [e.text for e in p.exprs]      # (['size_t'], ['size'])
    """
    body, hash_, label = text.partition("#")
    spec, pos = parse_probe_prefix(body, colon_tail=True, patterns=False, u="usdt")
    if spec.params is None and spec.kind not in ("tracepoint", "usdt"):
        raise ProbeSpecError(text, pos, "expected the function's signature in parentheses, e.g. malloc(size_t size) "
                             "or read()")
    rest = body[pos:]
    parts = split_top(rest, ":")[1:] if rest.startswith(":") else []
    if rest and not rest.startswith(":"):
        raise ProbeSpecError(text, pos, "expected ':TYPE:EXPR' after the probe")
    if len(parts) > 3:
        raise ProbeSpecError(text, pos + parts[3][1] - 1, "extraneous ':'-separated parts (filter: put it last)")
    default = len(parts) < 2
    if default:
        if kind == "hist" and not spec.is_return:
            raise ProbeSpecError(text, len(body), "histograms need a type and an expression (:TYPE:EXPR)")
        types = ["u64"] if not spec.is_return else ["int"]
        exprs_text = [("1", 0)] if not spec.is_return else [("$retval", 0)]
        expr_base = len(body)
    else:
        types = [t.strip() for t, _ in split_top(parts[0][0], ",")]
        exprs_text = split_top(parts[1][0], ",")
        expr_base = pos + parts[1][1]
        if len(types) != len(exprs_text):
            raise ProbeSpecError(text, pos + parts[0][1], f"{len(types)} types for {len(exprs_text)} expressions: "
                                 "give one type per expression")
        if kind == "hist" and len(exprs_text) > 1:
            raise ProbeSpecError(text, expr_base, "histograms can only have 1 expression")
        for t, start in split_top(parts[0][0], ","):
            try:
                c_type(t) if not _is_string_type(t) else None
            except BpfUsageError as e:
                raise ProbeSpecError(text, pos + parts[0][1] + start, str(e)) from None
    exprs = [parse_expr(e, text, expr_base + start) for e, start in exprs_text]
    flt, flt_base = (parts[2][0], pos + parts[2][1]) if len(parts) == 3 else (None, 0)
    if flt is not None:
        parse_expr(flt, text, flt_base)
    return ArgdistProbe(text, kind, spec, types, exprs, flt, flt_base, label if hash_ else None, default)


def _is_string_type(t: str) -> bool:
    return t.replace(" ", "") in ("char*", "constchar*")


def _plan(p: ArgdistProbe, string_size: int) -> Plan:
    names: set[str] = set()
    strings: set[str] = set()
    for t, e in zip(p.types, p.exprs):
        names |= e.names
        if _is_string_type(t):
            n = name_of(e.tree)
            if n is None:
                raise ProbeSpecError(p.text, e.base, "a char* value must be a name (an argument or field)")
            strings.add(n)
        strings |= e.strings
    if p.filter:
        names |= parse_expr(p.filter, p.text, p.filter_base).names
    paired = p.spec.is_return and any(n == "latency" or n.startswith("entry__") for n in names)
    plan = build_plan(p.spec, strings=strings, filter=p.filter, string_size=string_size, paired=paired,
                      filter_base=p.filter_base, filter_spec=p.text)
    known = set(plan.ints) | set(plan.strings)
    for e in p.exprs:
        for n in e.names:
            if n not in known:
                raise ProbeSpecError(p.text, e.base, f"unknown name {n!r}; known names: {', '.join(sorted(known))}")
    return plan


def log2_slots(values: np.ndarray) -> np.ndarray:
    """bcc's ``bpf_log2l`` slot of every value (as unsigned 64-bit): 0 and 1 in slot 1, [2, 3] in
    slot 2, [2^(k-1), 2^k - 1] in slot k; exact for all 64 bits (no floating point)."""
    a = np.asarray(values)
    v = (a if a.dtype == np.uint64 else a.astype(np.int64).view(np.uint64)).copy()
    n = np.zeros(len(v), np.int64)
    for s in (32, 16, 8, 4, 2, 1):
        big = v >= np.uint64(1 << s)
        n += s * big
        v = np.where(big, v >> np.uint64(s), v)
    bits = n + v.astype(np.int64)  # bit_length: v is 0 or 1 now
    return np.maximum(bits, 1)


def _stars(val: int, val_max: int, width: int) -> str:
    if val_max <= 0:
        return ""
    n = 0
    while not (n > (width * val / val_max) - 1 or n > width - 1):
        n += 1
    text = "*" * n
    return text[:-1] + "+" if val > val_max else text


def bcc_log2_hist(vals: np.ndarray, val_type: str) -> str:
    """bcc's ``print_log2_hist`` of 65 bcc slots ('' when all are zero, as bcc prints nothing)."""
    nz = np.nonzero(vals)[0]
    idx_max = int(nz[-1]) if len(nz) else -1
    val_max = int(vals.max(initial=0))
    if idx_max <= 32:
        header, width, stars_w = "     %-19s : count     distribution" % val_type, 10, 40
    else:
        header, width, stars_w = "               %-29s : count     distribution" % val_type, 20, 20
    lines = [header] if idx_max > 0 else []
    for i in range(1, idx_max + 1):
        low, high = (1 << i) >> 1, (1 << i) - 1
        if low == high:
            low -= 1
        v = int(vals[i])
        lines.append("%*d -> %-*d : %-8d |%-*s|" % (width, low, width, high, v, stars_w, _stars(v, val_max, stars_w)))
    return "\n".join(lines)


def _display_expr(e: Expr) -> str:
    return e.text


def accumulate(p: ArgdistProbe, batch: np.ndarray) -> None:
    """Add a decoded batch to ``p``'s counts or histogram (vectorised)."""
    assert p.plan is not None
    env = BatchEnv(p.plan, batch)
    n = len(batch)
    cols = []
    for t, e in zip(p.types, p.exprs):
        if _is_string_type(t):
            cols.append(np.asarray(evaluate(e, env, as_string=True)))
        else:
            v = np.broadcast_to(np.asarray(evaluate(e, env)), (n,))
            ct = c_type_safe(t)
            cols.append(v.astype(np.int64 if v.dtype.kind != "u" else np.uint64).astype(np.dtype(ct.numpy)))
    if p.kind == "hist":
        p.hist += np.bincount(log2_slots(cols[0]), minlength=65)[:65].astype(np.uint64)
        return
    if len(cols) == 1:
        keys, counts = np.unique(cols[0], return_counts=True)
        for k, c in zip(keys, counts):
            key = (k.item(),)
            p.counts[key] = p.counts.get(key, 0) + int(c)
        return
    rec = np.rec.fromarrays(cols)
    keys, counts = np.unique(rec, return_counts=True)
    for k, c in zip(keys, counts):
        key = tuple(x.item() if hasattr(x, "item") else x for x in k)
        p.counts[key] = p.counts.get(key, 0) + int(c)


def _key_text(p: ArgdistProbe, key: tuple[Any, ...]) -> str:
    if p.default_expr:
        return "total calls" if not p.spec.is_return else f"retval = {key[0]}"
    parts = []
    for e, v in zip(p.exprs, key):
        val = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        parts.append(f"{_display_expr(e)} = {val}")
    return ", ".join(parts)


def display(p: ArgdistProbe, top: Optional[int] = None) -> str:
    """One probe's block as bcc prints it."""
    lines = []
    if p.kind == "count":
        lines.append(p.title)
        lines.append("\t%-10s %s" % ("COUNT", "EVENT"))
        items = sorted(p.counts.items(), key=lambda kv: kv[1])
        if top is not None:
            items = items[-top:]
        for key, c in items:
            lines.append("\t%-10s %s" % (str(c), _key_text(p, key)))
    else:
        label = p.label or (_display_expr(p.exprs[0]) if not p.default_expr else "retval")
        body = bcc_log2_hist(p.hist, label)
        lines.append(p.title)
        if body:
            lines.append(body)
    return "\n".join(lines)


def _json(p: ArgdistProbe) -> dict[str, Any]:
    if p.kind == "count":
        return {"probe": p.title, "type": "count",
                "counts": [{"key": [k.decode("utf-8", "replace") if isinstance(k, bytes) else k for k in key],
                            "count": c} for key, c in sorted(p.counts.items(), key=lambda kv: -kv[1])]}
    return {"probe": p.title, "type": "hist",
            "buckets": [{"interval-start": 0 if i == 1 else (1 << i) >> 1, "interval-end": (1 << i) - 1,
                         "count": int(p.hist[i])} for i in range(1, 65) if p.hist[i]]}


def _clear(p: ArgdistProbe) -> None:
    p.counts.clear()
    p.hist[:] = 0


@dataclass
class ArgdistResult:
    """What :func:`argdist` measured: ``counts`` (key tuple -> count) for "count", ``hist`` (65
    bcc log2 slots) for "hist"."""

    probe: ArgdistProbe
    dropped: int

    @property
    def counts(self) -> dict[tuple[Any, ...], int]:
        return dict(self.probe.counts)

    @property
    def hist(self) -> np.ndarray:
        return self.probe.hist.copy()

    def format(self) -> str:
        return display(self.probe)


def argdist(specifier: str, kind: str = "count", *, pid: Optional[int] = None, tid: Optional[int] = None,
            duration: Optional[float] = None, timeout: Optional[float] = None, string_size: int = 80,
            ring_bytes: int = DEFAULT_RING_BYTES, on_attached: Optional[Callable[[], Any]] = None) -> ArgdistResult:
    """Collect one argdist ``specifier`` (``kind`` "count" or "hist") until ``duration`` seconds,
    ``timeout`` seconds without events, or Ctrl-C.

    Example::

        r = argdist("r:c:read():ssize_t:$retval", "hist", pid=1234, duration=5)
        print(r.format())
    """
    if kind not in ("count", "hist"):
        raise BpfUsageError(f"kind must be 'count' or 'hist', not {kind!r}")
    p = parse_specifier(specifier, kind)
    check_probe(p.spec, pid)
    p.plan = _plan(p, string_size)
    scope = Scope(pid, tid)
    scope.check()
    with Tracer([p.plan], scope=scope, ring_bytes=ring_bytes) as t:
        if on_attached is not None:
            on_attached()
        for _, batch in t.batches(duration=duration, timeout=timeout):
            accumulate(p, batch)
        dropped = t.dropped
    return ArgdistResult(p, dropped)


EXAMPLES = """examples:
  bpfkit argdist -C 'p:c:malloc(size_t size):size_t:size'          # allocation sizes, counted
  bpfkit argdist -H 'r:c:read():ssize_t:$retval' -p 1234            # read() results, histogram
  bpfkit argdist -H 'r:c:malloc(size_t size):u64:$latency'          # nanoseconds per malloc
  bpfkit argdist -C 'p:c:write(int fd):int:fd' -T 5                 # the 5 busiest fds
  bpfkit argdist -C 't:syscalls:sys_enter_openat():int:args->flags'
  bpfkit argdist -C 'r:c:getenv(char *name):char*:$entry(name)'     # strings as keys
"""


def _build_parser() -> argparse.ArgumentParser:
    p = parser("argdist", "Trace a function and display a summary of its parameter values.", EXAMPLES)
    p.add_argument("-p", "--pid", type=positive_int, help="id of the process to trace (optional)")
    p.add_argument("-t", "--tid", type=positive_int, help="id of the thread to trace (optional)")
    p.add_argument("-z", "--string-size", type=positive_int, default=80,
                   help="maximum string size to read from char* arguments")
    p.add_argument("-i", "--interval", type=positive_float, default=1.0,
                   help="output interval, in seconds (default 1 second)")
    p.add_argument("-d", "--duration", type=positive_float, help="total duration of trace, in seconds")
    p.add_argument("-n", "--number", type=positive_int, dest="count", help="number of outputs")
    p.add_argument("-c", "--cumulative", action="store_true",
                   help="do not clear histograms and freq counts at each interval")
    p.add_argument("-T", "--top", type=positive_int, help="number of top results to show (not for histograms)")
    p.add_argument("-H", "--histogram", action="append", dest="histspecifier", metavar="specifier", default=[],
                   help="probe specifier to capture histogram of (see examples)")
    p.add_argument("-C", "--count", action="append", dest="countspecifier", metavar="specifier", default=[],
                   help="probe specifier to capture count of (see examples)")
    add_json(p)
    return p


def _body(args: argparse.Namespace) -> int:
    probes = [parse_specifier(s, "hist") for s in args.histspecifier] + \
             [parse_specifier(s, "count") for s in args.countspecifier]
    if not probes:
        raise BpfUsageError("at least one specifier is required (-C or -H)")
    for p in probes:
        check_probe(p.spec, args.pid)
        p.plan = _plan(p, args.string_size)
    scope = Scope(args.pid, args.tid)
    scope.check()
    outputs = 0
    with Tracer([p.plan for p in probes if p.plan is not None], scope=scope) as tracer:
        start = time.monotonic()
        next_tick = start + args.interval
        end = None if args.duration is None else start + args.duration
        with stop_signals() as stop:
            while True:
                until = next_tick if end is None else min(next_tick, end)
                for i, batch in tracer.batches(duration=max(0.0, until - time.monotonic())):
                    accumulate(probes[i], batch)
                if tracer.interrupted:
                    break
                now = time.monotonic()
                if now + 1e-3 >= next_tick or (end is not None and now >= end):
                    _print_round(probes, args)
                    outputs += 1
                    next_tick += args.interval
                    if args.count is not None and outputs >= args.count:
                        break
                    if end is not None and now >= end:
                        break
        if stop.signaled or tracer.interrupted:
            _print_round(probes, args)  # what was collected since the last output
        dropped = tracer.dropped
    if dropped:
        print(f"warning: {dropped} events lost (ring buffer full)", file=sys.stderr)
    return 0


def _print_round(probes: list[ArgdistProbe], args: argparse.Namespace) -> None:
    if args.json:
        print_json({"time": time.strftime("%H:%M:%S"), "probes": [_json(p) for p in probes]})
    else:
        print("[%s]" % time.strftime("%H:%M:%S"))
        for p in probes:
            print(display(p, args.top))
        sys.stdout.flush()
    if not args.cumulative:
        for p in probes:
            _clear(p)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit argdist [-C|-H SPECIFIER]... [options]`` (bcc's argdist options)."""
    return run_tool("argdist", _build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
