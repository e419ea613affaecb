"""bitesize: the size of block I/O requests as a log2 histogram of KiB per command name, as bcc's
bitesize. From the ``block_rq_issue`` tracepoint (the name of the task issuing the request).

Example::

    $ sudo bpfkit bitesize                  # until Ctrl-C
    $ sudo bpfkit bitesize -d sda --json 5 1

    from bpfkit.tools import bitesize
    sizes = bitesize.run(duration=5)        # {comm: Log2Hist of KiB}
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence

from ..hist import Keyed, Log2Hist, log2
from ._block import disk_dev
from .bcc_format import hist_json, log2_hist
from ._part2 import Traced, every, tool_spec
from .common import Scope, add_scope, parser, positive_float, positive_int, print_json, run_tool, stop_flag

__all__ = ["Bitesize", "trace", "run", "format_text", "main"]


class Bitesize(Traced):
    """bitesize in progress: :meth:`read` ``{comm: Log2Hist of KiB}`` (``clear``: a new interval)."""

    def read(self, clear: bool = False) -> dict[str, Log2Hist]:
        keyed = log2(self.obj.maps.dist, clear=clear)
        out: dict[str, Log2Hist] = {}
        for key, h in (keyed.items() if isinstance(keyed, Keyed) else []):
            comm = bytes(key[0] if isinstance(key, tuple) else key).split(b"\0", 1)[0].decode(errors="replace")
            out[comm] = Log2Hist(out[comm].counts + h.counts) if comm in out else h
        return out


def trace(*, disk: Optional[str] = None, pid: Optional[int] = None, comm: Optional[str] = None,
          cgroup: Optional[str] = None) -> Bitesize:
    """Start the histogram (requests of ``disk``, issued by ``pid``/``comm``/``cgroup`` if given)."""
    spec = tool_spec("bitesize", Scope(pid=pid, comm=comm, cgroup=cgroup), filter_dev=disk_dev(disk) if disk else 0)
    return Bitesize(spec)


def run(duration: Optional[float] = None, **options: Any) -> dict[str, Log2Hist]:
    """Histograms after ``duration`` seconds (None: until Ctrl-C); ``options`` as :func:`trace`."""
    with trace(**options) as t, stop_flag() as stop:
        stop.sleep(duration)
        return t.read()


def format_text(hists: dict[str, Log2Hist]) -> str:
    """bcc's output: ``Process Name = NAME`` and a histogram of ``Kbytes`` per command name."""
    parts = []
    for comm in sorted(hists):
        parts.append(f"\nProcess Name = {comm}")
        text = log2_hist(hists[comm], "Kbytes")
        if text:
            parts.append(text)
    return "\n".join(parts)


EXAMPLES = """examples:
    bpfkit bitesize              # block I/O sizes per command name, until Ctrl-C
    bpfkit bitesize 5 3          # every 5 seconds, 3 times
    bpfkit bitesize -d sda       # only requests to sda
    bpfkit bitesize --json       # one JSON document
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("bitesize", "Summarize block device I/O size as a histogram per process name", EXAMPLES)
    p.add_argument("-d", "--disk", help="trace this disk only")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long, then print")
    add_scope(p, comm="--comm")
    p.add_argument("--json", action="store_true", help="one JSON document per output")
    p.add_argument("interval", nargs="?", type=positive_float, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")
    return p


def _body(args: argparse.Namespace) -> int:
    t = trace(disk=args.disk, pid=args.pid, comm=args.comm, cgroup=args.cgroup)

    def emit(last: bool) -> None:
        hists = t.read(clear=True)
        if args.json:
            print_json({"ts": time.strftime("%Y-%m-%d %H:%M:%S"), "val_type": "Kbytes",
                        "comms": {c: hist_json(h) for c, h in sorted(hists.items())}, "lost": t.lost})
        else:
            print(format_text(hists))

    with t, stop_flag() as stop:
        print("Tracing block I/O... Hit Ctrl-C to end.", file=sys.stderr if args.json else sys.stdout, flush=True)
        every(args.interval, args.count, args.duration, emit, stop)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit bitesize [-d DISK] [-p PID] [--comm COMM] [--cgroup PATH] [--duration S] [--json] [interval [count]]``"""
    return run_tool("bitesize", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
