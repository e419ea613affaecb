"""Toolkit benchmarks (issues 14 and 15): for execsnoop, opensnoop, runqlat, biolatency and tcplife, bpfkit's tool
against bcc's (Debian's *-bpfcc) and libbpf-tools' tool of the same name, in one run:
- start-up: exec -> the first event a 1 ms trigger causes (runqlat, biolatency: exec -> attached), the tool's peak
  RSS and CPU;
- overhead: a workload doing exactly N operations, timed bare and under each tool (interleaved), with what each
  tool reported about it (event lines / histogram counts / tcplife bytes) to show it saw the work.
Rows that cannot run here (no bpfkit tool of that name yet; bcc tools needing kprobes) are listed with the reason.
bcc's Python execsnoop and opensnoop need kprobes / fentry, which this kernel refuses: for them the bcc peer that runs
is the same tool ported to tracepoints in bcc's own way (bench/tools/bcc_tp_NAME.py: "bcc NAME (tracepoints)").

    sudo .venv/bin/python bench/bench_tools.py [--tools execsnoop,opensnoop] [--runs 3] [--startup-runs 5]
"""
from __future__ import annotations

import argparse
import re
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import Check, compare, compare_startup  # noqa: E402
from _peers import Finished, Tool, bcc_tool, bpfkit_tool, libbpf_tool  # noqa: E402
from _workloads import loop_device, marker_file, workload  # noqa: E402

MARK = "bkmark"  # execsnoop's trigger passes it as an argument


def hist_total(out: str) -> int:
    """Sum of the counts of every log2 histogram in bcc's format ("  a -> b : count |***|")."""
    return sum(int(n) for n in re.findall(r"->\s*\d+\s*:\s*(\d+)", out))


def lines_matching(rx: str) -> Check:
    return lambda tool, fin: f"{len(re.findall(rx, fin.output, re.M))} lines"


def hist_note(tool: Tool, fin: Finished) -> str:
    return f"histogram total {hist_total(fin.output)}"


def tcplife_note(tool: Tool, fin: Finished) -> str:
    """Sessions of the workload and the TX_KB/RX_KB columns seen (each connection shows from both ends)."""
    rows = re.findall(r"tcpconn\s+\S+\s+\d+\s+\S+\s+\d+\s+(\S+)\s+(\S+)", fin.output)
    kb = sorted({f"{tx}/{rx}" for tx, rx in rows})
    return f"{len(rows)} sessions, TX/RX KB {', '.join(kb[:3])}{' ...' if len(kb) > 3 else ''}"


def bcc_tracepoint_port(name: str) -> Optional[Tool]:
    """bcc's tool on tracepoints (bench/tools/bcc_tp_NAME.py, run by Debian's python3 with its bcc), if there is one."""
    port = Path(__file__).resolve().parent / "tools" / f"bcc_tp_{name}.py"
    if not port.exists():
        return None
    if not Path("/usr/lib/python3/dist-packages/bcc").is_dir():
        return Tool(f"bcc {name} (tracepoints)", [], missing="bcc's Python module is not installed "
                                                            "(bench/setup_peers.sh installs python3-bpfcc)")
    return Tool(f"bcc {name} (tracepoints)", ["/usr/bin/python3", str(port)])


def run_tool(name: str, args: argparse.Namespace, stack: ExitStack) -> None:
    ours = bpfkit_tool(name)
    port = bcc_tracepoint_port(name)
    peers = [bcc_tool(name), *([port] if port else []), libbpf_tool(name)]
    trigger: Optional[list[object]]
    match: Optional[str]
    check: Check
    if name == "execsnoop":
        trigger, match = [workload("execloop"), 0, 1000, "/bin/true", MARK], rf"^\s*true\s.*{MARK}"
        wl: list[object] = [workload("execloop"), args.n_exec]
        check = lines_matching(r"^\s*true\s")
    elif name == "opensnoop":
        path = stack.enter_context(marker_file())
        trigger, match = [workload("openloop"), 0, 1000, path], re.escape(path)
        wl, check = [workload("openloop"), args.n_open], lines_matching(r"openloop.*/dev/null")
    elif name == "runqlat":
        trigger, match = None, None
        wl, check = [workload("pingpong"), args.n_pingpong, 0], hist_note
    elif name == "biolatency":
        dev = stack.enter_context(loop_device())
        trigger, match = None, None
        wl, check = [workload("odirect"), dev, args.n_bio], hist_note
    elif name == "tcplife":
        trigger, match = [workload("tcpconn"), 0, 100, 1000], r"tcpconn"
        wl, check = [workload("tcpconn"), args.n_tcp, 1000], tcplife_note
    else:
        raise SystemExit(f"no benchmark for {name}")
    compare_startup(trigger, match, ours, peers, runs=args.startup_runs, title=f"{name}: start-up")
    compare(wl, ours, peers, runs=args.runs, check=check, title=f"{name}: workload slowdown")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tools", default="execsnoop,opensnoop,runqlat,biolatency,tcplife")
    ap.add_argument("--runs", type=int, default=3, help="interleaved rounds of the slowdown measurement")
    ap.add_argument("--startup-runs", type=int, default=5)
    ap.add_argument("--n-exec", type=int, default=2000)
    ap.add_argument("--n-open", type=int, default=200_000)
    ap.add_argument("--n-pingpong", type=int, default=200_000)
    ap.add_argument("--n-bio", type=int, default=20_000)
    ap.add_argument("--n-tcp", type=int, default=5_000)
    args = ap.parse_args()
    for name in args.tools.split(","):
        with ExitStack() as stack:
            run_tool(name, args, stack)


if __name__ == "__main__":
    main()
