"""argdist and funccount against a fixture whose calls are known: exact counts per value, exact
histogram slots, exact calls per function (uprobe_multi and one uprobe per function alike)."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter as Tally
from pathlib import Path

import numpy as np
import pytest

from bpfkit import features
from bpfkit.testing import fixtures
from bpfkit.tools.argdist import argdist, bcc_log2_hist, log2_slots
from bpfkit.tools.common import Scope
from bpfkit.tools.funccount import Counter, funccount, parse_pattern, targets

BPFKIT = str(Path(sys.executable).with_name("bpfkit"))


def target() -> str:
    return str(fixtures.build_fixture("oneliner_target"))


def wait_attached(pid: int, links: int = 1, timeout: float = 60.0) -> None:
    """Until process ``pid`` holds ``links`` BPF links (fds whose fdinfo names a link type)."""
    import os
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = 0
            for fd in os.listdir(f"/proc/{pid}/fdinfo"):
                try:
                    with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                        found += "link_type:" in f.read()
                except OSError:
                    continue
            if found >= links:
                return
        except OSError:
            raise AssertionError(f"process {pid} exited before attaching") from None
        time.sleep(0.02)
    raise AssertionError(f"process {pid} did not attach within {timeout} s")


def test_log2_slots_are_bccs() -> None:
    v = np.array([0, 1, 2, 3, 4, 7, 8, 1023, 1024, 2**63, 2**64 - 1], np.uint64)
    assert log2_slots(v).tolist() == [1, 1, 2, 2, 3, 3, 4, 10, 11, 64, 64]
    assert log2_slots(np.array([-1], np.int64)).tolist() == [64]  # as bcc: the value as unsigned
    hist = np.zeros(65, np.uint64)
    hist[[1, 2, 3]] = [2, 0, 4]
    assert bcc_log2_hist(hist, "size").splitlines() == [
        "     size                : count     distribution",
        "         0 -> 1          : 2        |********************                    |",
        "         2 -> 3          : 0        |                                        |",
        "         4 -> 7          : 4        |****************************************|"]


@pytest.mark.root
def test_argdist_counts_and_histogram_exactly() -> None:
    n2 = 80  # ol_f2(1 << (i % 8)): ten calls with each power of two from 1 to 128
    with fixtures.spawn(target(), "0", str(n2)) as proc:
        r = argdist(f"p:{target()}:ol_f2(long size):long:size", "count", pid=proc.pid, timeout=0.5,
                    on_attached=proc.release)
        proc.finish()
    assert r.counts == {(1 << k,): 10 for k in range(8)}
    assert r.dropped == 0
    with fixtures.spawn(target(), "0", str(n2)) as proc:
        r = argdist(f"p:{target()}:ol_f2(long size):long:size", "hist", pid=proc.pid, timeout=0.5,
                    on_attached=proc.release)
        proc.finish()
    want = np.zeros(65, np.uint64)
    want[1:9] = 10  # 1 -> slot 1, 2 -> 2, 4 -> 3, ... 128 -> 8
    assert r.hist.tolist() == want.tolist()


@pytest.mark.root
def test_argdist_keys_strings_filters_and_entry_values() -> None:
    n1 = 12
    with fixtures.spawn(target(), str(n1), "0") as proc:
        r = argdist(f"p:{target()}:ol_f1(int i, char *name):char*,int:name,i%2:i>=3", "count", pid=proc.pid,
                    timeout=0.5, on_attached=proc.release)
        proc.finish()
    want = Tally((["alpha", "beta", "gamma"][i % 3].encode(), i % 2) for i in range(3, n1))
    assert r.counts == dict(want)
    with fixtures.spawn(target(), str(n1), "0") as proc:
        r = argdist(f"r:{target()}:ol_ret(int x):int,int:$entry(x),$retval", "count", pid=proc.pid, timeout=0.5,
                    on_attached=proc.release)
        proc.finish()
    assert r.counts == {(i, 2 * i - 3): 1 for i in range(n1)}


@pytest.mark.root
def test_argdist_cli_prints_bcc_blocks() -> None:
    with fixtures.spawn(target(), "0", "16") as proc:
        cli = subprocess.Popen([BPFKIT, "argdist", "-p", str(proc.pid), "-i", "3", "-n", "1",
                                "-C", f"p:{target()}:ol_f2(long size):long:size#sizes",
                                "-H", f"p:{target()}:ol_f2(long size):long:size"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_attached(cli.pid, 2)  # argdist prints nothing before its first interval
            proc.release()
            proc.finish()
            out, err = cli.communicate(timeout=30)
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
    lines = out.splitlines()
    assert lines[0].startswith("[") and lines[0].endswith("]"), (out, err)
    assert lines[1] == f"p:{target()}:ol_f2(long size):long:size"
    assert lines[2] == "     size                : count     distribution"
    assert lines[3:11] == ["%10d -> %-10d : 2        |****************************************|" % (lo, hi)
                           for lo, hi in [(0, 1), (2, 3), (4, 7), (8, 15), (16, 31), (32, 63), (64, 127),
                                          (128, 255)]]
    assert lines[11:13] == ["sizes", "\tCOUNT      EVENT"]
    assert sorted(lines[13:]) == sorted(f"\t2          size = {1 << k}" for k in range(8))


@pytest.mark.root
@pytest.mark.parametrize("multi", [True, False], ids=["uprobe_multi", "one_uprobe_each"])
def test_funccount_exact_calls_per_function(multi: bool) -> None:
    if multi and not features.check("uprobe_multi")[0]:
        pytest.skip(f"uprobe_multi: {features.check('uprobe_multi')[1]}")
    n1, n2 = 17, 23
    spec = parse_pattern(f"{target()}:ol_*")
    assert sorted(t.name for t in targets(spec)) == ["ol_f1", "ol_f2", "ol_ret"]
    with fixtures.spawn(target(), str(n1), str(n2)) as proc:
        with Counter(spec, scope=Scope(pid=proc.pid), multi=multi) as c:
            assert c.multi is multi
            proc.release()
            proc.finish()
            assert c.read() == {"ol_f1": n1, "ol_f2": n2, "ol_ret": n1}
            assert c.read() == {}  # the next read counts from the last one


@pytest.mark.root
def test_funccount_tracepoints_and_usdt() -> None:
    n1, n2 = 6, 9
    with fixtures.spawn(target(), str(n1), str(n2)) as proc:
        got = funccount("t:syscalls:sys_enter_get*pid", pid=proc.pid, duration=1.5, on_attached=proc.release)
        proc.finish()
    assert got == {"syscalls:sys_enter_getpid": n1, "syscalls:sys_enter_getppid": n2}
    # the same through one perf event per tracepoint instead of raw_syscalls and a number -> slot table
    for multi in (None, False):
        spec = parse_pattern("t:syscalls:sys_e*_get*pid")
        with fixtures.spawn(target(), str(n1), str(n2)) as proc:
            with Counter(spec, scope=Scope(pid=proc.pid), multi=multi) as c:
                assert (c.syscalls is not None) is (multi is None)
                proc.release()
                proc.finish()
                assert c.read() == {"syscalls:sys_enter_getpid": n1, "syscalls:sys_enter_getppid": n2,
                                    "syscalls:sys_exit_getpid": n1, "syscalls:sys_exit_getppid": n2}
    with fixtures.spawn(target(), str(n1), "0") as proc:
        got = funccount(f"u:{target()}:tick*", pid=proc.pid, duration=1.0, on_attached=proc.release)
        proc.finish()
    assert got == {"oneliner:tick": n1}
    with fixtures.spawn(target(), str(n1), str(n2)) as proc:
        got = funccount(f"{target()}:^ol_f[12]$", regex=True, pid=proc.pid, duration=1.0, on_attached=proc.release)
        proc.finish()
    assert got == {"ol_f1": n1, "ol_f2": n2}


@pytest.mark.root
def test_funccount_cli_output() -> None:
    with fixtures.spawn(target(), "5", "8") as proc:
        cli = subprocess.Popen([BPFKIT, "funccount", "-p", str(proc.pid), "-d", "2", f"{target()}:ol_f*"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert cli.stdout is not None
            first = cli.stdout.readline()
            proc.release()
            proc.finish()
            out, err = cli.communicate(timeout=30)
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
    assert first == f'Tracing 2 functions for "{target()}:ol_f*"... Hit Ctrl-C to end.\n', err
    assert out.splitlines() == ["", "FUNC                                    COUNT",
                                "ol_f1                                       5",
                                "ol_f2                                       8", "Detaching..."]


@pytest.mark.root
def test_funccount_interval_blocks_add_up_exactly() -> None:
    n1, n2 = 7, 11
    with fixtures.spawn(target(), str(n1), str(n2)) as proc:
        cli = subprocess.Popen([BPFKIT, "funccount", "-p", str(proc.pid), "-i", "1", "-d", "3", f"{target()}:ol_f*"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            assert cli.stdout is not None
            assert cli.stdout.readline().startswith("Tracing 2 functions")
            proc.release()
            proc.finish()
            out, err = cli.communicate(timeout=30)
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
    lines = out.splitlines()
    assert lines[-1] == "Detaching...", (out, err)
    blocks = "\n".join(lines[:-1]).strip("\n").split("\n\n")
    assert len(blocks) == 3, out  # one per second of -d 3
    total: Tally[str] = Tally()
    for block in blocks:
        head, *rows = block.splitlines()
        assert head.split() == ["FUNC", "COUNT"]
        for row in rows:
            name, count = row.split()
            total[name] += int(count)
    assert total == {"ol_f1": n1, "ol_f2": n2}  # every call in exactly one interval
