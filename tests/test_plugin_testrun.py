"""bpfkit.testing.testrun: BPF_PROG_TEST_RUN on synthetic input, exact outputs checked (issue 6)."""
from __future__ import annotations

import ipaddress
import os
import socket
import struct
from typing import Iterator

import numpy as np
import pytest

import bpfkit
from bpfkit.errors import BpfError, BpfUsageError
from bpfkit.shipped import find_object
from bpfkit.testing import testrun
from bpfkit.testing.testrun import udp4_packet

pytestmark = pytest.mark.root

DST = bytes.fromhex("020000000002")
SRC = bytes.fromhex("020000000001")
ETHERTYPE = b"\x88\xb5"  # IEEE local experimental: no IP parsing, the payload starts at offset 14


def frame(payload: bytes) -> bytes:
    return DST + SRC + ETHERTYPE + payload


@pytest.fixture(scope="module")
def obj() -> Iterator[bpfkit.Object]:
    path = find_object("tests/testrun_progs")
    assert path is not None, "build the BPF objects first (make setup)"
    with bpfkit.load(str(path)) as o:
        yield o


def test_xdp_rewrites_and_returns_tx(obj: bpfkit.Object) -> None:
    before = obj.bss.xdp_runs
    res = testrun.run_xdp(obj.progs.xdp_bounce, frame(b"\x05hello"))
    assert (res.retval, res.action) == (3, "XDP_TX")
    assert res.data == SRC + DST + ETHERTYPE + b"\x06hello"  # MACs swapped, first byte + 1
    assert res.duration_ns > 0
    assert obj.bss.xdp_runs == before + 1


def test_xdp_drop_and_abort_by_content(obj: bpfkit.Object) -> None:
    drop = testrun.run_xdp(obj.progs.xdp_bounce, frame(b"\xffdata"))
    assert drop.action == "XDP_DROP" and drop.data == frame(b"\xffdata")
    runt = testrun.run_xdp(obj.progs.xdp_bounce, frame(b""))
    assert runt.action == "XDP_ABORTED"


def test_xdp_repeat_runs_on_the_same_buffer(obj: bpfkit.Object) -> None:
    before = obj.bss.xdp_runs
    res = testrun.run_xdp(obj.progs.xdp_bounce, frame(b"\x00"), repeat=101)
    assert obj.bss.xdp_runs == before + 101
    # 101 swaps leave the MACs swapped; the counter byte went up once per run.
    assert res.data == SRC + DST + ETHERTYPE + bytes([101])


def test_xdp_output_length_follows_adjust_tail(obj: bpfkit.Object) -> None:
    pkt = frame(bytes([5]) + b"abcdefghij")
    res = testrun.run_xdp(obj.progs.xdp_trim, pkt)
    assert res.action == "XDP_PASS" and res.data == pkt[:-5]


def test_tc_context_in_and_out(obj: bpfkit.Object) -> None:
    res = testrun.run_skb(obj.progs.tc_mark, frame(b"\x07\x00tail"), mark=20)
    assert (res.retval, res.action) == (0, "TC_ACT_OK")
    assert res.skb["mark"] == 41 and res.skb["priority"] == 7
    assert res.data == frame(b"\x07\xabtail")  # bpf_skb_store_bytes reached the output packet
    shot = testrun.run_skb(obj.progs.tc_mark, frame(b"\xff\x00"), mark=1)
    assert shot.action == "TC_ACT_SHOT" and shot.skb["mark"] == 3 and shot.skb["priority"] == 255


def test_tc_on_ipv4_needs_a_real_header(obj: bpfkit.Object) -> None:
    pkt = udp4_packet(b"xyz")
    res = testrun.run_skb(obj.progs.tc_mark, pkt)
    assert res.action == "TC_ACT_OK" and res.skb["priority"] == 0x45  # IPv4 version/IHL byte
    bad = DST + SRC + b"\x08\x00" + b"\x05hello"  # says IPv4, carries no IP header
    with pytest.raises(BpfError, match="complete IP header"):
        testrun.run_skb(obj.progs.tc_mark, bad)


def test_flow_dissector_fills_keys(obj: bpfkit.Object) -> None:
    res = testrun.run_flow_dissector(obj.progs.dissect, udp4_packet(b"q", src="192.0.2.1", dst="198.51.100.7",
                                                                     sport=4321, dport=53))
    assert res.retval == 0  # BPF_OK
    k = res.flow_keys
    assert (int(k["nhoff"]), int(k["thoff"]), int(k["ip_proto"])) == (14, 34, socket.IPPROTO_UDP)
    assert socket.ntohs(int(k["sport"])) == 4321 and socket.ntohs(int(k["dport"])) == 53
    assert ipaddress.IPv4Address(struct.pack("<I", int(k["ipv4_src"]))) == ipaddress.IPv4Address("192.0.2.1")
    assert ipaddress.IPv4Address(struct.pack("<I", int(k["ipv4_dst"]))) == ipaddress.IPv4Address("198.51.100.7")
    not_ip = testrun.run_flow_dissector(obj.progs.dissect, frame(b"x" * 40))
    assert not_ip.retval == 2  # BPF_DROP


@pytest.mark.parametrize("cpu", [0, 1])
def test_raw_tp_args_and_cpu(obj: bpfkit.Object, cpu: int) -> None:
    if cpu >= os.cpu_count():  # type: ignore[operator]
        pytest.skip(f"needs {cpu + 1} CPUs")
    before = obj.bss.raw_runs
    res = testrun.run_raw_tp(obj.progs.raw_args_probe, 11, 2**64 - 1, -2, cpu=cpu)
    assert res.retval == 0 and res.duration_ns == 0
    assert list(obj.bss.raw_args) == [11, 2**64 - 1, 2**64 - 2]
    assert obj.data.raw_cpu == cpu
    assert obj.bss.raw_runs == before + 1


def test_syscall_program_writes_its_context(obj: bpfkit.Object) -> None:
    dt = np.dtype([("a", "<i4"), ("b", "<i4"), ("product", "<i8")])
    args = np.zeros(1, dtype=dt)
    args["a"], args["b"] = 6, -7
    res = testrun.run_syscall(obj.progs.calc, args)
    assert res.signed_retval == -1 and res.retval == 2**32 - 1
    assert args["product"][0] == -42  # updated in place
    assert res.ctx_as(dt)["product"] == -42
    raw = testrun.run_syscall(obj.progs.calc, struct.pack("<iiq", 3, 4, 0))
    assert struct.unpack("<iiq", raw.ctx) == (3, 4, 12) and raw.retval == 7


def test_generic_run_dispatches_by_type(obj: bpfkit.Object) -> None:
    assert testrun.run(obj.progs.xdp_bounce, frame(b"\x01")).action == "XDP_TX"
    assert testrun.run(obj.progs.calc, ctx=struct.pack("<iiq", 2, 5, 0)).ctx[8:] == struct.pack("<q", 10)
    testrun.run(obj.progs.raw_args_probe, ctx=struct.pack("<3Q", 7, 8, 9))
    assert list(obj.bss.raw_args) == [7, 8, 9]


def test_wrong_type_and_bad_input_say_what_to_do(obj: bpfkit.Object) -> None:
    with pytest.raises(BpfError, match=r"run_xdp\(\) runs xdp programs; 'tc_mark' is a sched_cls"):
        testrun.run_xdp(obj.progs.tc_mark, frame(b"x"))
    with pytest.raises(BpfError, match="at least an Ethernet header"):
        testrun.run_xdp(obj.progs.xdp_bounce, b"short")
    with pytest.raises(BpfError, match="no field 'marc'"):
        testrun.run_skb(obj.progs.tc_mark, frame(b"x"), marc=1)


def test_udp4_packet_is_well_formed() -> None:
    pkt = udp4_packet(b"ping", src="10.1.2.3", dst="10.4.5.6", sport=1, dport=7)
    assert len(pkt) == 14 + 20 + 8 + 4 and pkt[12:14] == b"\x08\x00" and pkt[42:] == b"ping"
    ip = pkt[14:34]
    total = sum(struct.unpack("!10H", ip))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    assert total == 0xFFFF  # header checksum verifies
    assert struct.unpack("!HHH", pkt[34:40]) == (1, 7, 12)


def test_syscall_ctx_updated_in_place_through_a_record_or_a_strided_array(obj: bpfkit.Object) -> None:
    dt = np.dtype([("a", "<i4"), ("b", "<i4"), ("product", "<i8")])
    arr = np.zeros(3, dtype=dt)
    arr[1]["a"], arr[1]["b"] = 5, 9
    rec = arr[1]  # a np.void that views arr
    res = testrun.run_syscall(obj.progs.calc, rec)
    assert res.retval == 14 and rec["product"] == 45 and arr["product"].tolist() == [0, 45, 0]
    # every other record of a 2-D array: not contiguous; the kernel sees them back to back
    grid = np.zeros((2, 2), dtype=dt)
    grid[0, 0]["a"], grid[0, 0]["b"] = 4, 3
    col = grid[:, 0]
    assert not col.flags.contiguous
    res = testrun.run_syscall(obj.progs.calc, col)
    assert res.retval == 7 and grid["product"].tolist() == [[12, 0], [0, 0]]
    buf = bytearray(struct.pack("<iiq", 2, 8, 0))
    testrun.run_syscall(obj.progs.calc, buf)
    assert struct.unpack("<iiq", buf) == (2, 8, 16)
    frozen = np.zeros(1, dtype=dt)
    frozen["a"], frozen["b"] = 3, 3
    frozen.flags.writeable = False
    assert testrun.run_syscall(obj.progs.calc, frozen).ctx_as(dt)["product"] == 9
    assert frozen["product"][0] == 0  # read-only: documented as left alone


@pytest.mark.parametrize("name,prog,kind", [("tests/count", "on_getpid", "tracepoint"),
                                            ("tests/probes_kprobe", "on_kprobe", "kprobe"),
                                            ("tests/probes_perf", None, "perf_event")])
def test_event_programs_cannot_be_test_run_use_triggers(name: str, prog: str | None, kind: str) -> None:
    with bpfkit.load(name) as o:
        p = o.progs[prog] if prog else next(iter(o.progs.values()))
        assert p.type == kind
        for attempt in (lambda: testrun.run(p), lambda: testrun.run(p, b"x" * 64),
                        lambda: testrun.run_raw_tp(p, 1)):
            with pytest.raises(BpfUsageError, match=rf"^{kind} programs \(.*\) cannot be test-run: no kernel "
                                                    r"implements BPF_PROG_TEST_RUN.*bpfkit.testing.triggers"):
                attempt()


def test_udp4_packet_rejects_bad_fields() -> None:
    for kw, msg in [({"sport": 70000}, r"sport must be an integer in 0..65535, got 70000"),
                    ({"dport": -1}, r"dport must be an integer in 0..65535"),
                    ({"ttl": 256}, r"ttl must be an integer in 0..255"),
                    ({"src": "10.0.0.300"}, r"src '10.0.0.300' is not an IPv4 address"),
                    ({"dst": "::1"}, r"dst '::1' is not an IPv4 address"),
                    ({"eth_src": "02:00:00"}, r"eth_src '02:00:00' is not a MAC address"),
                    ({"eth_dst": "02:00:00:00:00:zz"}, r"eth_dst .* is not a MAC address"),
                    ({"eth_dst": b"\x02"}, r"eth_dst has 6 bytes, got 1")]:
        with pytest.raises(BpfUsageError, match=msg):
            udp4_packet(b"x", **kw)  # type: ignore[arg-type]
    with pytest.raises(BpfUsageError, match="payload is at most 65507 bytes"):
        udp4_packet(b"x" * 65508)
    assert len(udp4_packet(b"x" * 65507, sport=65535, dport=0, ttl=255)) == 14 + 0xFFFF
