"""execsnoop, opensnoop and runqlat: what each tool costs, read exactly instead of timed.

bench/bench_tools.py gives the issue's figures (time to the first event, the traced workload's slowdown);
on a shared 2-CPU machine the slowdown is noisy. This benchmark reads the two costs a tool adds directly,
in the same run for bpfkit's tool and its peers:
- the kernel time spent in the tool's BPF programs while the workload runs (BPF statistics: run count and
  run time of the programs the tool process holds), per program run and per workload run;
- the CPU its reader process used for the same workload run (decoding and printing the events).

Peers are those of bench_tools.py: bcc's Python tool where it runs here (runqlat), bcc's execsnoop/opensnoop
ported to tracepoints in bcc's own way where Debian's need kprobes/fentry (bench/tools/bcc_tp_NAME.py), and
libbpf-tools' C tool. Rounds are interleaved with the order rotating.

    sudo .venv/bin/python bench/bench_tools_proc.py [--rounds 5] [--tools execsnoop,opensnoop,runqlat]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from _peers import Running, Tool, ToolError, bcc_tool, bpfkit_tool, libbpf_tool, skip_note  # noqa: E402
from _workloads import timed, workload  # noqa: E402
from bench_tools import bcc_tracepoint_port  # noqa: E402

from bpfkit import _sys as sc  # noqa: E402
from bpfkit.tools.top import held_by, programs  # noqa: E402


@dataclass
class Row:
    tool: Tool
    runs: list[int] = field(default_factory=list)        # program runs per workload run
    ns: list[int] = field(default_factory=list)          # kernel ns in the programs per workload run
    reader_cpu: list[float] = field(default_factory=list)
    skipped: str = ""


def bpf_cost(pid: int) -> tuple[int, int]:
    """(run count, run time ns) summed over the programs process ``pid`` holds (BPF statistics)."""
    stats = programs(held_by(pid))
    return sum(p.run_cnt for p in stats.values()), sum(p.run_time_ns for p in stats.values())


def measure(argv: list[object], rows: list[Row], rounds: int, drain_s: float = 0.3) -> None:
    timed(argv)  # warm-up
    with sc.enable_stats():  # the kernel times every program run while this is held
        for r in range(rounds):
            order = [row for row in rows if not row.skipped]
            k = r % len(order) if order else 0
            for row in order[k:] + order[:k]:
                try:
                    run = Running(row.tool).start()
                except ToolError as e:
                    row.skipped = str(e).split(": ", 1)[-1]
                    continue
                try:
                    time.sleep(0.3)  # attached on every CPU (see tests/test_tool_irqs.py)
                    pid = run.tool_pid()
                    assert pid is not None
                    runs0, ns0 = bpf_cost(pid)
                    cpu0 = run.cpu_s()
                    timed(argv)
                    # the programs ran in the workload's context: their cost is complete now (later
                    # samples would add other processes' events on this shared machine)
                    runs1, ns1 = bpf_cost(pid)
                    time.sleep(drain_s)  # the reader catches up with what the workload made
                    row.reader_cpu.append(run.cpu_s() - cpu0)
                    row.runs.append(runs1 - runs0)
                    row.ns.append(ns1 - ns0)
                finally:
                    run.stop()


def med(xs: list[float] | list[int]) -> float:
    return statistics.median(xs) if xs else float("nan")


def report(name: str, argv: list[object], rows: list[Row], rounds: int) -> None:
    print(f"\n{name}: {' '.join(str(a) for a in argv)}   ({rounds} interleaved rounds; medians per workload run)")
    print(f"  {'tool':<30} {'program runs':>12} {'ns/run':>8} {'BPF ms':>8} {'reader CPU ms':>14}")
    ours = rows[0]
    for row in rows:
        if row.skipped:
            print(f"  {skip_note(row.tool, row.skipped)}")
            continue
        per_run = sum(row.ns) / max(1, sum(row.runs))
        print(f"  {row.tool.label:<30} {med(row.runs):>12.0f} {per_run:>8.0f} {med(row.ns) / 1e6:>8.2f} "
              f"{med(row.reader_cpu) * 1e3:>14.0f}")
    if ours.skipped:
        return
    for row in rows[1:]:
        if row.skipped:
            continue
        print(f"  {ours.tool.label} vs {row.tool.label}: kernel time in the programs "
              f"{med(ours.ns) / med(row.ns):.2f}x theirs, reader CPU "
              f"{med(ours.reader_cpu) / max(med(row.reader_cpu), 1e-9):.2f}x theirs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tools", default="execsnoop,opensnoop,runqlat")
    ap.add_argument("--n-exec", type=int, default=2000)
    ap.add_argument("--n-open", type=int, default=200_000)
    ap.add_argument("--n-pingpong", type=int, default=200_000)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (BPF statistics, loading BPF programs)")
    for name in args.tools.split(","):
        port = bcc_tracepoint_port(name)
        tools = [bpfkit_tool(name), bcc_tool(name), *([port] if port else []), libbpf_tool(name)]
        rows = [Row(t, skipped=t.missing or "") for t in tools]
        if name == "execsnoop":
            argv: list[object] = [workload("execloop"), args.n_exec]
        elif name == "opensnoop":
            argv = [workload("openloop"), args.n_open]
        elif name == "runqlat":
            argv = [workload("pingpong"), args.n_pingpong, 0]
        else:
            raise SystemExit(f"no benchmark for {name}")
        measure(argv, rows, args.rounds)
        report(name, argv, rows, args.rounds)


if __name__ == "__main__":
    main()
