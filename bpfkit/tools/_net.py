"""What the TCP tools share on the Python side: the ``struct sk_addr`` of ``c/tools/tcp_common.h``
as text (addresses, ``ADDR:PORT``), TCP state names as bcc prints them, the network namespace
option (``--netns NAME|PATH|INODE``) and the -4/-6 options.

Example::

    ip(rec["a"])                 # '10.1.2.3' or 'fe80::1'
    STATES[1]                    # 'ESTABLISHED'
    netns_inode("blue")          # the inode of /run/netns/blue
"""
from __future__ import annotations

import argparse
import errno
import os
import socket
from typing import Any, Optional

from .common import ToolError

__all__ = ["STATES", "ports", "ip", "ip16", "addr_row", "netns_inode", "net_rodata", "add_net_options", "family_of"]

# enum TCP_ESTABLISHED... of include/net/tcp_states.h, named as bcc's tcpstates prints them
STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2", 6: "TIME_WAIT",
          7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING", 12: "NEW_SYN_RECV"}

AF_INET, AF_INET6 = 2, 10


def ip(a: Any, which: str = "saddr") -> str:
    """Address ``which`` ("saddr"/"daddr") of an ``sk_addr`` record as text."""
    raw = bytes(a[which])
    if int(a["family"]) == AF_INET:
        return socket.inet_ntop(socket.AF_INET, raw[:4])
    return socket.inet_ntop(socket.AF_INET6, raw.ljust(16, b"\0"))


V4_MAPPED = b"\0" * 10 + b"\xff\xff"


def ip16(raw: bytes) -> str:
    """A 16-byte address (IPv4 v4-mapped, as tcpretrans' counts keep it) as text; a char array
    read back from a map has lost its trailing NULs, which are put back."""
    raw = bytes(raw).ljust(16, b"\0")
    if raw.startswith(V4_MAPPED):
        return socket.inet_ntop(socket.AF_INET, raw[12:])
    return socket.inet_ntop(socket.AF_INET6, raw)


def addr_row(a: Any) -> dict[str, Any]:
    """An ``sk_addr`` record as JSON-ready fields: ``family`` (4/6), ``saddr``, ``lport``,
    ``daddr``, ``dport``, ``netns``."""
    return {"family": 4 if int(a["family"]) == AF_INET else 6, "saddr": ip(a, "saddr"), "lport": int(a["lport"]),
            "daddr": ip(a, "daddr"), "dport": int(a["dport"]), "netns": int(a["netns"])}


def netns_inode(ns: Optional[str]) -> int:
    """The inode of network namespace ``ns``: a name under /run/netns, a path (/proc/PID/ns/net)
    or the inode number itself; 0 for None (any namespace). ToolError when there is none."""
    if ns is None:
        return 0
    if ns.isdigit():
        return int(ns)
    path = ns if "/" in ns else os.path.join("/run/netns", ns)
    try:
        return os.stat(path).st_ino
    except OSError as e:
        raise ToolError(f"--netns {ns}: no such network namespace ({e.strerror})", e.errno or errno.ENOENT) from None


def family_of(ipv4: bool, ipv6: bool) -> int:
    """The -4/-6 options as the BPF side's ``filter_family`` (0: both)."""
    if ipv4 and ipv6:
        raise ToolError("-4 and -6 exclude each other", errno.EINVAL)
    return AF_INET if ipv4 else AF_INET6 if ipv6 else 0


def net_rodata(netns: Optional[str] = None, family: int = 0) -> dict[str, int]:
    """The ``filter_netns`` / ``filter_family`` constants of tcp_common.h."""
    return {"filter_netns": netns_inode(netns), "filter_family": family}


def add_net_options(p: argparse.ArgumentParser, families: bool = True) -> None:
    """``-4``/``-6`` (bcc's) and ``--netns`` (ours: one network namespace only)."""
    if families:
        g = p.add_mutually_exclusive_group()
        g.add_argument("-4", "--ipv4", action="store_true", help="trace IPv4 family only")
        g.add_argument("-6", "--ipv6", action="store_true", help="trace IPv6 family only")
    p.add_argument("--netns", metavar="NS", help="trace this network namespace only (name, path or inode)")



def ports(text: str) -> list[int]:
    """bcc's comma-separated port list (at most 8 here)."""
    try:
        out = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of ports") from None
    if not out or len(out) > 8 or any(not 0 < p < 65536 for p in out):
        raise argparse.ArgumentTypeError(f"{text}: 1 to 8 ports, each 1..65535")
    return out
