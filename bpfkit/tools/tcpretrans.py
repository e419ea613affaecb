"""tcpretrans: TCP retransmissions — addresses, ports and the socket's state — as bcc's
tcpretrans; ``-c`` counts them per flow in the kernel. From ``tcp:tcp_retransmit_skb`` instead of
bcc's kprobe (so the PID is whatever ran: usually 0, as bcc prints). bcc's ``-l`` (tail loss
probes) needs a kprobe on tcp_send_loss_probe: FeatureNotSupported where kprobes are missing.

Example::

    $ sudo bpfkit tcpretrans
    $ sudo bpfkit tcpretrans -c

    from bpfkit.tools import tcpretrans
    with tcpretrans.stream() as s:
        for batch in s:
            print(tcpretrans.decode(batch))
    print(tcpretrans.count(duration=10))       # {(laddr, lport, raddr, rport): n}
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any, Optional, Sequence

import numpy as np

from ._net import STATES, add_net_options, addr_row, family_of, ip, ip16, net_rodata
from ._part2 import Traced, follow, require_kprobes, tool_spec
from .common import parser, positive_float, print_json, run_tool, stop_flag

__all__ = ["stream", "decode", "counts", "count", "main"]


def stream(*, family: int = 0, netns: Optional[str] = None, count_only: bool = False,
           duration: Optional[float] = None) -> Traced:
    """Start tracing retransmissions (``family``, network namespace ``netns`` when given);
    batches of ``struct retrans_event`` (``a``, ``ts``, ``pid``, ``state``), or, ``count_only``,
    counted per flow in map ``counts`` (read with :func:`counts`)."""
    spec = tool_spec("tcpretrans", None, count_only=count_only, **net_rodata(netns, family))
    return Traced(spec, counters=("missed",), duration=duration)


def decode(batch: np.ndarray) -> list[dict[str, Any]]:
    """One dict per retransmission: ``ts_ns``, ``pid``, the addresses, ``state`` (name)."""
    return [{"ts_ns": int(r["ts"]), "pid": int(r["pid"]), **addr_row(r["a"]),
             "state": STATES.get(int(r["state"]), str(int(r["state"])))} for r in batch]


def counts(t: Traced) -> dict[tuple[str, int, str, int], int]:
    """The per-flow counts of a ``count_only`` stream: (laddr, lport, raddr, rport) -> n."""
    out: dict[tuple[str, int, str, int], int] = {}
    keys, vals = t.obj.maps["counts"].to_numpy()
    for key, n in zip(keys, vals):   # one entry per flow and state: summed per flow, as bcc's -c
        k = (ip16(key["saddr"]), int(key["lport"]), ip16(key["daddr"]), int(key["dport"]))
        out[k] = out.get(k, 0) + int(n)
    return out


def count(duration: float, **options: Any) -> dict[tuple[str, int, str, int], int]:
    """Retransmissions per flow over ``duration`` seconds (options as :func:`stream`)."""
    with stream(count_only=True, **options) as t:
        time.sleep(duration)
        return counts(t)


EXAMPLES = """examples:
    bpfkit tcpretrans             # trace TCP retransmits
    bpfkit tcpretrans -c          # count occurred retransmits per flow
    bpfkit tcpretrans -4          # trace IPv4 family only
    bpfkit tcpretrans --json      # one JSON object per retransmission
"""


def build_parser() -> argparse.ArgumentParser:
    p = parser("tcpretrans", "Trace TCP retransmits", EXAMPLES)
    p.add_argument("-l", "--lossprobe", action="store_true", help="include tail loss probe attempts (needs kprobes)")
    p.add_argument("-c", "--count", action="store_true", help="count occurred retransmits per flow")
    p.add_argument("--duration", type=positive_float, metavar="SECONDS", help="trace this long")
    add_net_options(p)
    p.add_argument("--json", action="store_true", help="one JSON object per retransmission (-c: one document)")
    return p


def _body(args: argparse.Namespace) -> int:
    if args.lossprobe:
        require_kprobes("tcpretrans -l (tail loss probes: no tracepoint, a kprobe on tcp_send_loss_probe)")
    family = family_of(args.ipv4, args.ipv6)
    if args.count:
        with stream(family=family, netns=args.netns, count_only=True) as t, stop_flag() as stop:
            print("Tracing retransmits ... Hit Ctrl-C to end", file=sys.stderr if args.json else sys.stdout,
                  flush=True)
            stop.sleep(args.duration)
            found = counts(t)
        if args.json:
            print_json([{"laddr": k[0], "lport": k[1], "raddr": k[2], "rport": k[3], "retransmits": n}
                        for k, n in found.items()])
        else:
            print("\n%-25s %-25s %s" % ("LADDR:LPORT", "RADDR:RPORT", "RETRANSMITS"))
            for (la, lp, ra, rp), n in sorted(found.items(), key=lambda kv: -kv[1]):
                print("%-25s %-25s %d" % (f"{la}:{lp}", f"{ra}:{rp}", n))
        return 0
    s = stream(family=family, netns=args.netns)
    head = "%-8s %-7s %-2s %-20s %1s> %-20s %s" % ("TIME", "PID", "IP", "LADDR:LPORT", "T", "RADDR:RPORT", "STATE")

    def show(batch: np.ndarray) -> None:
        if args.json:
            for row in decode(batch):
                print_json(row)
            return
        for r in batch:
            a = r["a"]
            print("%-8s %-7d %-2d %-20s R> %-20s %s" % (
                time.strftime("%H:%M:%S"), int(r["pid"]), 4 if int(a["family"]) == 2 else 6,
                f"{ip(a, 'saddr')}:{int(a['lport'])}", f"{ip(a, 'daddr')}:{int(a['dport'])}",
                STATES.get(int(r["state"]), "?")))

    follow("tcpretrans", s, show, header=head, tracing="Tracing retransmits ... Hit Ctrl-C to end",
           json_mode=args.json, duration=args.duration)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit tcpretrans [-c] [-l] [-4|-6] [--netns NS] [--json]``"""
    return run_tool("tcpretrans", build_parser(), argv, _body)


if __name__ == "__main__":
    sys.exit(main())
