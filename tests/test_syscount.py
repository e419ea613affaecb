"""The showcase tool, checked against a child making a known number of read() calls."""
from __future__ import annotations


import pytest

from bpfkit.testing import fixtures
from bpfkit.tools import syscount

pytestmark = pytest.mark.root


def test_syscount_counts_reads_and_sizes_of_one_process() -> None:
    n, size = 300, 3000  # 3000 bytes fall in the [2K, 4K) slot
    with fixtures.spawn(fixtures.syscall_target(), "read", str(n), str(size)) as proc:
        # the child starts its reads once tracing is on, and is done well within the second
        res = syscount.run(duration=1.0, pid=proc.pid, on_attached=proc.release)
        assert proc.finish().strip() == f"done {n}"
    assert res.procs["pid"].tolist() == [proc.pid]
    row = res.procs[0]
    assert row["comm"] == b"syscall_target"
    assert int(row["reads"]) == n  # the fixture waits for its go with poll(), not read()
    assert int(row["calls"]) == n + 2  # + writev("done") + exit_group
    hist = res.read_bytes
    assert hist.bounds(13) == (2048, 4096) and int(hist.counts[13]) == n
    assert hist.total == n
    text = syscount.format_result(res)
    assert f"[2K, 4K)            {n:>4} |{'@' * 52}|" in text
    assert "syscall_target" in text
