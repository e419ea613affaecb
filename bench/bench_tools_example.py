"""Example of the tool-benchmark plumbing (_peers, _measure): bpfkit's syscount against bcc's syscount (and the
libbpf-tools one) — start-up (exec -> attached, peak RSS) and the slowdown of a process making exactly N getppid()
calls, with the count each tool reported for it checked. Peers that do not run here are listed, not fatal.

    sudo .venv/bin/python bench/bench_tools_example.py [--runs 5] [--n 1000000] [--startup-runs 7]
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import compare, compare_startup  # noqa: E402
from _peers import Finished, Tool, bcc_tool, bpfkit_tool, libbpf_tool  # noqa: E402
from _workloads import workload  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="interleaved rounds of the slowdown measurement")
    ap.add_argument("--n", type=int, default=1_000_000, help="getppid() calls per workload run")
    ap.add_argument("--startup-runs", type=int, default=7)
    args = ap.parse_args()

    ours = bpfkit_tool("syscount", "-d", "86400")  # today's bpfkit syscount stops after -d; run it "forever"
    peers = [bcc_tool("syscount"), libbpf_tool("syscount")]

    def counted(tool: Tool, fin: Finished) -> str:
        """What the tool reported for the workload: bcc's per-syscall table has getppid's count; today's bpfkit
        syscount has a per-process table (the row of the workload's pid, named 'sysloop' or before-exec name)."""
        m = re.search(r"^\s*getppid\s+(\d+)", fin.output, re.M)
        if m:  # system-wide: other processes' getppid() calls count too
            return f"getppid={m.group(1)}"
        rows = [(int(n), comm) for comm, n in re.findall(r"^\s*\d+\s+(\S+)\s+(\d+)\s+\d+\s*$", fin.output, re.M)]
        return "top process {1}={0}".format(*max(rows)) if rows else f"no count found (exit {fin.rc})"

    compare_startup(None, None, ours, peers, runs=args.startup_runs,
                    title="syscount start-up (no trigger: exec -> attached)")
    compare([workload("sysloop"), args.n], ours, peers, runs=args.runs, check=counted,
            title="syscount: slowdown of a process making getppid() calls")


if __name__ == "__main__":
    main()
