"""top: every BPF program loaded on the machine with what it costs — runs per second, average ns per
run, share of a CPU — from the kernel's BPF statistics (``BPF_ENABLE_STATS``), refreshed every
second like Netflix's bpftop; ``--once`` prints one plain table.

The kernel counts run time and runs only while someone holds statistics enabled: this tool does
while it runs (counts from before it started are whatever other holders left). That is also how a
bpfkit user sees what their own probes cost.

Example::

    $ sudo bpfkit top
    $ sudo bpfkit top --once -p 1234 --json

    from bpfkit.tools import top
    with top.Top() as t:          # statistics on
        ...work...
        for row in t.sample():    # per program, since the previous sample
            print(row.name, row.runs, row.avg_ns, row.cpu_percent)
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from typing import Iterable, Optional, Sequence

from .. import _sys as sc
from .._sys import Resource
from ..errors import BpfError, BpfNotFoundError, BpfPermissionError
from .common import ToolError, add_interval, add_json, parser, positive_int, print_json, process_exists, run_tool, \
    stop_flag, ticks

__all__ = ["ProgStats", "Row", "programs", "held_by", "Top", "main"]


@dataclass(frozen=True)
class ProgStats:
    """One program's cumulative counters (BPF_OBJ_GET_INFO_BY_FD)."""

    id: int
    type: str
    name: str
    tag: str
    run_time_ns: int
    run_cnt: int
    recursion_misses: int


@dataclass(frozen=True)
class Row:
    """One program over one sampling period: ``runs`` and ``run_time_ns`` in the period,
    ``runs_per_s``, ``avg_ns`` per run in the period, ``cpu_percent`` (of one CPU), and the
    cumulative ``total_runs`` / ``total_avg_ns``."""

    id: int
    type: str
    name: str
    runs: int
    run_time_ns: int
    runs_per_s: float
    avg_ns: int
    cpu_percent: float
    total_runs: int
    total_avg_ns: int
    recursion_misses: int


def programs(ids: Optional[Iterable[int]] = None) -> dict[int, ProgStats]:
    """Counters of every loaded program (or of ``ids``), by id; programs unloaded meanwhile are
    left out."""
    out = {}
    for prog_id in (sc.prog_ids() if ids is None else ids):
        try:
            fd = sc.prog_fd_by_id(prog_id)
        except BpfError:
            continue  # unloaded between listing and opening
        try:
            info = sc.prog_info(fd)
        finally:
            os.close(fd)
        out[prog_id] = ProgStats(int(info.id), sc.PROG_TYPE_NAMES.get(int(info.type), str(info.type)),
                             info.name.decode(errors="replace"), bytes(info.tag).hex(), int(info.run_time_ns),
                             int(info.run_cnt), int(info.recursion_misses))
    return out


_PROG_ID = re.compile(r"^prog_id:\s*(\d+)", re.M)


def held_by(pid: int) -> set[int]:
    """Ids of the programs process ``pid`` holds: a program fd, or a link fd with its program."""
    ids: set[int] = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fdinfo")
    except FileNotFoundError:
        raise BpfNotFoundError(f"process {pid} exited") from None
    except PermissionError:
        raise BpfPermissionError(f"cannot read /proc/{pid}/fdinfo (run as root)") from None
    for fd in fds:
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                m = _PROG_ID.search(f.read())
        except OSError:
            continue
        if m:
            ids.add(int(m.group(1)))
    return ids


class Top(Resource):
    """BPF statistics switched on (BPF_ENABLE_STATS) and a sampler of every program's cost:
    :meth:`sample` returns one :class:`Row` per program since the previous call (or since
    construction).

    Example::

        with Top() as t:
            time.sleep(1)
            rows = t.sample()
    """

    def __init__(self) -> None:
        try:
            self._stats: Optional[sc.OwnedFd] = sc.enable_stats()
        except BpfPermissionError as e:
            raise BpfPermissionError(f"enabling BPF statistics needs CAP_SYS_ADMIN (run as root): {e}") from None
        self._last = programs()
        self._last_t = time.monotonic()

    def sample(self, pid: Optional[int] = None, name: Optional[str] = None) -> list[Row]:
        """One row per program (those ``pid`` holds, names containing ``name``), sorted by CPU share."""
        now_stats = programs()
        now = time.monotonic()
        period = max(now - self._last_t, 1e-9)
        keep = held_by(pid) if pid is not None else None
        rows = []
        for prog_id, st in now_stats.items():
            if keep is not None and prog_id not in keep:
                continue
            if name and name not in st.name:
                continue
            before = self._last.get(prog_id)
            runs = st.run_cnt - (before.run_cnt if before else 0)
            ns = st.run_time_ns - (before.run_time_ns if before else 0)
            if runs < 0 or ns < 0:  # an id reused by a new program: count from zero
                runs, ns = st.run_cnt, st.run_time_ns
            rows.append(Row(st.id, st.type, st.name, runs, ns, runs / period, ns // runs if runs else 0,
                            100.0 * ns / (period * 1e9), st.run_cnt,
                            st.run_time_ns // st.run_cnt if st.run_cnt else 0, st.recursion_misses))
        self._last, self._last_t = now_stats, now
        rows.sort(key=lambda r: (-r.cpu_percent, -r.runs, r.id))
        return rows

    def close(self) -> None:
        """Switch statistics off (for this holder). Idempotent."""
        stats, self._stats = getattr(self, "_stats", None), None
        if stats is not None:
            stats.close()


HEADER = "%7s %-16s %-16s %10s %9s %6s %12s %9s" % ("ID", "TYPE", "NAME", "EVENTS/s", "AVG_NS", "CPU%",
                                                    "TOTAL_RUNS", "TOTAL_AVG")


def format_table(rows: Sequence[Row], limit: Optional[int] = None) -> str:
    """The table bpfkit top prints."""
    lines = [HEADER]
    for r in rows[:limit]:
        lines.append("%7d %-16s %-16s %10.1f %9d %6.2f %12d %9d" % (r.id, r.type[:16], r.name[:16], r.runs_per_s,
                                                                    r.avg_ns, r.cpu_percent, r.total_runs,
                                                                    r.total_avg_ns))
    return "\n".join(lines)


EXAMPLES = """examples:
    bpfkit top                 # every BPF program, refreshed every second (Ctrl-C to end)
    bpfkit top --once          # one table (sampled over one second)
    bpfkit top -p 1234         # the programs process 1234 holds
    bpfkit top -n sys_enter    # programs whose name contains "sys_enter"
    bpfkit top --json 1 5      # five JSON documents, one a second
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("top", "Show the cost of every BPF program from the kernel's BPF statistics", EXAMPLES)
    p.add_argument("--once", action="store_true", help="print one plain table and exit")
    p.add_argument("-p", "--pid", type=positive_int, help="only the programs this process holds")
    p.add_argument("-n", "--name", help="only programs whose name contains this")
    p.add_argument("-r", "--rows", type=positive_int, help="show at most this many programs")
    add_json(p)
    add_interval(p)
    return p


def _body(args: argparse.Namespace) -> int:
    if args.pid is not None and not process_exists(args.pid):
        raise ToolError(f"-p {args.pid}: no such process")
    interval = args.interval or 1.0
    count = 1 if args.once else args.count
    live = sys.stdout.isatty() and not args.once and not args.json
    with Top() as t, stop_flag() as stop:
        for last in ticks(interval, count, None, stop=stop):
            rows = t.sample(args.pid, args.name)
            if args.json:
                print_json({"time": time.time(), "programs": [asdict(r) for r in rows[:args.rows]]})
                continue
            if live:
                sys.stdout.write("\x1b[H\x1b[2J")  # redraw in place, as top does
                print(time.strftime("%H:%M:%S"), f"{len(rows)} BPF programs", "(Ctrl-C to end)")
            elif not args.once:
                print()
            print(format_table(rows, args.rows), flush=True)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit top [--once] [-p PID] [-n NAME] [-r ROWS] [--json] [interval [count]]``"""
    return run_tool("top", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
