"""tcpaccept: TCP connections accepted (accept(), accept4()) — process, remote and local address
and port — as bcc's tcpaccept. From the accept syscall tracepoints instead of bcc's kretprobe on
inet_csk_accept: the new descriptor's socket is found in the caller's file table.

Example::

    $ sudo bpfkit tcpaccept -P 80,443

    from bpfkit.tools import tcpaccept
    with tcpaccept.stream(lports=[80]) as s:
        for batch in s:
            print(tcpaccept.decode(batch))
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from ._net import add_net_options, addr_row, family_of, ip, net_rodata, ports
from ._part2 import Traced, follow, tool_spec
from .common import Scope, ToolError, add_scope, parser, positive_float, print_json, run_tool

__all__ = ["stream", "decode", "main"]


def stream(*, pid: Optional[int] = None, tid: Optional[int] = None, comm: Optional[str] = None,
           cgroup: Optional[str] = None, lports: Sequence[int] = (), family: int = 0, netns: Optional[str] = None,
           duration: Optional[float] = None) -> Traced:
    """Start tracing accepted TCP connections (of ``pid``/``tid``/``comm``/``cgroup``, on one of
    local ports ``lports``, ``family``, network namespace ``netns`` when given); batches of
    ``struct accept_event`` (``a``, ``ts``, ``pid``, ``tid``, ``comm``)."""
    if len(lports) > 8:
        raise ToolError("at most 8 local ports")
    spec = tool_spec("tcpaccept", Scope(pid=pid, tid=tid, comm=comm, cgroup=cgroup), **net_rodata(netns, family))
    if lports:
        spec.rodata.filter_lports = np.array(list(lports) + [0] * (8 - len(lports)), np.uint16)
    return Traced(spec, duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per accepted connection: ``ts_ns``, ``pid``, ``tid``, ``comm`` and the addresses
    (``saddr``/``lport`` local, ``daddr``/``dport`` remote)."""
    return [{"ts_ns": int(r["ts"]), "pid": int(r["pid"]), "tid": int(r["tid"]),
             "comm": r["comm"].decode(errors="replace"), **addr_row(r["a"])} for r in batch]


EXAMPLES = """examples:
    bpfkit tcpaccept             # trace all TCP accept()s
    bpfkit tcpaccept -t          # include timestamps
    bpfkit tcpaccept -P 80,81    # only trace port 80 and 81
    bpfkit tcpaccept -p 181      # only trace PID 181
    bpfkit tcpaccept -4          # trace IPv4 family only
    bpfkit tcpaccept --json      # one JSON object per connection
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("tcpaccept", "Trace TCP accepts", EXAMPLES)
    p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-P", "--port", type=ports, help="comma-separated list of local ports to trace")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    add_scope(p, comm="--comm")
    add_net_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per connection")
    return p


def _body(args: argparse.Namespace) -> int:
    s = stream(pid=args.pid, comm=args.comm, cgroup=args.cgroup, lports=args.port or (),
               family=family_of(args.ipv4, args.ipv6), netns=args.netns)
    head = ("%-8s " % "TIME" if args.time else "") + ("%-9s " % "TIME(s)" if args.timestamp else "")
    head += "%-7s %-12s %-2s %-16s %-5s %-16s %-5s" % ("PID", "COMM", "IP", "RADDR", "RPORT", "LADDR", "LPORT")
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
            line = ("%-8s " % time.strftime("%H:%M:%S") if args.time else "")
            line += "%-9.3f " % ((int(r["ts"]) - first[0]) / 1e9) if args.timestamp else ""
            print(line + "%-7d %-12.12s %-2d %-16s %-5d %-16s %-5d" % (
                int(r["pid"]), r["comm"].decode(errors="replace"), 4 if int(a["family"]) == 2 else 6,
                ip(a, "daddr"), int(a["dport"]), ip(a, "saddr"), int(a["lport"])))

    follow("tcpaccept", s, show, header=head, json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit tcpaccept [-T] [-t] [-P PORTS] [-p PID] [-4|-6] [--netns NS] [--json]``"""
    return run_tool("tcpaccept", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
