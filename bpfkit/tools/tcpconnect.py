"""tcpconnect: active TCP connections (connect()) — process, addresses, destination port — as
bcc's tcpconnect. From ``sock:inet_sock_set_state`` instead of bcc's kprobes: the process is taken
when connect() moves the socket to SYN_SENT, the line is printed when the socket leaves SYN_SENT
(its local port is known then), refused and failed connects included (``state`` CLOSE).

Example::

    $ sudo bpfkit tcpconnect -P 80,443 -U
    $ sudo bpfkit tcpconnect -c

    from bpfkit.tools import tcpconnect
    with tcpconnect.stream(dports=[443]) as s:
        for batch in s:
            print(tcpconnect.decode(batch))
"""
from __future__ import annotations

import argparse
import collections
import sys
from typing import Any, Optional, Sequence

import numpy as np

from ._net import STATES, add_net_options, addr_row, family_of, ip, net_rodata, ports
from ._part2 import Traced, follow, tool_spec
from .common import Scope, ToolError, add_scope, nonnegative_int, parser, positive_float, print_json, run_tool

__all__ = ["stream", "decode", "main"]


def stream(*, pid: Optional[int] = None, tid: Optional[int] = None, comm: Optional[str] = None,
           cgroup: Optional[str] = None, uid: Optional[int] = None, dports: Sequence[int] = (), family: int = 0,
           netns: Optional[str] = None, min_lat_ns: int = 0, duration: Optional[float] = None) -> Traced:
    """Start tracing connect()s (of ``pid``/``tid``/``comm``/``cgroup``, user ``uid``, to one of
    ``dports``, ``family``, network namespace ``netns`` when given; ``min_lat_ns``: only those
    whose handshake took at least that long); iterate for numpy batches of ``struct
    connect_event`` (``a``, ``ts``, ``lat_ns``, ``pid``, ``tid``, ``uid``, ``state``, ``comm``)."""
    if len(dports) > 8:
        raise ToolError("at most 8 destination ports")
    spec = tool_spec("tcpconnect", Scope(pid=pid, tid=tid, comm=comm, cgroup=cgroup), filter_uid=uid,
                     min_lat_ns=min_lat_ns or None, **net_rodata(netns, family))
    if dports:
        spec.rodata.filter_dports = np.array(list(dports) + [0] * (8 - len(dports)), np.uint16)
    return Traced(spec, counters=("missed",), duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per connect: ``ts_ns``, ``pid``, ``tid``, ``uid``, ``comm``, the addresses,
    ``state`` ("ESTABLISHED", or "CLOSE" when it failed) and ``lat_ns``."""
    return [{"ts_ns": int(r["ts"]), "pid": int(r["pid"]), "tid": int(r["tid"]), "uid": int(r["uid"]),
             "comm": r["comm"].decode(errors="replace"), **addr_row(r["a"]),
             "state": STATES.get(int(r["state"]), str(int(r["state"]))), "lat_ns": int(r["lat_ns"])}
            for r in batch]


EXAMPLES = """examples:
    bpfkit tcpconnect            # trace all TCP connect()s
    bpfkit tcpconnect -t         # include timestamps
    bpfkit tcpconnect -p 181     # only trace PID 181
    bpfkit tcpconnect -P 80      # only trace port 80
    bpfkit tcpconnect -P 80,81   # only trace port 80 and 81
    bpfkit tcpconnect -U         # include UID
    bpfkit tcpconnect -u 1000    # only trace UID 1000
    bpfkit tcpconnect -c         # count connects per src ip and dest ip/port
    bpfkit tcpconnect -L         # include LPORT while printing outputs
    bpfkit tcpconnect --json     # one JSON object per connect
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("tcpconnect", "Trace TCP connects", EXAMPLES)
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-P", "--port", type=ports, help="comma-separated list of destination ports to trace")
    p.add_argument("-L", "--lport", action="store_true", help="include LPORT on output")
    p.add_argument("-U", "--print-uid", action="store_true", help="include UID on output")
    p.add_argument("-u", "--uid", type=nonnegative_int, help="trace this UID only")
    p.add_argument("-c", "--count", action="store_true", help="count connects per src ip and dest ip/port")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    add_scope(p, comm="--comm")
    add_net_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per connect (-c: one document)")
    return p


def _body(args: argparse.Namespace) -> int:
    s = stream(pid=args.pid, comm=args.comm, cgroup=args.cgroup, uid=args.uid,
               dports=args.port or (), family=family_of(args.ipv4, args.ipv6), netns=args.netns)
    if args.count:
        counts: collections.Counter[tuple[str, str, int]] = collections.Counter()

        def tally(batch: np.ndarray) -> None:
            for r in batch:
                counts[(ip(r["a"], "saddr"), ip(r["a"], "daddr"), int(r["a"]["dport"]))] += 1

        follow("tcpconnect", s, tally, tracing="Tracing connect ... Hit Ctrl-C to end", json_mode=args.json,
               duration=args.duration)
        if args.json:
            print_json([{"saddr": k[0], "daddr": k[1], "dport": k[2], "connects": n} for k, n in counts.items()])
        else:
            print("\n%-25s %-25s %-20s %s" % ("LADDR", "RADDR", "RPORT", "CONNECTS"))
            for (sa, da, dp), n in counts.most_common():
                print("%-25s %-25s %-20d %d" % (sa, da, dp, n))
        return 0
    head = ("%-9s " % "TIME(s)" if args.timestamp else "") + ("%-6s " % "UID" if args.print_uid else "")
    head += "%-7s %-12s %-2s %-16s %s%-16s %-6s" % ("PID", "COMM", "IP", "SADDR", "%-6s " % "LPORT" if args.lport
                                                    else "", "DADDR", "DPORT")
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
            line = ("%-9.3f " % ((int(r["ts"]) - first[0]) / 1e9) if args.timestamp else "")
            line += "%-6d " % int(r["uid"]) if args.print_uid else ""
            line += "%-7d %-12.12s %-2d %-16s %s%-16s %-6d" % (
                int(r["pid"]), r["comm"].decode(errors="replace"), 4 if int(a["family"]) == 2 else 6,
                ip(a, "saddr"), "%-6d " % int(a["lport"]) if args.lport else "", ip(a, "daddr"), int(a["dport"]))
            print(line)

    follow("tcpconnect", s, show, header=head, json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit tcpconnect [-t] [-p PID] [-P PORTS] [-L] [-U] [-u UID] [-c] [-4|-6] [--netns NS] [--json]``"""
    return run_tool("tcpconnect", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
