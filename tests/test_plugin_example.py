"""Unit tests of two example probes with the bpfkit pytest plugin (shown in docs/testing.md)."""
import pytest

from bpfkit.testing import testrun


def test_counts_writes_of_one_process(bpf_load, bpf_trigger):
    t = bpf_trigger.syscalls("write", 10, size=100)  # a child, paused: its pid is known
    obj = bpf_load("probes/write_stats.bpf.c", target_pid=t.pid)
    obj.attach()
    t.run()  # now it makes exactly 10 write(2) calls of 100 bytes

    stats = obj.maps.stats[t.pid]
    assert (stats["calls"], stats["bytes"]) == (10, 1000)
    assert list(obj.maps.stats.keys()) == [t.pid]  # no other process counted


@pytest.mark.requires("prog:xdp")
def test_drops_udp_to_the_blocked_port(bpf_load):
    obj = bpf_load("probes/port_filter.bpf.c", blocked_port=53)
    dns = testrun.run_xdp(obj.progs.port_filter, testrun.udp4_packet(b"query", dport=53))
    web = testrun.run_xdp(obj.progs.port_filter, testrun.udp4_packet(b"GET /", dport=80))
    assert (dns.action, web.action) == ("XDP_DROP", "XDP_PASS")
    assert web.data == testrun.udp4_packet(b"GET /", dport=80)  # passed through unchanged
    assert obj.bss.dropped == 1
