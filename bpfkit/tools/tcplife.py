"""tcplife: one line per TCP session when it closes — process, addresses, ports, KB sent and
received, and its life in ms — as bcc's tcplife. From ``sock:inet_sock_set_state`` only (no
kprobes): the bytes are the socket's own counters (``bytes_acked`` out, ``bytes_received`` in).

Example::

    $ sudo bpfkit tcplife -p 1234
    $ sudo bpfkit tcplife --json -D 443

    from bpfkit.tools import tcplife
    with tcplife.stream(duration=10) as s:
        for batch in s:
            for row in tcplife.decode(batch):
                print(row["pid"], row["daddr"], row["tx_bytes"], row["rx_bytes"])
"""
from __future__ import annotations

import argparse
import errno
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from ._net import add_net_options, addr_row, family_of, ip, net_rodata, ports
from ._part2 import Traced, follow, tool_spec
from .common import Scope, ToolError, add_scope, parser, positive_float, print_json, run_tool

__all__ = ["stream", "decode", "main"]


def stream(*, pid: Optional[int] = None, comm: Optional[str] = None, cgroup: Optional[str] = None,
           lports: Sequence[int] = (), dports: Sequence[int] = (), family: int = 0, netns: Optional[str] = None,
           duration: Optional[float] = None) -> Traced:
    """Start tracing TCP sessions (of ``pid``/``comm``/``cgroup``, local ports ``lports``, remote
    ports ``dports`` (8 at most each), ``family`` 2 or 10, network namespace ``netns`` when given); iterate for numpy
    batches of ``struct life_event`` (``a``: addresses, ``ts``, ``span_ns``, ``rx_b``, ``tx_b``,
    ``pid``, ``comm``) until ``duration`` passes or ``close()``.

    Example::

        with stream(netns="blue") as s:
            ...
            rows = decode(s.drain())
    """
    scope = Scope(pid=pid, comm=comm, cgroup=cgroup)
    if len(lports) > 8 or len(dports) > 8:
        raise ToolError("at most 8 local and 8 remote ports", errno.EINVAL)
    spec = tool_spec("tcplife", scope, scoped=not scope.any, **net_rodata(netns, family))
    for name, ports_ in (("filter_lports", lports), ("filter_dports", dports)):
        if ports_:
            setattr(spec.rodata, name, np.array(list(ports_) + [0] * (8 - len(ports_)), np.uint16))
    return Traced(spec, counters=("missed",), duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per session: ``ts_ns`` (its close), ``pid``, ``comm``, ``family``, ``saddr``,
    ``lport``, ``daddr``, ``dport``, ``netns``, ``tx_bytes``, ``rx_bytes``, ``span_ns``."""
    return [{"ts_ns": int(r["ts"]), "pid": int(r["pid"]), "comm": r["comm"].decode(errors="replace"),
             **addr_row(r["a"]), "tx_bytes": int(r["tx_b"]), "rx_bytes": int(r["rx_b"]),
             "span_ns": int(r["span_ns"])} for r in batch]


EXAMPLES = """examples:
    bpfkit tcplife           # trace all TCP connect()s
    bpfkit tcplife -t        # include time column (HH:MM:SS)
    bpfkit tcplife -w        # wider columns (fit IPv6)
    bpfkit tcplife -s        # comma separated values
    bpfkit tcplife -p 181    # only trace PID 181
    bpfkit tcplife -L 80     # only trace local port 80
    bpfkit tcplife -D 80     # only trace remote port 80
    bpfkit tcplife --json    # one JSON object per session
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("tcplife", "Trace the lifespan of TCP sessions and summarize", EXAMPLES)
    p.add_argument("-T", "--time", action="store_true", help="include time column on output (HH:MM:SS)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output (seconds)")
    p.add_argument("-w", "--wide", action="store_true", help="wide column output (fits IPv6 addresses)")
    p.add_argument("-s", "--csv", action="store_true", help="comma separated values output")
    p.add_argument("-L", "--localport", type=ports, help="comma-separated list of local ports to trace")
    p.add_argument("-D", "--remoteport", type=ports, help="comma-separated list of remote ports to trace")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    add_scope(p, comm="--comm")
    add_net_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per session")
    return p


def _body(args: argparse.Namespace) -> int:
    s = stream(pid=args.pid, comm=args.comm, cgroup=args.cgroup, lports=args.localport or (), dports=args.remoteport or (),
               family=family_of(args.ipv4, args.ipv6), netns=args.netns)
    if args.csv:
        cols = ["PID", "COMM", "IP", "LADDR", "LPORT", "RADDR", "RPORT", "TX_KB", "RX_KB", "MS"]
        head = ",".join((["TIME"] if args.time else []) + (["TIME(s)"] if args.timestamp else []) + cols)
    else:
        aw = 39 if args.wide else 15
        head = ("%-8s " % "TIME" if args.time else "") + ("%-9s " % "TIME(s)" if args.timestamp else "")
        head += ("%-7s %-12s %-2s %-*s %-5s %-*s %-5s %5s %5s %s" % (
            "PID", "COMM", "IP", aw, "LADDR", "LPORT", aw, "RADDR", "RPORT", "TX_KB", "RX_KB", "MS")
            if args.wide else "%-7s %-12s %-*s %-5s %-*s %-5s %5s %5s %s" % (
            "PID", "COMM", aw, "LADDR", "LPORT", aw, "RADDR", "RPORT", "TX_KB", "RX_KB", "MS"))
    first: list[int] = []

    def show(batch: np.ndarray) -> None:
        for r in batch:
            if args.json:
                print_json(decode(r.reshape(1))[0])
                continue
            if not first:
                first.append(int(r["ts"]))
            a = r["a"]
            ipv = 4 if int(a["family"]) == 2 else 6
            fields: list[str] = []
            if args.time:
                fields.append(time.strftime("%H:%M:%S"))
            if args.timestamp:
                fields.append("%.6f" % ((int(r["ts"]) - first[0]) / 1e9))
            comm = r["comm"].decode(errors="replace")
            vals = [str(int(r["pid"])), comm, str(ipv), ip(a, "saddr"), str(int(a["lport"])), ip(a, "daddr"),
                    str(int(a["dport"])), str(int(r["tx_b"]) // 1024), str(int(r["rx_b"]) // 1024),
                    "%.2f" % (int(r["span_ns"]) / 1e6)]
            if args.csv:
                print(",".join(fields + vals))
                continue
            aw = 39 if args.wide else 15
            line = ("%-8s " % fields[0] if args.time else "") + ("%-9s " % fields[-1] if args.timestamp else "")
            if args.wide:
                line += "%-7s %-12.12s %-2s %-*s %-5s %-*s %-5s %5s %5s %s" % (
                    vals[0], comm, vals[2], aw, vals[3], vals[4], aw, vals[5], vals[6], vals[7], vals[8], vals[9])
            else:
                line += "%-7s %-12.12s %-*s %-5s %-*s %-5s %5s %5s %s" % (
                    vals[0], comm, aw, vals[3], vals[4], aw, vals[5], vals[6], vals[7], vals[8], vals[9])
            print(line)

    follow("tcplife", s, show, header=head, json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit tcplife [-T] [-t] [-w] [-s] [-p PID] [-L PORT] [-D PORT] [-4|-6] [--netns NS] [--json]``"""
    return run_tool("tcplife", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
