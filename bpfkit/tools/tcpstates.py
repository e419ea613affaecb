"""tcpstates: every TCP state change — socket, process, addresses, old and new state, and the time
spent in the old state — as bcc's tcpstates. From ``sock:inet_sock_set_state`` (no kprobes).

Example::

    $ sudo bpfkit tcpstates -D 80
    $ sudo bpfkit tcpstates --json

    from bpfkit.tools import tcpstates
    with tcpstates.stream(dport=80) as s:
        for batch in s:
            for row in tcpstates.decode(batch):
                print(row["oldstate"], "->", row["newstate"])
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from ._net import STATES, add_net_options, addr_row, family_of, ip, net_rodata
from ._part2 import Traced, follow, tool_spec
from .common import parser, positive_float, positive_int, print_json, run_tool

__all__ = ["stream", "decode", "main"]


def stream(*, lport: Optional[int] = None, dport: Optional[int] = None, family: int = 0,
           netns: Optional[str] = None, duration: Optional[float] = None) -> Traced:
    """Start tracing TCP state changes (local port ``lport``, remote port ``dport``, ``family``,
    network namespace ``netns`` when given); iterate for numpy batches of ``struct state_event``
    (``a``, ``skaddr``, ``ts``, ``delta_ns``, ``pid``, ``oldstate``, ``newstate``, ``comm``)."""
    spec = tool_spec("tcpstates", None, filter_lport=lport, filter_dport=dport, **net_rodata(netns, family))
    return Traced(spec, counters=("missed",), duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per change: ``ts_ns``, ``skaddr``, ``pid``, ``comm``, the addresses
    (:func:`~bpfkit.tools._net.addr_row`), ``oldstate``, ``newstate`` (names) and ``delta_ns``."""
    return [{"ts_ns": int(r["ts"]), "skaddr": int(r["skaddr"]), "pid": int(r["pid"]),
             "comm": r["comm"].decode(errors="replace"), **addr_row(r["a"]),
             "oldstate": STATES.get(int(r["oldstate"]), str(int(r["oldstate"]))),
             "newstate": STATES.get(int(r["newstate"]), str(int(r["newstate"]))),
             "delta_ns": int(r["delta_ns"])} for r in batch]


EXAMPLES = """examples:
    bpfkit tcpstates            # trace all TCP state changes
    bpfkit tcpstates -t         # include timestamp column
    bpfkit tcpstates -T         # include time column (HH:MM:SS)
    bpfkit tcpstates -w         # wider columns (fit IPv6)
    bpfkit tcpstates -s         # comma separated values
    bpfkit tcpstates -L 80      # only trace local port 80
    bpfkit tcpstates -D 80      # only trace remote port 80
    bpfkit tcpstates --json     # one JSON object per change
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("tcpstates", "Trace TCP session state changes and durations", EXAMPLES)
    p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output (seconds)")
    p.add_argument("-w", "--wide", action="store_true", help="wide column output (fits IPv6 addresses)")
    p.add_argument("-s", "--csv", action="store_true", help="comma separated values output")
    p.add_argument("-L", "--localport", type=positive_int, help="trace this local port only")
    p.add_argument("-D", "--remoteport", type=positive_int, help="trace this remote port only")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    add_net_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per change")
    return p


def _body(args: argparse.Namespace) -> int:
    s = stream(lport=args.localport, dport=args.remoteport, family=family_of(args.ipv4, args.ipv6),
               netns=args.netns)
    aw = 39 if args.wide else 15
    cols = ["SKADDR", "C-PID", "C-COMM", "LADDR", "LPORT", "RADDR", "RPORT", "OLDSTATE", "->", "NEWSTATE", "MS"]
    pre = (["TIME"] if args.time else []) + (["TIME(s)"] if args.timestamp else [])
    if args.csv:
        head = ",".join(pre + [c for c in cols if c != "->"])
    else:
        head = ("%-8s " % "TIME" if args.time else "") + ("%-9s " % "TIME(s)" if args.timestamp else "")
        head += "%-16s %-6s %-16s %-*s %-5s %-*s %-5s %-11s -> %-11s %s" % (
            "SKADDR", "C-PID", "C-COMM", aw, "LADDR", "LPORT", aw, "RADDR", "RPORT", "OLDSTATE", "NEWSTATE", "MS")
    first: list[int] = []

    def show(batch: np.ndarray) -> None:
        if args.json:
            for row in decode(batch):
                print_json(row)
            return
        for r in batch:
            if not first:
                first.append(int(r["ts"]))
            a = r["a"]
            old = STATES.get(int(r["oldstate"]), "?")
            new = STATES.get(int(r["newstate"]), "?")
            pref = [time.strftime("%H:%M:%S")] if args.time else []
            pref += ["%.6f" % ((int(r["ts"]) - first[0]) / 1e9)] if args.timestamp else []
            ms = "%.3f" % (int(r["delta_ns"]) / 1e6)
            comm = r["comm"].decode(errors="replace")
            if args.csv:
                print(",".join(pref + ["%x" % int(r["skaddr"]), str(int(r["pid"])), comm, ip(a, "saddr"),
                                       str(int(a["lport"])), ip(a, "daddr"), str(int(a["dport"])), old, new, ms]))
                continue
            line = ("%-8s " % pref[0] if args.time else "") + ("%-9s " % pref[-1] if args.timestamp else "")
            print(line + "%-16x %-6d %-16.16s %-*s %-5d %-*s %-5d %-11s -> %-11s %s" % (
                int(r["skaddr"]), int(r["pid"]), comm, aw, ip(a, "saddr"), int(a["lport"]), aw, ip(a, "daddr"),
                int(a["dport"]), old, new, ms))

    follow("tcpstates", s, show, header=head, json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit tcpstates [-T] [-t] [-w] [-s] [-L PORT] [-D PORT] [-4|-6] [--netns NS] [--json]``"""
    return run_tool("tcpstates", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
