"""solisten: listen() calls — process, protocol, backlog, address and port — as bcc's solisten.
From ``sock:inet_sock_set_state`` (a socket moves to LISTEN in the caller of listen()) instead of
bcc's kprobe on inet_listen; TCP and MPTCP sockets.

Example::

    $ sudo bpfkit solisten --show-netns

    from bpfkit.tools import solisten
    with solisten.stream(pid=181) as s:
        for batch in s:
            print(solisten.decode(batch))
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from ._net import add_net_options, addr_row, family_of, ip, net_rodata
from ._part2 import Traced, follow, tool_spec
from .common import Scope, add_scope, parser, positive_float, print_json, run_tool

__all__ = ["stream", "decode", "main"]


def stream(*, pid: Optional[int] = None, comm: Optional[str] = None, cgroup: Optional[str] = None,
           family: int = 0, netns: Optional[str] = None, duration: Optional[float] = None) -> Traced:
    """Start tracing listen() (of ``pid``/``comm``/``cgroup``, ``family``, network namespace
    ``netns`` when given); batches of ``struct listen_event`` (``a``, ``ts``, ``pid``, ``tid``,
    ``backlog``, ``comm``)."""
    spec = tool_spec("solisten", Scope(pid=pid, comm=comm, cgroup=cgroup), **net_rodata(netns, family))
    return Traced(spec, duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per listen(): ``ts_ns``, ``pid``, ``tid``, ``comm``, ``backlog``, the addresses
    (the bound address is ``saddr``, the port ``lport``)."""
    return [{"ts_ns": int(r["ts"]), "pid": int(r["pid"]), "tid": int(r["tid"]),
             "comm": r["comm"].decode(errors="replace"), "backlog": int(r["backlog"]), **addr_row(r["a"])}
            for r in batch]


EXAMPLES = """examples:
    bpfkit solisten              # Stream socket listen
    bpfkit solisten -t           # Timestamp stream socket listen
    bpfkit solisten -p 1234      # Stream socket listen for specified PID only
    bpfkit solisten --netns NS   # Stream socket listen for specified network namespace only
    bpfkit solisten --show-netns # Show network ns ID (useful for containers)
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("solisten", "Stream sockets listen", EXAMPLES)
    p.add_argument("-t", "--show-timestamp", action="store_true", help="include timestamp on output")
    p.add_argument("--show-netns", action="store_true", help="include network namespace on output")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    add_scope(p, comm="--comm")
    add_net_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per listen()")
    return p


def _body(args: argparse.Namespace) -> int:
    s = stream(pid=args.pid, comm=args.comm, cgroup=args.cgroup, family=family_of(args.ipv4, args.ipv6),
               netns=args.netns)
    head = ("%-9s " % "TIME" if args.show_timestamp else "") + ("%-12s " % "NETNS" if args.show_netns else "")
    head += "%-7s %-12s %-6s %-8s %-5s %s" % ("PID", "COMM", "PROTO", "BACKLOG", "PORT", "ADDR")

    def show(batch: np.ndarray) -> None:
        if args.json:
            for row in decode(batch):
                print_json(row)
            return
        for r in batch:
            a = r["a"]
            line = ("%-9s " % time.strftime("%H:%M:%S") if args.show_timestamp else "")
            line += "%-12d " % int(a["netns"]) if args.show_netns else ""
            print(line + "%-7d %-12.12s %-6s %-8d %-5d %s" % (
                int(r["pid"]), r["comm"].decode(errors="replace"), "TCPv4" if int(a["family"]) == 2 else "TCPv6",
                int(r["backlog"]), int(a["lport"]), ip(a, "saddr")))

    follow("solisten", s, show, header=head, json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit solisten [-t] [--show-netns] [-p PID] [-4|-6] [--netns NS] [--json]``"""
    return run_tool("solisten", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
