"""The showcase tool, checked against a child making a known number of read() calls."""
from __future__ import annotations

import os
import threading

import pytest

from bpfkit.testing import fixtures
from bpfkit.tools import syscount

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")


def test_syscount_counts_reads_and_sizes_of_one_process() -> None:
    n, size = 300, 3000  # 3000 bytes fall in the [2K, 4K) slot
    with fixtures.spawn(fixtures.syscall_target(), "read", str(n), str(size)) as proc:
        # run() traces for a fixed time; release the child while it does
        timer = threading.Timer(0.5, proc.finish)
        timer.start()
        res = syscount.run(duration=1.5, pid=proc.pid)
        timer.join()
    assert res.procs["pid"].tolist() == [proc.pid]
    row = res.procs[0]
    assert row["comm"] == b"syscall_target"
    # the fixture's fgets() on stdin is one more read of 1 byte
    assert int(row["reads"]) == n + 1
    assert int(row["calls"]) >= n + 1
    hist = res.read_size_log2
    assert int(hist[12]) == n  # slot 12 is [2K, 4K)
    assert int(hist[1]) == 1  # [1]: the one-byte stdin line
    assert int(hist.sum()) == n + 1
    text = syscount.format_result(res)
    assert "[2K, 4K)" in text and f"{n:>8} |{'@' * 52}|" in text
    assert "syscall_target" in text


def test_format_log2_matches_bpftrace_layout() -> None:
    import numpy as np

    counts = np.zeros(65, dtype=np.uint64)
    counts[0], counts[1], counts[11], counts[13] = 1, 2, 4, 8
    out = syscount.format_log2(counts).splitlines()
    assert out[0] == "[0]                        1 |@@@@@@                                              |"
    assert out[1] == "[1]                        2 |@@@@@@@@@@@@@                                       |"
    assert out[2].startswith("[2, 4)                     0 |")
    assert out[-1] == "[4K, 8K)                   8 |@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@|"
