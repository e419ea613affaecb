"""cachestat: page cache hits, misses and dirtied pages per interval, with the hit ratio and the
buffers/cached sizes, as bcc's cachestat. kprobes on the page cache's functions (there are no
tracepoints for an access), so FeatureNotSupported naming kprobes on a kernel without them; each
counter uses the first of its functions' historical names this kernel has (``FUNCTIONS``).
``-p``/``--cgroup`` are ours.

Example::

    $ sudo bpfkit cachestat 1 5

    from bpfkit.tools import cachestat
    with cachestat.trace(pid=1234) as t:
        ...
        print(t.read())     # Stats(hits=..., misses=..., dirties=..., ...)
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from typing import Optional, Sequence

from ..errors import FeatureNotSupported
from ..probes.discovery import list_probes
from ._part2 import Traced, every, require_kprobes, tool_spec
from .common import Scope, add_scope, parser, positive_float, positive_int, print_json, run_tool, stop_flag

__all__ = ["Stats", "Cachestat", "trace", "FUNCTIONS", "main"]

# counter -> the kernel functions that have done its work, newest name first
FUNCTIONS = {
    "accessed": ("folio_mark_accessed", "mark_page_accessed"),
    "added": ("filemap_add_folio", "add_to_page_cache_lru"),
    "dirtied": ("folio_account_dirtied", "account_page_dirtied", "__folio_mark_dirty"),
    "buffers_dirtied": ("mark_buffer_dirty",),
}


@dataclass
class Stats:
    """One interval: the raw counts (``accessed``, ``added``, ``dirtied``, ``buffers_dirtied``)
    and bcc's reading of them (``hits``, ``misses``, ``dirties``, ``ratio``)."""

    accessed: int
    added: int
    dirtied: int
    buffers_dirtied: int

    @property
    def total(self) -> int:
        return max(0, self.accessed - self.buffers_dirtied)

    @property
    def misses(self) -> int:
        return min(self.total, max(0, self.added - self.dirtied))

    @property
    def hits(self) -> int:
        return self.total - self.misses

    @property
    def dirties(self) -> int:
        return max(0, self.dirtied)

    @property
    def ratio(self) -> float:
        return self.hits / self.total if self.total else 0.0


class Cachestat(Traced):
    """The kernel-side counters; :meth:`read` gives them since the start (or the last clear)."""

    _base = Stats(0, 0, 0, 0)

    def read(self, clear: bool = False) -> Stats:
        bss = self.obj.bss
        now = Stats(int(bss.accessed), int(bss.added), int(bss.dirtied), int(bss.buffers_dirtied))
        out = Stats(now.accessed - self._base.accessed, now.added - self._base.added,
                    now.dirtied - self._base.dirtied, now.buffers_dirtied - self._base.buffers_dirtied)
        if clear:
            self._base = now
        return out


def _present(fn: str) -> bool:
    return bool(list_probes(f"kprobe:{fn}"))


def trace(*, pid: Optional[int] = None, comm: Optional[str] = None, cgroup: Optional[str] = None) -> Cachestat:
    """Start counting page cache activity (of ``pid``/``comm``/``cgroup`` when given)."""
    require_kprobes("cachestat (page cache accesses have no tracepoints)")
    progs = []
    for counter, names in FUNCTIONS.items():
        found = next((n for n in names if _present(n)), None)
        if found is None:
            raise FeatureNotSupported(f"cachestat: none of {', '.join(names)} can be probed on this kernel, so "
                                      f"its {counter} count cannot be taken", feature=f"kprobe:{names[0]}")
        progs.append(f"on_{found}")
    return Cachestat(tool_spec("cachestat", Scope(pid=pid, comm=comm, cgroup=cgroup)), progs)


def _meminfo_mb() -> tuple[int, int]:
    vals = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            vals[key] = int(rest.split()[0])
    return vals.get("Buffers", 0) // 1024, vals.get("Cached", 0) // 1024


def build_parser() -> argparse.ArgumentParser:
    p = parser("cachestat", "Count cache kernel function calls",
               "examples:\n    bpfkit cachestat             # run with default option of 1 second delay\n"
               "    bpfkit cachestat -T          # include timestamps\n    bpfkit cachestat 1 5         # "
               "print 5 times with 1 second delay\n")
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("interval", nargs="?", default=1.0, type=positive_float, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")
    add_scope(p, comm="--comm")
    p.add_argument("--json", action="store_true", help="one JSON document per interval")
    return p


def _body(args: argparse.Namespace) -> int:
    with trace(pid=args.pid, comm=args.comm, cgroup=args.cgroup) as t, stop_flag() as stop:
        if args.json:
            print("Tracing page cache... Hit Ctrl-C to end.", file=sys.stderr, flush=True)
        else:
            print(("%-8s " % "TIME" if args.timestamp else "") + "%8s %8s %8s %8s %12s %10s" % (
                "HITS", "MISSES", "DIRTIES", "HITRATIO", "BUFFERS_MB", "CACHED_MB"), flush=True)

        def emit(last: bool) -> None:
            s = t.read(clear=True)
            buffers, cached = _meminfo_mb()
            if args.json:
                print_json({"time": time.strftime("%H:%M:%S"), **asdict(s), "hits": s.hits, "misses": s.misses,
                            "dirties": s.dirties, "ratio": s.ratio, "buffers_mb": buffers, "cached_mb": cached})
                return
            print(("%-8s " % time.strftime("%H:%M:%S") if args.timestamp else "") + "%8d %8d %8d %7.2f%% %12d %10d" % (
                s.hits, s.misses, s.dirties, 100 * s.ratio, buffers, cached))

        every(args.interval, args.count, None, emit, stop)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit cachestat [-T] [-p PID] [--json] [interval [count]]``"""
    return run_tool("cachestat", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
