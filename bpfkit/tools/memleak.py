"""memleak -p PID: a process's outstanding user-space allocations, grouped by the stack that made
them — bytes and count per stack, largest last — as bcc's memleak for a process. Uprobes on the
allocator in the process's own C library (malloc, calloc, realloc, free, posix_memalign,
aligned_alloc, memalign, valloc, pvalloc; ``-O`` names another object), stacks from a stack map,
named by :mod:`bpfkit.symbols`. (bcc's kernel mode — memleak without -p, kmalloc tracepoints — is
not here yet.)

Example::

    $ sudo bpfkit memleak -p 1234 5          # every 5 s: the top stacks still holding memory

    from bpfkit.tools import memleak
    with memleak.trace(1234) as t:
        ...
        for o in t.outstanding(top=10):
            print(o.size, o.count, o.frames[:3])
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from .._sys import Resource
from ..errors import BpfError, BpfNotFoundError, ClosedError
from ..loader import Object
from ..probes.link import Link
from ..symbols import Symbolizer
from ._part2 import every, tool_spec
from ._stacks import stack_losses
from .common import ToolError, nonnegative_int, parser, positive_float, positive_int, print_json, run_tool, stop_flag

__all__ = ["Outstanding", "Memleak", "trace", "libc_of", "main"]

# (function, entry program, return program): the allocator's public entry points
PROBES = (("malloc", "malloc_enter", "malloc_exit"), ("calloc", "calloc_enter", "malloc_exit"),
          ("realloc", "realloc_enter", "malloc_exit"), ("free", "free_enter_prog", ""),
          ("posix_memalign", "posix_memalign_enter", "posix_memalign_exit"),
          ("aligned_alloc", "memalign_enter", "malloc_exit"), ("memalign", "memalign_enter", "malloc_exit"),
          ("valloc", "valloc_enter", "malloc_exit"), ("pvalloc", "valloc_enter", "malloc_exit"))
REQUIRED = ("malloc", "calloc", "realloc", "free")


@dataclass
class Outstanding:
    """Allocations from one stack still not freed: ``size`` bytes in ``count`` allocations;
    ``frames`` named innermost first (``addrs`` the same as numbers); ``stack_id`` < 0 when the
    stack could not be taken."""

    size: int
    count: int
    stack_id: int
    frames: list[str] = field(default_factory=list)
    addrs: list[int] = field(default_factory=list)


def libc_of(pid: int) -> str:
    """The C library process ``pid`` has mapped (through /proc/PID/root, so a container's own)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            for line in f:
                parts = line.split(None, 5)
                if len(parts) == 6:
                    base = os.path.basename(parts[5].strip())
                    if base.startswith("libc.so") or (base.startswith("libc-") and base.endswith(".so")):
                        return f"/proc/{pid}/root{parts[5].strip()}"
    except FileNotFoundError:
        raise ToolError(f"-p {pid}: no such process", errno.ESRCH) from None
    raise BpfNotFoundError(f"process {pid} has no C library mapped (a static binary?): name the object that "
                           "holds its allocator with -O", errno.ENOENT)


class Memleak(Resource):
    """Allocator probes on one process; :meth:`outstanding` reads what is still allocated."""

    def __init__(self, pid: int, *, obj_path: Optional[str] = None, min_size: int = 0,
                 max_size: Optional[int] = None, sample_rate: int = 1, symbolizer: Optional[Symbolizer] = None) -> None:
        self.pid = pid
        self.sym = symbolizer if symbolizer is not None else Symbolizer()
        self._links: list[Link] = []
        self._obj: Optional[Object] = None
        if not os.path.exists(f"/proc/{pid}"):
            raise ToolError(f"-p {pid}: no such process", errno.ESRCH)
        path = obj_path or libc_of(pid)
        spec = tool_spec("memleak", None, min_size=min_size or None, max_size=max_size, sample_every=sample_rate)
        self._obj = spec.load()
        try:
            for func, enter, ret in PROBES:
                try:
                    self._links.append(self._obj.progs[enter].attach_uprobe(path, func, pid=pid))
                    if ret:
                        self._links.append(self._obj.progs[ret].attach_uretprobe(path, func, pid=pid))
                except BpfNotFoundError:
                    if func in REQUIRED:
                        raise
            self.sym.remember(pid)
        except BaseException:
            self.close()
            raise

    @property
    def obj(self) -> Object:
        if self._obj is None:
            raise ClosedError("memleak has stopped tracing")
        return self._obj

    @property
    def seen(self) -> int:
        """Allocations seen returning so far (after sampling)."""
        return int(self.obj.bss.seen)

    @property
    def lost(self) -> int:
        """Allocations not recorded (the address table was full) and stacks not taken."""
        return int(self.obj.bss.allocs_full) + stack_losses(self.obj).lost

    def outstanding(self, top: Optional[int] = None, older_than_ns: int = 0) -> list[Outstanding]:
        """Allocations not freed (older than ``older_than_ns``), summed per stack, smallest total
        first (bcc's order: the largest is printed last); ``top``: the largest ``top`` only."""
        keys, vals = self.obj.maps["allocs"].to_numpy()
        if older_than_ns:
            vals = vals[vals["ts"] <= time.monotonic_ns() - older_than_ns]
        if not len(vals):
            return []
        ids, inverse = np.unique(vals["stack_id"].astype(np.int64), return_inverse=True)
        sizes = np.bincount(inverse, weights=vals["size"].astype(np.float64)).astype(np.int64)
        counts = np.bincount(inverse)
        order = np.argsort(sizes, kind="stable")
        if top is not None:
            order = order[-top:]
        smap: Any = self.obj.maps["stacks"]  # a StackTraceMap
        frames, _found = smap.read(ids[order])
        out = []
        for row, i in zip(frames, order):
            addrs = [int(a) for a in row if a]
            names = self.sym.user(self.pid, addrs).labels(offset=True, module=True) if addrs else []
            out.append(Outstanding(int(sizes[i]), int(counts[i]), int(ids[i]), list(names), addrs))
        return out

    def close(self) -> None:
        links, self._links = self._links, []
        for link in links:
            with contextlib.suppress(BpfError, OSError):
                link.close()
        obj, self._obj = self._obj, None
        if obj is not None:
            obj.close()


def trace(pid: int, **options: object) -> Memleak:
    """Start tracing the allocations of process ``pid`` (options as :class:`Memleak`)."""
    return Memleak(pid, **options)  # type: ignore[arg-type]


EXAMPLES = """examples:
    bpfkit memleak -p $(pidof allocs)
            Trace allocations and display a summary of "leaked" (outstanding)
            allocations every 5 seconds
    bpfkit memleak -p $(pidof allocs) -o 60000
            Trace allocations and display only those that are older than 60 s
    bpfkit memleak -p $(pidof allocs) -s 5
            Trace roughly every 5th allocation, to reduce overhead
    bpfkit memleak -p $(pidof allocs) -z 1024 -T 5 --json 10 3
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("memleak", "Trace outstanding memory allocations of a process", EXAMPLES)
    p.add_argument("-p", "--pid", type=positive_int, required=True,
                   help="the process to trace (kernel allocations, without -p, are not supported yet)")
    p.add_argument("-o", "--older", type=nonnegative_int, default=0, metavar="OLDER",
                   help="prune allocations younger than this age in milliseconds")
    p.add_argument("-s", "--sample-rate", type=positive_int, default=1, metavar="SAMPLE_RATE",
                   help="sample every N-th allocation to decrease the overhead")
    p.add_argument("-T", "--top", type=positive_int, default=10, help="display only this many top allocating stacks")
    p.add_argument("-z", "--min-size", type=nonnegative_int, default=0, help="capture only allocations larger than this size")
    p.add_argument("-Z", "--max-size", type=nonnegative_int, help="capture only allocations smaller than this size")
    p.add_argument("-O", "--obj", help="attach to allocator functions in the specified object")
    p.add_argument("interval", nargs="?", type=positive_float, default=5.0, help="interval in seconds to print "
                   "outstanding allocations")
    p.add_argument("count", nargs="?", type=positive_int, help="number of times to print the report before exiting")
    p.add_argument("--json", action="store_true", help="one JSON document per report")
    return p


def _body(args: argparse.Namespace) -> int:
    if args.max_size is not None and args.max_size < args.min_size:
        raise ToolError("max size must not be less than min size", errno.EINVAL)
    with Memleak(args.pid, obj_path=args.obj, min_size=args.min_size, max_size=args.max_size,
                 sample_rate=args.sample_rate) as m, stop_flag() as stop:
        print(f"Attaching to pid {args.pid}, Ctrl+C to quit.", file=sys.stderr if args.json else sys.stdout,
              flush=True)

        def emit(last: bool) -> None:
            rows = m.outstanding(args.top, args.older * 1_000_000)
            if args.json:
                print_json({"time": time.strftime("%H:%M:%S"), "stacks": [
                    {"size": o.size, "count": o.count, "frames": o.frames} for o in rows], "lost": m.lost})
                return
            print("[%s] Top %d stacks with outstanding allocations:" % (time.strftime("%H:%M:%S"), args.top))
            for o in rows:
                print("\t%d bytes in %d allocations from stack" % (o.size, o.count))
                if o.stack_id < 0:
                    print("\t\t[Missed User Stack]")
                for addr, name in zip(o.addrs, o.frames):
                    print("\t\t0x%016x\t%s" % (addr, name))
            if m.lost:
                print(f"memleak: {m.lost} allocations or stacks lost", file=sys.stderr)

        every(args.interval, args.count, None, emit, stop)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit memleak -p PID [-o MS] [-s N] [-T N] [-z MIN] [-Z MAX] [-O OBJ] [--json] [interval [count]]``"""
    return run_tool("memleak", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
