"""XDP and tcx attachment on a veth pair of our own: one end in a fresh network namespace, the other
in the root namespace. A sender inside the namespace sends exactly N UDP datagrams to the root end;
the BPF program counts them and drops or passes them, and a root-namespace socket sees 0 or N.

All traffic stays on that veth pair (private 10.199.0.0/16 addresses, static neighbours, no routes
beyond the /30), which is removed with its namespace even when a test fails.
"""
from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterator

import pytest

import bpfkit
from bpfkit import _sys as sc
from bpfkit.errors import AttachError, BpfNotFoundError, BpfUsageError
from bpfkit.probes.net import attach_tc, attach_xdp

pyroute2 = pytest.importorskip("pyroute2")

pytestmark = pytest.mark.root

N = 25
NUD_PERMANENT = 0x80
_counter = itertools.count()

# Runs inside the namespace (setns on the /run/netns file pyroute2 made): send N datagrams, exit.
# Plain ctypes, no imports beyond the standard library, so it starts in a few milliseconds.
_SENDER = """
import ctypes, os, socket, sys
ns, src, dst, port, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
fd = os.open("/run/netns/" + ns, os.O_RDONLY)
if ctypes.CDLL(None, use_errno=True).setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
    sys.exit("setns: " + os.strerror(ctypes.get_errno()))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((src, 0))
for i in range(n):
    s.sendto(b"bpfkit %d" % i, (dst, port))
"""


@dataclass
class VethNs:
    """``host`` lives in the root namespace with ``host_ip``; ``peer`` in namespace ``ns`` with ``peer_ip``."""

    ns: str
    host: str
    peer: str
    host_ip: str
    peer_ip: str
    host_index: int

    def send_from_ns(self, port: int, n: int) -> None:
        subprocess.run([sys.executable, "-I", "-S", "-c", _SENDER, self.ns, self.peer_ip, self.host_ip, str(port), str(n)],
                       check=True, timeout=10)


def _free_subnet(ipr: Any, seed: int) -> tuple[str, str]:
    used = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=socket.AF_INET)}
    for k in range(seed, seed + 16384):
        k %= 16384
        base = f"10.199.{k >> 6}.{(k & 63) * 4}"
        host = base.rsplit(".", 1)[0] + f".{(k & 63) * 4 + 1}"
        peer = base.rsplit(".", 1)[0] + f".{(k & 63) * 4 + 2}"
        if host not in used and peer not in used:
            return host, peer
    raise RuntimeError("no free /30 in 10.199.0.0/16")


@pytest.fixture
def veth() -> Iterator[VethNs]:
    from pyroute2 import IPRoute, netns

    uniq = f"{os.getpid() % 100000}x{next(_counter)}"
    ns, host, peer = f"bpfkit-net-{uniq}", f"bk{uniq}a", f"bk{uniq}b"
    netns.create(ns)
    try:
        with IPRoute() as ipr:
            host_ip, peer_ip = _free_subnet(ipr, os.getpid() * 31 + next(_counter))
            ipr.link("add", ifname=host, kind="veth", peer={"ifname": peer, "net_ns_fd": ns})
            hidx = ipr.link_lookup(ifname=host)[0]
            host_mac = ipr.get_links(hidx)[0].get_attr("IFLA_ADDRESS")
            ipr.addr("add", index=hidx, address=host_ip, prefixlen=30)
            ipr.link("set", index=hidx, state="up")
        with IPRoute(netns=ns) as nsr:
            pidx = nsr.link_lookup(ifname=peer)[0]
            peer_mac = nsr.get_links(pidx)[0].get_attr("IFLA_ADDRESS")
            nsr.addr("add", index=pidx, address=peer_ip, prefixlen=30)
            nsr.link("set", index=pidx, state="up")
            # static neighbours: no ARP exchange racing the first datagrams
            nsr.neigh("add", dst=host_ip, lladdr=host_mac, ifindex=pidx, state=NUD_PERMANENT)
        with IPRoute() as ipr:
            ipr.neigh("add", dst=peer_ip, lladdr=peer_mac, ifindex=hidx, state=NUD_PERMANENT)
        yield VethNs(ns, host, peer, host_ip, peer_ip, hidx)
    finally:
        with IPRoute() as ipr:
            for idx in ipr.link_lookup(ifname=host):
                ipr.link("del", index=idx)  # takes the peer with it
        netns.remove(ns)


def _udp_socket(ip: str) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 0))
    return s


def _received(s: socket.socket, want: int, timeout: float) -> int:
    """Datagrams read until ``want`` arrived, then any extra within a short quiet period."""
    got, deadline = 0, time.monotonic() + timeout
    while got < want and time.monotonic() < deadline:
        s.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            s.recv(64)
            got += 1
        except socket.timeout:
            break
    s.settimeout(0.1)
    try:
        while True:
            s.recv(64)
            got += 1
    except socket.timeout:
        return got


def _wait_count(obj: Any, field: str, want: int, timeout: float = 2.0) -> int:
    # veth hands packets to the receiving side's NAPI/backlog: counting may trail the sender's exit
    deadline = time.monotonic() + timeout
    while int(getattr(obj.bss, field)) < want and time.monotonic() < deadline:
        time.sleep(0.005)
    return int(getattr(obj.bss, field))


def _load(port: int, drop: bool, mark: int = 0) -> Any:
    spec = bpfkit.open("tests/net_attach")
    spec.rodata.port = port
    spec.rodata.drop = int(drop)
    spec.rodata.mark = mark
    return spec.load()


@pytest.mark.parametrize("mode", ["native", "generic"])
@pytest.mark.parametrize("drop", [True, False], ids=["drop", "pass"])
def test_xdp_counts_exactly_and_drops_or_passes(veth: VethNs, mode: str, drop: bool) -> None:
    with _udp_socket(veth.host_ip) as rx:
        port = rx.getsockname()[1]
        with _load(port, drop) as obj:
            with obj.progs.xdp_count.attach_xdp(veth.host, mode=mode) as link:
                link_id = link.id
                assert link_id in sc.link_ids()
                assert sc.link_info(link.fd).prog_id == obj.progs.xdp_count.id
                veth.send_from_ns(port, N)
                assert _wait_count(obj, "xdp_packets", N) == N
                assert _received(rx, 0 if drop else N, 2.0) == (0 if drop else N)
            assert link_id not in sc.link_ids()
            # detached: traffic now reaches the socket and is no longer counted
            veth.send_from_ns(port, 3)
            assert _received(rx, 3, 2.0) == 3
            assert obj.bss.xdp_packets == N


def test_xdp_by_ifindex_auto_mode_and_second_attach_names_the_holder(veth: VethNs) -> None:
    with _load(9, False) as obj:
        prog = obj.progs.xdp_count
        with prog.attach_xdp(veth.host_index) as link:
            assert veth.host in link.description
            with pytest.raises(AttachError, match=rf"link {link.id} \(program 'xdp_count'") as ei:
                prog.attach_xdp(veth.host, mode="native")  # veth: auto chose native
            assert ei.value.errno == 16  # EBUSY
        with prog.attach_xdp(veth.host):  # free again once closed
            pass


@pytest.mark.parametrize("drop", [True, False], ids=["drop", "pass"])
def test_tcx_ingress_counts_exactly_and_drops_or_passes(veth: VethNs, drop: bool) -> None:
    with _udp_socket(veth.host_ip) as rx:
        port = rx.getsockname()[1]
        with _load(port, drop, mark=0x5EED) as obj:
            with obj.progs.tc_count.attach_tc(veth.host, "ingress") as link:
                link_id = link.id
                assert link_id in sc.link_ids()
                veth.send_from_ns(port, N)
                assert _wait_count(obj, "tc_packets", N) == N
                assert _received(rx, 0 if drop else N, 2.0) == (0 if drop else N)
            assert link_id not in sc.link_ids()
            veth.send_from_ns(port, 3)
            assert _received(rx, 3, 2.0) == 3
            assert obj.bss.tc_packets == N


def test_tcx_egress_counts_what_the_root_namespace_sends(veth: VethNs) -> None:
    port = 9  # discard: nothing listens in the namespace, the count is taken on the way out
    with _load(port, True) as obj, _udp_socket(veth.host_ip) as tx:
        with obj.progs.tc_count.attach_tc(veth.host_index, "egress") as link:
            link_id = link.id
            for i in range(N):
                tx.sendto(b"x", (veth.peer_ip, port))
            assert _wait_count(obj, "tc_packets", N) == N
        assert link_id not in sc.link_ids()


def test_xdp_and_two_tcx_programs_share_an_interface_in_order(veth: VethNs) -> None:
    with _udp_socket(veth.host_ip) as rx:
        port = rx.getsockname()[1]
        with _load(port, False, mark=0x5EED) as obj:
            with obj.progs.xdp_count.attach_xdp(veth.host, mode="generic"), \
                    obj.progs.tc_count.attach_tc(veth.host, "ingress"), \
                    obj.progs.tc_marked.attach_tc(veth.host, "ingress"):  # runs after tc_count
                veth.send_from_ns(port, N)
                assert _wait_count(obj, "xdp_packets", N) == N
                assert _wait_count(obj, "tc_packets", N) == N
                assert _wait_count(obj, "marked_packets", N) == N  # saw the mark tc_count set
                assert _received(rx, N, 2.0) == N


def test_missing_interface_and_bad_arguments() -> None:
    with _load(9, False) as obj:
        xdp, tc = obj.progs.xdp_count.fd, obj.progs.tc_count.fd
        with pytest.raises(BpfNotFoundError, match="'bk-no-such-if'"):
            attach_xdp(xdp, "bk-no-such-if")
        with pytest.raises(BpfNotFoundError, match="'bk-no-such-if'"):
            attach_tc(tc, "bk-no-such-if")
        with pytest.raises(BpfNotFoundError, match="999999"):
            attach_xdp(xdp, 999999)
        with pytest.raises(BpfUsageError, match="mode"):
            attach_xdp(xdp, "lo", mode="offload")
        with pytest.raises(BpfUsageError, match="direction"):
            attach_tc(tc, "lo", "sideways")
        with pytest.raises(AttachError, match="SCHED_CLS"):
            attach_tc(xdp, "lo", "ingress")  # an XDP program on a tc hook


TCX_SRC = """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
__u64 seen = 0;
SEC("tcx/ingress")
int count_all(struct __sk_buff *skb)
{
    if (skb->protocol == bpf_htons(0x0800))  /* IPv4: only our datagrams (no ARP: static neighbours) */
        __sync_fetch_and_add(&seen, 1);
    return -1;  /* TCX_NEXT */
}
char LICENSE[] SEC("license") = "GPL";
"""


def test_tcx_section_names_load_and_attach(veth: VethNs) -> None:
    # libbpf 1.1 does not know SEC("tcx/ingress"); the spec gives it the type a newer libbpf would
    spec = bpfkit.open(bpfkit.compile(TCX_SRC))
    p = spec.programs.count_all
    assert (p.type, p.expected_attach_type) == ("sched_cls", sc.BPF_TCX_INGRESS)
    with _udp_socket(veth.host_ip) as rx, spec.load() as obj:
        port = rx.getsockname()[1]
        with obj.progs.count_all.attach_tc(veth.host, "ingress"):
            veth.send_from_ns(port, N)
            assert _received(rx, N, 2.0) == N
        assert obj.bss.seen == N
        with pytest.raises(AttachError, match=r"attach_xdp\(\) needs a xdp program"):
            obj.progs.count_all.attach_xdp(veth.host)
