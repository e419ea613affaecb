"""tcpconnlat: TCP connect latency — from connect() (SYN sent) to the handshake's end — per
connection, as bcc's tcpconnlat. The BPF side is tcpconnect's (``sock:inet_sock_set_state``): the
latency is the time the socket spent in SYN_SENT; only connects that were established count.

Example::

    $ sudo bpfkit tcpconnlat 1          # connects slower than 1 ms
    $ sudo bpfkit tcpconnlat --json -p 181

    from bpfkit.tools import tcpconnlat
    with tcpconnlat.stream(min_ms=1) as s:
        for batch in s:
            print(batch["lat_ns"])
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Optional, Sequence

import numpy as np

from ._net import add_net_options, family_of, ip
from ._part2 import Traced, follow
from . import tcpconnect
from .common import add_scope, parser, positive_float, print_json, run_tool

__all__ = ["stream", "decode", "main"]


def stream(*, min_ms: float = 0.0, pid: Optional[int] = None, tid: Optional[int] = None,
           comm: Optional[str] = None, cgroup: Optional[str] = None, family: int = 0, netns: Optional[str] = None,
           duration: Optional[float] = None) -> Traced:
    """Start tracing connect latency (at least ``min_ms``; scope as :func:`tcpconnect.stream`);
    batches of ``struct connect_event`` (``lat_ns``; failed connects are in them with ``state``
    CLOSE: :func:`decode` leaves them out)."""
    return tcpconnect.stream(pid=pid, tid=tid, comm=comm, cgroup=cgroup, family=family, netns=netns,
                             min_lat_ns=int(min_ms * 1e6), duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per established connect (as :func:`tcpconnect.decode`, with ``lat_ms``)."""
    return [dict(row, lat_ms=row["lat_ns"] / 1e6) for row in tcpconnect.decode(batch) if row["state"] == "ESTABLISHED"]


EXAMPLES = """examples:
    bpfkit tcpconnlat              # trace all TCP connect()s
    bpfkit tcpconnlat 1            # trace connection latency slower than 1 ms
    bpfkit tcpconnlat 0.1          # trace connection latency slower than 100 us
    bpfkit tcpconnlat -t           # include timestamps
    bpfkit tcpconnlat -p 181       # only trace PID 181
    bpfkit tcpconnlat -L           # include LPORT while printing outputs
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("tcpconnlat", "Trace TCP connects and show connection latency", EXAMPLES)
    p.add_argument("duration_ms", nargs="?", type=float, default=0.0, metavar="min_ms",
                   help="minimum duration to trace (ms)")
    p.add_argument("-t", "--timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("-L", "--lport", action="store_true", help="include LPORT on output")
    p.add_argument("-v", "--verbose", action="store_true", help="print the BPF program (ignored: it is prebuilt)")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    add_scope(p, comm="--comm")
    add_net_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per connect")
    return p


def _body(args: argparse.Namespace) -> int:
    if args.duration_ms < 0:
        raise argparse.ArgumentTypeError("min_ms must not be negative")
    s = stream(min_ms=args.duration_ms, pid=args.pid, comm=args.comm, cgroup=args.cgroup,
               family=family_of(args.ipv4, args.ipv6), netns=args.netns)
    head = ("%-9s " % "TIME(s)" if args.timestamp else "") + "%-7s %-12s %-2s %-16s %s%-16s %-5s %s" % (
        "PID", "COMM", "IP", "SADDR", "%-6s " % "LPORT" if args.lport else "", "DADDR", "DPORT", "LAT(ms)")
    first: list[int] = []

    def show(batch: np.ndarray) -> int:
        n = 0
        for r in batch:
            if int(r["state"]) != 1:
                continue
            n += 1
            if args.json:
                print_json(decode(r.reshape(1))[0])
                continue
            if not first:
                first.append(int(r["ts"]))
            a = r["a"]
            print(("%-9.3f " % ((int(r["ts"]) - first[0]) / 1e9) if args.timestamp else "") +
                  "%-7d %-12.12s %-2d %-16s %s%-16s %-5d %.2f" % (
                      int(r["pid"]), r["comm"].decode(errors="replace"), 4 if int(a["family"]) == 2 else 6,
                      ip(a, "saddr"), "%-6d " % int(a["lport"]) if args.lport else "", ip(a, "daddr"),
                      int(a["dport"]), int(r["lat_ns"]) / 1e6))
        return n

    follow("tcpconnlat", s, show, header=head, json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit tcpconnlat [min_ms] [-t] [-p PID] [-L] [-4|-6] [--netns NS] [--json]``"""
    return run_tool("tcpconnlat", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
