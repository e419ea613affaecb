"""The exporter's ready ``tcpretrans`` metric on the real kernel: retransmissions forced on a veth
between two namespaces of the test's own (an XDP program drops exactly N data segments; see
tests/_netns.py) are scraped as exactly N, labelled with the flow's addresses, ports and state."""
from __future__ import annotations

import os
import time

import pytest

from _netns import lossy_pair
from bpfkit.exporter import Exporter
from test_exporter import pick, samples

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")


def test_tcpretrans_counts_forced_retransmits_exactly() -> None:
    with lossy_pair(drops=3) as pair:
        netns = pair.sender.inode
        with Exporter({"objects": [{"tool": "tcpretrans", "rodata": {"filter_netns": netns}}]}).start(
                serve=False) as ex:
            r = pair.send(1000)
            time.sleep(0.2)
            got = samples(ex.metrics_text())
    assert r.dropped == 3 and r.total_retrans == 3
    labels = frozenset({("laddr", pair.sender_ip), ("lport", str(r.client_port)), ("raddr", pair.receiver_ip),
                        ("rport", str(r.server_port)), ("state", "ESTABLISHED")})
    assert pick(got, "bpfkit_tcp_retransmits_total") == {labels: 3}, \
        f"untracked: {pick(got, 'bpfkit_tcpretrans_untracked_total')}"
    assert pick(got, "bpfkit_tcpretrans_untracked_total") == {frozenset(): 0}
