"""Measurements over the tools of ``_peers``: time from exec to the first event (plus the tool's peak RSS and
start-up CPU), and the slowdown a running tool causes a fixed workload; each with a table that puts bpfkit's tool
next to its peers. Interleaved rounds, rotating order, medians with min-max and n. Stdlib only.

Example::

    from _peers import bcc_tool, bpfkit_tool
    from _workloads import workload
    from _measure import compare, compare_startup
    compare([workload("sysloop"), 1000000], bpfkit_tool("syscount", "-d", "3600"), [bcc_tool("syscount")])
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence, TypeVar, Union

from _peers import Finished, Running, Stats, Tool, ToolError, rss_floor_mib, skip_note
from _workloads import background, timed

T = TypeVar("T")
Check = Callable[[Tool, Finished], str]  # a note for the table from a finished run, e.g. the count it printed


def _rotated(items: Sequence[T], r: int) -> list[T]:
    k = r % len(items) if items else 0
    return list(items[k:]) + list(items[:k])


# -- time to first event ------------------------------------------------------------------------------------------
@dataclass
class StartupRow:
    """One tool's start-up: exec -> first matching line, exec -> header, SIGINT -> exit, peak RSS, CPU of the run."""

    tool: Tool
    first: Stats = field(default_factory=lambda: Stats([]))
    ready: Stats = field(default_factory=lambda: Stats([]))
    stop: Stats = field(default_factory=lambda: Stats([]))
    rss_mib: Stats = field(default_factory=lambda: Stats([]))
    cpu_s: Stats = field(default_factory=lambda: Stats([]))
    skipped: Optional[str] = None
    ready_how: set[str] = field(default_factory=set)  # "header" / "kernel": how readiness was seen (match=None)


def time_to_first_event(tools: Sequence[Tool], trigger: Optional[Sequence[object]], match: Optional[str],
                        runs: int = 11, warmup: int = 1, timeout: float = 60.0) -> list[StartupRow]:
    """Start each tool ``runs`` times (interleaved, after ``warmup`` discarded rounds) while ``trigger`` runs in the
    background, and time exec -> the first output line matching ``match`` (a regex naming the trigger's event);
    ``match=None`` times exec -> ready (header line, or the kernel showing it attached) for summary tools.
    The tool is then stopped with SIGINT; its peak RSS and CPU are /usr/bin/time's for the whole run.

    Example::

        rows = time_to_first_event([bcc_tool("opensnoop"), bpfkit_tool("opensnoop")],
                                   [workload("openloop"), 0, 1000, path], match=re.escape(path))
    """
    rows = [StartupRow(t, skipped=t.missing) for t in tools]
    with background(trigger) if trigger else nullcontext():
        for r in range(warmup + runs):
            for row in _rotated(rows, r):
                if row.skipped:
                    continue
                run = Running(row.tool, ready_timeout=timeout)
                try:
                    if match is None:
                        run.start()
                        t_hit: Optional[float] = run.t_ready
                        row.ready_how.add(run.ready_how)
                    else:
                        run.start(wait_ready=False)
                        hit = run.wait_for(match, timeout)
                        t_hit = hit[0] if hit else None
                except ToolError as e:
                    row.skipped = str(e).split(": ", 1)[-1]
                    continue
                t_int = time.perf_counter()
                fin = run.stop()
                t_exit = time.perf_counter()
                if t_hit is None:
                    row.skipped = (f"no line matching {match!r} within {timeout:.0f} s "
                                   f"(exit {fin.rc}): {run.tail_text(400)}")
                    continue
                if r < warmup:
                    continue
                row.first.values.append(t_hit - run.t_exec)
                head = run.wait_for(row.tool.ready, 0) if row.tool.ready else None
                if head and head[0] <= t_int:  # not a summary line printed on SIGINT
                    row.ready.values.append(head[0] - run.t_exec)
                row.stop.values.append(t_exit - t_int)
                if fin.maxrss_kib is not None:
                    row.rss_mib.values.append(fin.maxrss_kib / 1024)
                if fin.cpu_s is not None:
                    row.cpu_s.values.append(fin.cpu_s)
    return rows


def print_startup(rows: Sequence[StartupRow], title: str = "", ours: Optional[str] = None,
                  what: str = "first event") -> None:
    """A table of :func:`time_to_first_event` rows; with ``ours`` (a label), how many times faster it starts."""
    base = next((r for r in rows if r.tool.label == ours and not r.skipped), None)
    print(f"\n{title or 'time to ' + what}   (exec -> {what}; median [min-max] n; "
          f"peak RSS floor {rss_floor_mib():.1f} MiB = /usr/bin/time)")
    print(f"  {'tool':<26} {'to ' + what:<36} {'to header':<22} {'peak RSS MiB':<22} {'CPU s (run)':<20} "
          f"{'SIGINT->exit s':<22}" + (f" vs {ours}" if base else ""))
    for r in rows:
        if r.skipped:
            print(f"  {skip_note(r.tool, r.skipped)}")
            continue
        cmp = ""
        if base and r is not base:
            cmp = f" {r.first.median / base.first.median:.2f}x slower" if r.first.median >= base.first.median \
                else f" {base.first.median / r.first.median:.2f}x faster"
        how = f" ({'/'.join(sorted(r.ready_how))})" if r.ready_how else ""
        print(f"  {r.tool.label:<26} {r.first.fmt(1e3, ' ms') + how:<36} {r.ready.fmt(1e3, ' ms'):<22} "
              f"{r.rss_mib.fmt():<22} {r.cpu_s.fmt():<20} {r.stop.fmt():<22}{cmp}")


def compare_startup(trigger: Optional[Sequence[object]], match: Optional[str], ours: Tool, theirs: Sequence[Tool],
                    runs: int = 11, title: str = "", timeout: float = 60.0) -> list[StartupRow]:
    """:func:`time_to_first_event` for bpfkit's tool and its peers, printed with "peer is N x slower" ratios.

    Example: ``compare_startup(None, None, bpfkit_tool("syscount", "-d", "3600"), [bcc_tool("syscount")])``"""
    rows = time_to_first_event([ours, *theirs], trigger, match, runs=runs, timeout=timeout)
    print_startup(rows, title, ours.label, "first event" if match else "ready")
    return rows


# -- workload slowdown --------------------------------------------------------------------------------------------
@dataclass
class SlowdownRow:
    """A tool's effect on the workload: its wall and CPU while the tool ran, and the tool's own CPU for it."""

    tool: Tool
    wall: Stats = field(default_factory=lambda: Stats([]))
    wl_cpu: Stats = field(default_factory=lambda: Stats([]))
    tool_cpu: Stats = field(default_factory=lambda: Stats([]))
    notes: list[str] = field(default_factory=list)
    skipped: Optional[str] = None


@dataclass
class Slowdown:
    workload: list[str]
    bare: SlowdownRow
    rows: list[SlowdownRow]
    runs: int
    per_start: int

    def row(self, label: str) -> Optional[SlowdownRow]:
        return next((r for r in self.rows if r.tool.label == label), None)

    def ratio(self, label: str) -> float:
        """Median wall under the tool / median bare wall."""
        r = self.row(label)
        return r.wall.median / self.bare.wall.median if r and not r.skipped else float("nan")


def slowdown(workload: Sequence[object], tools: Sequence[Tool], runs: int = 5, per_start: int = 1,
             check: Optional[Check] = None, drain_s: float = 0.3, ready_timeout: float = 60.0) -> Slowdown:
    """Time ``workload`` bare and while each tool runs, in ``runs`` interleaved rounds (order rotating); each tool
    start covers ``per_start`` workload runs. The tool's CPU is sampled from just before the workload until
    ``drain_s`` after it (events it processes late still count). ``check(tool, finished)`` returns a note per run
    (e.g. the count the tool printed) shown in the table.

    Example: ``slowdown([workload("openloop"), 200000], [bcc_tool("opensnoop"), libbpf_tool("opensnoop")])``"""
    argv = [str(a) for a in workload]
    bare = SlowdownRow(Tool("(no tracing)", []))
    rows = [SlowdownRow(t, skipped=t.missing) for t in tools]
    timed(argv)  # warm-up: page cache, first-exec costs
    for r in range(runs):
        for row in _rotated([bare, *rows], r):
            if row.skipped:
                continue
            if row is bare:
                for _ in range(per_start):
                    w, c = timed(argv)
                    bare.wall.values.append(w)
                    bare.wl_cpu.values.append(c)
                continue
            try:
                run = Running(row.tool, ready_timeout=ready_timeout).start()
            except ToolError as e:
                row.skipped = str(e).split(": ", 1)[-1]
                continue
            try:
                c0 = run.cpu_s()
                for _ in range(per_start):
                    w, c = timed(argv)
                    row.wall.values.append(w)
                    row.wl_cpu.values.append(c)
                time.sleep(drain_s)
                row.tool_cpu.values.append((run.cpu_s() - c0) / per_start)
            finally:
                fin = run.stop()
            if check:
                row.notes.append(check(row.tool, fin))
    return Slowdown(argv, bare, rows, runs, per_start)


def print_slowdown(res: Slowdown, title: str = "", ours: Optional[str] = None) -> None:
    """The slowdown table: the workload's wall and its own CPU under each tool, each as x bare; with ``ours``, each
    tool's figures / bpfkit's (> 1: the peer slows the workload more). The workload's CPU includes what the BPF
    programs cost in its context and is much less disturbed by other load on the machine than its wall time."""
    bw, bc = res.bare.wall.median, res.bare.wl_cpu.median
    base = res.row(ours) if ours else None
    base = base if base and not base.skipped else None
    print(f"\n{title or 'workload slowdown'}: {' '.join(res.workload)}   "
          f"({res.runs} interleaved rounds x {res.per_start} run(s); median [min-max] n)")
    print(f"  {'tool':<26} {'workload wall s':<26} {'x bare':>7} {'workload CPU s':<26} {'x bare':>7} "
          f"{'tool CPU s/run':<22}" + (f" {'wall, CPU vs ours':<18}" if base else "") + " note")
    for r in [res.bare, *res.rows]:
        if r.skipped:
            print(f"  {skip_note(r.tool, r.skipped)}")
            continue
        cmp = ""
        if base and r is not res.bare:
            cmp = (f" {r.wall.median / base.wall.median:.2f}x, {r.wl_cpu.median / base.wl_cpu.median:.2f}x"
                   if r is not base else " ours")
        cmp = f"{cmp:<19}" if base else ""
        notes = sorted(set(n for n in r.notes if n))
        note = "; ".join(notes[:3]) + (f" (+{len(notes) - 3} more)" if len(notes) > 3 else "")
        print(f"  {r.tool.label:<26} {r.wall.fmt():<26} {r.wall.median / bw:>6.2f}x {r.wl_cpu.fmt():<26} "
              f"{r.wl_cpu.median / bc:>6.2f}x {r.tool_cpu.fmt() if r is not res.bare else '':<22}{cmp} {note}")
    if base:
        for r in res.rows:
            if r is base or r.skipped:
                continue
            added = (r.wall.median - bw) / (base.wall.median - bw) if base.wall.median != bw else float("nan")
            added_cpu = (r.wl_cpu.median - bc) / (base.wl_cpu.median - bc) if base.wl_cpu.median != bc \
                else float("nan")
            print(f"  {ours} vs {r.tool.label}: workload x bare {base.wall.median / bw:.2f} vs "
                  f"{r.wall.median / bw:.2f} (wall), {base.wl_cpu.median / bc:.2f} vs {r.wl_cpu.median / bc:.2f} "
                  f"(CPU); the peer adds "
                  f"{added:.2f}x (wall), {added_cpu:.2f}x (CPU) what {ours} adds")


def compare(workload: Sequence[object], ours: Tool, theirs: Sequence[Tool], runs: int = 5, per_start: int = 1,
            check: Optional[Check] = None, title: str = "", **kw: Union[float, int]) -> Slowdown:
    """:func:`slowdown` for bpfkit's tool and its peers in one run, printed as one table with ratios.

    Example: ``compare([workload("execloop"), 2000], bpfkit_tool("execsnoop"), [bcc_tool("execsnoop")])``"""
    res = slowdown(workload, [ours, *theirs], runs=runs, per_start=per_start, check=check, **kw)
    print_slowdown(res, title, ours.label)
    return res
