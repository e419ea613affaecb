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
import struct
import uuid
from dataclasses import dataclass
from typing import Iterator, Optional

from pyroute2 import NetNS, netns

__all__ = ["Netns", "private_netns", "inside", "tcp_session", "recv_exact", "veth_pair", "lossy_pair", "LossyPair"]


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


XDP_DROP_SRC = r'''
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u16 port = 0;
__u32 to_drop = 0;
__u32 dropped = 0;

/* Drop the first `to_drop` IPv4 TCP segments with payload to `port`: losses TCP must repair. */
SEC("xdp")
int drop_data(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct tcphdr *tcp;
	__u32 ihl, len;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(0x0800) || ip->protocol != 6)
		return XDP_PASS;
	ihl = ip->ihl * 4;
	if (ihl < 20)
		return XDP_PASS;
	tcp = (void *)ip + ihl;
	if ((void *)(tcp + 1) > end || tcp->dest != bpf_htons(port))
		return XDP_PASS;
	len = bpf_ntohs(ip->tot_len) - ihl - tcp->doff * 4;
	if (len && dropped < to_drop) {
		dropped++;
		return XDP_DROP;
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
'''


@dataclass(frozen=True)
class LossyResult:
    client_port: int
    server_port: int
    dropped: int        # segments the XDP program dropped
    total_retrans: int  # the sending socket's own count (tcp_info.tcpi_total_retrans)


@dataclass
class LossyPair:
    """A sender namespace and a receiver namespace joined by a veth, with an XDP program on the
    receiving end that drops exactly ``drops`` data segments to the server's port."""

    sender: Netns
    receiver: Netns
    sender_ip: str
    receiver_ip: str
    obj: object
    srv: socket.socket

    def send(self, nbytes: int) -> LossyResult:
        """One connection that sends ``nbytes`` through the losses and waits until all arrived."""
        with inside(self.sender):
            cli = socket.socket()
        with cli:
            cli.connect((self.receiver_ip, self.srv.getsockname()[1]))
            conn, _ = self.srv.accept()
            with conn:
                cli.sendall(b"z" * nbytes)
                recv_exact(conn, nbytes)
                info = cli.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
                cport = cli.getsockname()[1]
        # struct tcp_info: tcpi_total_retrans is the u32 at byte 100
        return LossyResult(cport, self.srv.getsockname()[1], int(self.obj.bss.dropped),  # type: ignore[attr-defined]
                           struct.unpack_from("I", info, 100)[0])


@contextlib.contextmanager
def lossy_pair(drops: int) -> Iterator[LossyPair]:
    """Tail loss probes are off in the sender's namespace (net.ipv4.tcp_early_retrans=0, a
    per-namespace setting), so that each lost segment is repaired by exactly one RTO
    retransmission."""
    import bpfkit

    with private_netns("lossa") as a, private_netns("lossb") as b, veth_pair(a, b) as (_, peer):
        with inside(a), open("/proc/sys/net/ipv4/tcp_early_retrans", "w") as f:
            f.write("0")
        with inside(b):
            srv = socket.create_server(("10.201.0.2", 0))
        spec = bpfkit.open(bpfkit.compile(XDP_DROP_SRC))
        spec.rodata.port = srv.getsockname()[1]
        with spec.load() as obj, srv:
            obj.bss.to_drop = drops
            with inside(b):
                link = obj.progs.drop_data.attach_xdp(peer)
            with link:
                yield LossyPair(a, b, "10.201.0.1", "10.201.0.2", obj, srv)
