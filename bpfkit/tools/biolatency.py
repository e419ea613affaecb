"""biolatency: block device I/O latency as a histogram, as bcc's biolatency: from issue to the
driver until completion (``-Q``: from when the block layer accounted the request), per disk
(``-D``) or per operation and flags (``-F``). From the block tracepoints (``block_rq_issue``,
``block_rq_complete``, ``block_io_start``), no kprobes.

Example::

    $ sudo bpfkit biolatency -D 1 10        # per disk, every second, 10 times
    $ sudo bpfkit biolatency -Q -m -d sda --json

    from bpfkit.tools import biolatency
    r = biolatency.run(duration=5, per_disk=True)
    for disk, h in r.hists.items(): print(disk, h.total)
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from ..hist import Keyed, Log2Hist, log2
from ..loader import ObjectSpec
from ._block import disk_dev, disk_name, disks, flags_text, start_program
from .bcc_format import hist_json, log2_hist
from ._part2 import Traced, every, tool_spec
from .common import Scope, ToolError, add_scope, parser, positive_float, positive_int, print_json, run_tool, stop_flag

__all__ = ["Latency", "Biolatency", "trace", "run", "main"]


@dataclass
class Latency:
    """One read of biolatency: ``hists`` maps a section (a disk name with ``per_disk``, a flags
    description with ``per_flags``, else ``""``) to a :class:`~bpfkit.hist.Log2Hist` of ``unit``;
    ``counts``/``totals`` (with ``extension``): I/Os and their summed latency in ``unit`` per
    section; ``lost``: requests not timed."""

    unit: str
    hists: dict[str, Log2Hist]
    section: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    lost: int = 0

    @property
    def total(self) -> int:
        """I/Os in every histogram."""
        return sum(h.total for h in self.hists.values())


class Biolatency(Traced):
    """biolatency in progress: :meth:`read` the histograms (``clear`` starts a new interval)."""

    def __init__(self, spec: ObjectSpec, progs: Sequence[str], *, unit: str, section: str, unit_ns: int) -> None:
        super().__init__(spec, progs, counters=("missed",))
        self.unit, self.section, self.unit_ns = unit, section, unit_ns

    def _name(self, key: tuple[int, int], known: dict[int, str]) -> str:
        dev, flags = key
        if self.section == "disk":
            return disk_name(dev, known)
        if self.section == "flags":
            return flags_text(flags)
        return ""

    def read(self, clear: bool = False) -> Latency:
        """The histograms so far (since the last ``clear``)."""
        maps = self.obj.maps
        keyed = log2(maps.hists, clear=clear)
        known = disks() if self.section == "disk" else {}
        hists: dict[str, Log2Hist] = {}
        for key, h in (keyed.items() if isinstance(keyed, Keyed) else []):
            name = self._name(key, known)
            hists[name] = Log2Hist(h.counts + hists[name].counts) if name in hists else h
        out = Latency(self.unit, hists, self.section, lost=self.lost)
        keys, values = maps.sums.pop_all() if clear else maps.sums.to_numpy()
        for k, v in zip(keys, values):
            name = self._name((int(k["dev"]), int(k["flags"])), known)
            out.counts[name] = out.counts.get(name, 0) + int(v["count"])
            out.totals[name] = out.totals.get(name, 0) + int(v["ns"]) // self.unit_ns
        return out


def trace(*, queued: bool = False, per_disk: bool = False, per_flags: bool = False, milliseconds: bool = False,
          disk: Optional[str] = None, extension: bool = False, pid: Optional[int] = None,
          comm: Optional[str] = None, cgroup: Optional[str] = None) -> Biolatency:
    """Start timing block I/O. ``queued``: from accounting (includes the OS queue); ``disk``: this
    disk only; ``pid``/``comm``/``cgroup``: only I/O submitted by them (the submitter is seen at
    accounting). Read with ``.read()``; stop with ``.close()`` (or ``with``).

    Example::

        with trace(per_disk=True) as t:
            time.sleep(1)
            print(t.read().hists)
    """
    if per_disk and per_flags:
        raise ToolError("can only use -D or -F")
    scope = Scope(pid=pid, comm=comm, cgroup=cgroup)
    unit_ns = 1_000_000 if milliseconds else 1000
    started = queued or not scope.any
    spec = tool_spec("biolatency", scope, queued=queued, per_disk=per_disk, per_flags=per_flags, totals=extension,
                     unit_ns=unit_ns, filter_dev=disk_dev(disk) if disk else 0, scoped=not scope.any,
                     want_submitter=False, start_attached=started)
    progs = ["on_issue", "on_complete"]
    if started:
        progs.append(start_program())
    return Biolatency(spec, progs, unit="msecs" if milliseconds else "usecs",
                      section="disk" if per_disk else "flags" if per_flags else "", unit_ns=unit_ns)


def run(duration: Optional[float] = None, **options: Any) -> Latency:
    """Time block I/O for ``duration`` seconds (None: until Ctrl-C) and return the histograms;
    ``options`` as :func:`trace`.

    Example::

        print(run(5, milliseconds=True).hists[""])
    """
    with trace(**options) as t, stop_flag() as stop:
        stop.sleep(duration)
        return t.read()


def format_text(r: Latency, extension: bool = False) -> str:
    """bcc's text for one read: the histogram, or one per section (``disk = sda``)."""
    parts = []
    for name in sorted(r.hists):
        if r.section:
            parts.append(f"\n{r.section} = {name}")
        text = log2_hist(r.hists[name], r.unit)
        if text:
            parts.append(text)
    if extension:
        for name in sorted(r.counts):
            count, total = r.counts[name], r.totals[name]
            if count:
                label = f"{r.section} = {name}: " if r.section else ""
                parts.append(f"\n{label}avg = {total // count} {r.unit}, total: {total} {r.unit}, count: {count}\n")
    return "\n".join(parts)


def to_json(r: Latency) -> dict[str, Any]:
    """One JSON document for one read (bcc's ``-j`` buckets)."""
    doc: dict[str, Any] = {"ts": time.strftime("%Y-%m-%d %H:%M:%S"), "val_type": r.unit}
    if r.section:
        doc[r.section] = {name: hist_json(h) for name, h in sorted(r.hists.items())}
    else:
        doc["data"] = hist_json(r.hists[""]) if "" in r.hists else []
    if r.counts:
        doc["count"] = r.counts if r.section else r.counts.get("", 0)
        doc["total"] = r.totals if r.section else r.totals.get("", 0)
    doc["lost"] = r.lost
    return doc


EXAMPLES = """examples:
    bpfkit biolatency                    # summarize block I/O latency as a histogram
    bpfkit biolatency 1 10               # print 1 second summaries, 10 times
    bpfkit biolatency -mT 1              # 1s summaries, milliseconds, and timestamps
    bpfkit biolatency -Q                 # include OS queued time in I/O time
    bpfkit biolatency -D                 # show each disk device separately
    bpfkit biolatency -F                 # show I/O flags separately
    bpfkit biolatency -j                 # print JSON
    bpfkit biolatency -e                 # show extension summary (total, average)
    bpfkit biolatency -d sdc             # trace sdc only
    bpfkit biolatency -p 181             # only I/O submitted by PID 181
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("biolatency", "Summarize block device I/O latency as a histogram", EXAMPLES)
    p.add_argument("-T", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-Q", "--queued", action="store_true", help="include OS queued time in I/O time")
    p.add_argument("-m", "--milliseconds", action="store_true", help="millisecond histogram")
    p.add_argument("-D", "--disks", action="store_true", help="print a histogram per disk device")
    p.add_argument("-F", "--flags", action="store_true", help="print a histogram per set of I/O flags")
    p.add_argument("-e", "--extension", action="store_true", help="summarize average/total value")
    p.add_argument("-j", "--json", action="store_true", help="json output (one document per interval)")
    p.add_argument("-d", "--disk", help="trace this disk only")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long, then print")
    add_scope(p, comm="--comm")
    p.add_argument("interval", nargs="?", type=positive_float, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")
    return p


def _body(args: argparse.Namespace) -> int:
    t = trace(queued=args.queued, per_disk=args.disks, per_flags=args.flags, milliseconds=args.milliseconds,
              disk=args.disk, extension=args.extension, pid=args.pid, comm=args.comm, cgroup=args.cgroup)
    lost = 0

    def emit(last: bool) -> None:
        nonlocal lost
        r = t.read(clear=True)
        lost = r.lost
        if args.json:
            print_json(to_json(r))
            return
        print()
        if args.timestamp:
            print("%-8s" % time.strftime("%H:%M:%S"))
        text = format_text(r, args.extension)
        if text:
            print(text)

    with t, stop_flag() as stop:
        print("Tracing block device I/O... Hit Ctrl-C to end.", file=sys.stderr if args.json else sys.stdout,
              flush=True)
        every(args.interval, args.count, args.duration, emit, stop)
    if lost:
        print(f"biolatency: {lost} I/Os not timed (the table of requests in flight was full)", file=sys.stderr)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit biolatency [-T] [-Q] [-m] [-D|-F] [-e] [-j] [-d DISK] [-p PID] [--comm COMM] [--cgroup PATH]
    [--duration S] [interval [count]]``"""
    return run_tool("biolatency", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
