"""tcptop: TCP throughput per process and flow — KB received and sent — as a top table every
interval, as bcc's tcptop. Summed in the kernel from ``sock:sock_send_length`` and
``sock:sock_recv_length`` (what sendmsg()/recvmsg() returned on a TCP socket; MSG_PEEK left out)
instead of bcc's kprobes.

Example::

    $ sudo bpfkit tcptop -C 1 5

    from bpfkit.tools import tcptop
    with tcptop.trace(pid=181) as t:
        ...
        for row in t.read(clear=True):
            print(row["pid"], row["daddr"], row["rx_bytes"], row["tx_bytes"])
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence

from ._net import add_net_options, addr_row, family_of, net_rodata
from ..errors import FeatureNotSupported
from ._part2 import Traced, every, has_tracepoint, tool_spec
from .common import Scope, add_scope, parser, positive_float, positive_int, print_json, run_tool, stop_flag

__all__ = ["Tcptop", "trace", "main"]


class Tcptop(Traced):
    """tcptop's kernel-side table, read with :meth:`read`."""

    def read(self, clear: bool = False) -> list[dict[str, Any]]:
        """One dict per (process, flow): ``pid``, ``comm``, the addresses, ``rx_bytes``,
        ``tx_bytes``; largest first. ``clear``: the counts restart (bcc's default per interval)."""
        m = self.obj.maps["flows"]
        keys, vals = m.pop_all() if clear else m.to_numpy()
        rows = [{"pid": int(k["pid"]), "comm": bytes(v["comm"]).split(b"\0")[0].decode(errors="replace"),
                 **addr_row(k["a"]), "rx_bytes": int(v["rx"]), "tx_bytes": int(v["tx"])} for k, v in zip(keys, vals)]
        rows.sort(key=lambda r: -(r["rx_bytes"] + r["tx_bytes"]))
        return rows


def trace(*, pid: Optional[int] = None, comm: Optional[str] = None, cgroup: Optional[str] = None, family: int = 0,
          netns: Optional[str] = None) -> Tcptop:
    """Start counting TCP bytes (of ``pid``/``comm``/``cgroup``, ``family``, ``netns`` when given)."""
    for tp in ("sock_send_length", "sock_recv_length"):
        if not has_tracepoint("sock", tp):
            raise FeatureNotSupported(f"tcptop needs tracepoint sock:{tp} (Linux 6.3+), which this kernel does not "
                                      "have (bcc's tcptop uses kprobes on tcp_sendmsg/tcp_cleanup_rbuf instead)",
                                      feature=f"tracepoint sock:{tp}")
    spec = tool_spec("tcptop", Scope(pid=pid, comm=comm, cgroup=cgroup), **net_rodata(netns, family))
    return Tcptop(spec, counters=("missed",))


EXAMPLES = """examples:
    bpfkit tcptop           # trace TCP send/recv by host
    bpfkit tcptop -C        # don't clear the screen
    bpfkit tcptop -p 181    # only trace PID 181
    bpfkit tcptop -4        # trace IPv4 family only
    bpfkit tcptop --json 1 3
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("tcptop", "Summarize TCP send/recv throughput by host", EXAMPLES)
    p.add_argument("-C", "--noclear", action="store_true", help="don't clear the screen")
    p.add_argument("-S", "--nosummary", action="store_true", help="skip system summary line")
    p.add_argument("interval", nargs="?", default=1.0, type=positive_float, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")
    add_scope(p, comm="--comm")
    add_net_options(p)
    p.add_argument("--json", action="store_true", help="one JSON document per interval")
    return p


def _body(args: argparse.Namespace) -> int:
    t = trace(pid=args.pid, comm=args.comm, cgroup=args.cgroup, family=family_of(args.ipv4, args.ipv6),
              netns=args.netns)
    with t, stop_flag() as stop:
        print("Tracing... Output every %s secs. Hit Ctrl-C to end" % args.interval,
              file=sys.stderr if args.json else sys.stdout, flush=True)

        def emit(last: bool) -> None:
            rows = t.read(clear=True)
            if args.json:
                print_json({"time": time.strftime("%H:%M:%S"), "flows": rows, "lost": t.lost})
                return
            if not args.noclear:
                sys.stdout.write("\033[2J\033[H")
            if not args.nosummary:
                with open("/proc/loadavg") as f:
                    print("%-8s loadavg: %s" % (time.strftime("%H:%M:%S"), f.read().strip()))
            for fam in (4, 6):
                part = [r for r in rows if r["family"] == fam]
                if not part:
                    continue
                w = 21 if fam == 4 else 51
                print("\n%-7s %-12s %-*s %-*s %6s %6s" % ("PID", "COMM", w, "LADDR" if fam == 4 else "LADDR6",
                                                          w, "RADDR" if fam == 4 else "RADDR6", "RX_KB", "TX_KB"))
                for r in part:
                    print("%-7d %-12.12s %-*s %-*s %6d %6d" % (
                        r["pid"], r["comm"], w, f"{r['saddr']}:{r['lport']}", w, f"{r['daddr']}:{r['dport']}",
                        r["rx_bytes"] // 1024, r["tx_bytes"] // 1024))

        every(args.interval, args.count, None, emit, stop)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit tcptop [-C] [-S] [-p PID] [-4|-6] [--netns NS] [--json] [interval [count]]``"""
    return run_tool("tcptop", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
