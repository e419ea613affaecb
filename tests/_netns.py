"""Private network namespaces for the TCP tool tests (pyroute2): each test gets a namespace of its
own (a unique name under /run/netns, removed after), with loopback up, and makes its sockets inside
it from the test process (:func:`inside`), so that the tools, scoped to the namespace's inode, see
the fixture's sessions and nothing else on this shared machine.

Example::

    with private_netns("life") as ns:
        s = tcp_session(ns, send=1000, reply=20)
"""
from __future__ import annotations

import contextlib
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Iterator, Optional

from pyroute2 import NetNS, netns

__all__ = ["Netns", "private_netns", "inside", "tcp_session", "recv_exact", "veth_pair"]


@dataclass(frozen=True)
class Netns:
    name: str
    inode: int


@contextlib.contextmanager
def private_netns(tag: str) -> Iterator[Netns]:
    """A fresh network namespace with loopback up, removed on exit."""
    name = f"bpfkit-{tag}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    netns.create(name)
    try:
        with NetNS(name) as ns:
            ns.link("set", index=ns.link_lookup(ifname="lo")[0], state="up")
        yield Netns(name, os.stat(f"/run/netns/{name}").st_ino)
    finally:
        netns.remove(name)


@contextlib.contextmanager
def inside(ns: Netns) -> Iterator[None]:
    """The calling thread in ``ns`` (sockets made here stay in it for life)."""
    netns.pushns(ns.name)
    try:
        yield
    finally:
        netns.popns()


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(65536, n - len(buf)))
        assert chunk, f"peer closed after {len(buf)} of {n} bytes"
        buf += chunk
    return bytes(buf)


@dataclass(frozen=True)
class Session:
    server_port: int
    client_port: int


def tcp_session(ns: Netns, send: int, reply: int, host: str = "127.0.0.1", server_ns: Optional[Netns] = None,
                server_host: Optional[str] = None) -> Session:
    """One TCP session made by this process: the client sends ``send`` bytes, the server reads them
    all and answers ``reply`` bytes, the client reads them and closes first, then the server.
    The server listens in ``server_ns`` (default ``ns``) on ``server_host`` (default ``host``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with inside(server_ns or ns):
        srv = socket.create_server((server_host or host, 0), family=family)
    with inside(ns):
        cli = socket.socket(family, socket.SOCK_STREAM)
    with srv, cli:
        port = srv.getsockname()[1]
        cli.connect((host, port))
        conn, _ = srv.accept()
        with conn:
            cli.sendall(b"x" * send)
            recv_exact(conn, send)
            conn.sendall(b"y" * reply)
            recv_exact(cli, reply)
            cport = cli.getsockname()[1]
            cli.shutdown(socket.SHUT_WR)
            assert conn.recv(1) == b""
    return Session(port, cport)


@contextlib.contextmanager
def veth_pair(a: Netns, b: Netns, addr_a: str = "10.201.0.1", addr_b: str = "10.201.0.2") -> Iterator[tuple[str, str]]:
    """A veth pair between ``a`` and ``b`` (``va`` with ``addr_a``/24 in a, ``vb`` with
    ``addr_b``/24 in b), up. Yields the two interface names. Gone with the namespaces."""
    with NetNS(a.name) as na:
        na.link("add", ifname="va", kind="veth", peer={"ifname": "vb", "net_ns_fd": b.name})
        i = na.link_lookup(ifname="va")[0]
        na.addr("add", index=i, address=addr_a, prefixlen=24)
        na.link("set", index=i, state="up")
    with NetNS(b.name) as nb:
        j = nb.link_lookup(ifname="vb")[0]
        nb.addr("add", index=j, address=addr_b, prefixlen=24)
        nb.link("set", index=j, state="up")
    yield "va", "vb"


def set_link(ns: Netns, ifname: str, up: bool) -> None:
    with NetNS(ns.name) as n:
        n.link("set", index=n.link_lookup(ifname=ifname)[0], state="up" if up else "down")


def in_thread(fn, *args):  # type: ignore[no-untyped-def]
    t = threading.Thread(target=fn, args=args, daemon=True)
    t.start()
    return t
