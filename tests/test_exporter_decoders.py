"""Label decoders: exact label text for known inputs, and caches that keep a series' labels while its
key stays in the map and forget it afterwards."""
from __future__ import annotations

import errno
import os
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from bpfkit import BpfUsageError
from bpfkit.exporter import decoders
from bpfkit.testing import fixtures, triggers


def test_int_hex_errno_static() -> None:
    assert decoders.make("int").decode(np.array([3, 0, 3, 4294967295], np.uint32)) == ["3", "0", "3", "4294967295"]
    assert decoders.make("int").decode(np.array([-7], np.int32)) == ["-7"]
    assert decoders.make("hex").decode(np.array([255, 0], np.uint64)) == ["0xff", "0x0"]
    assert decoders.make("errno").decode(np.array([-2, 0, 9, -errno.EAGAIN, 4000], np.int32)) == \
        ["ENOENT", "0", "EBADF", "EAGAIN", "4000"]
    static = decoders.make("static", {"map": {1: "read", 2: "write"}})
    assert static.decode(np.array([2, 1, 3], np.uint8)) == ["write", "read", "3"]
    with_default = decoders.make("static", {"map": {1: "read"}, "default": "other"})
    assert with_default.decode(np.array([1, 7], np.int64)) == ["read", "other"]
    assert decoders.make("int").decode(np.array([], np.uint32)) == []


def test_ip_reads_v4_mapped_and_v6_addresses() -> None:
    v4 = b"\0" * 10 + b"\xff\xff" + bytes([10, 0, 0, 0])   # trailing NUL bytes: lost in an S16 column
    v6 = bytes.fromhex("fe800000000000000000000000000001")
    col = np.array([v4, v6, b"\0" * 16, v4], dtype="S16")
    assert decoders.make("ip").decode(col) == ["10.0.0.0", "fe80::1", "::", "10.0.0.0"]


def test_string_stops_at_nul_and_replaces_bad_utf8() -> None:
    col = np.array([b"bash", b"a\0junk", b"", b"caf\xc3\xa9", b"\xff\xfe"], dtype="S16")
    assert decoders.make("string").decode(col) == ["bash", "a", "", "café", "\ufffd\ufffd"]


def test_syscall_names_match_the_c_library(monkeypatch: pytest.MonkeyPatch) -> None:
    by_gcc = triggers.syscall_numbers()  # <sys/syscall.h> through gcc: an independent reading
    table = decoders.syscall_table()
    assert len(table) > 300
    assert {nr: name for name, nr in by_gcc.items()} == table
    d = decoders.make("syscall")
    assert d.decode(np.array([0, 39, 231, 9999], np.uint32)) == ["read", "getpid", "exit_group", "9999"]


def test_syscall_table_absent_gives_numbers() -> None:
    # a machine with no table (no headers, no built table) gets numbers
    assert decoders.make("syscall", {"table": {}}).decode(np.array([39], np.uint32)) == ["39"]


def test_comm_reads_proc_and_keeps_the_name_while_the_pid_is_in_the_map() -> None:
    with fixtures.spawn(fixtures.syscall_target(), "getpid", "0") as child:
        pid = child.pid
        d = decoders.make("comm")
        assert d.decode(np.array([pid, os.getpid(), pid])) == \
            ["syscall_target", Path("/proc/self/comm").read_text().strip(), "syscall_target"]
        d.sweep()
        child.finish()
    # exited: still named while the pid keeps appearing (the series keeps its labels) ...
    assert d.decode(np.array([pid])) == ["syscall_target"]
    d.sweep()
    d.sweep()  # ... and forgotten after a scrape without it
    assert d.decode(np.array([pid])) == [decoders.UNKNOWN] == ["[unknown]"]
    assert decoders.make("comm", {"unknown": "gone"}).decode(np.array([pid])) == ["gone"]


@pytest.fixture
def cgroup_tree() -> Iterator[tuple[str, Path]]:
    mount = decoders.cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup v2 hierarchy mounted")
    top = Path(mount) / f"bpfkit-decoder-test-{uuid.uuid4().hex[:8]}"
    (top / "inner").mkdir(parents=True)
    try:
        yield mount, top
    finally:
        for p in (top / "inner", top):
            if p.exists():
                p.rmdir()


def test_cgroup_ids_become_paths(cgroup_tree: tuple[str, Path]) -> None:
    mount, top = cgroup_tree
    d = decoders.make("cgroup")
    ids = [os.stat(top).st_ino, os.stat(top / "inner").st_ino, os.stat(mount).st_ino]
    assert d.decode(np.array(ids, np.uint64)) == [f"/{top.name}", f"/{top.name}/inner", "/"]
    d.sweep()
    # a cgroup made after the first walk is found by walking again
    (top / "late").mkdir()
    try:
        late = os.stat(top / "late").st_ino
        assert d.decode(np.array([late], np.uint64)) == [f"/{top.name}/late"]
    finally:
        (top / "late").rmdir()
    # removed: ids are never reused, so the last known path stays right for counts still in a map
    assert d.decode(np.array([late, 1 << 62], np.uint64)) == [f"/{top.name}/late", "[unknown]"]
    assert decoders.make("cgroup", {"unknown": "?"}).decode(np.array([late], np.uint64)) == ["?"]


def test_cgroup2_mount_from_mountinfo(tmp_path: Path) -> None:
    info = tmp_path / "mountinfo"
    info.write_text("25 30 0:22 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu\n"
                    "26 30 0:23 / /mnt/my\\040cgroups rw,nosuid - cgroup2 cgroup2 rw\n")
    assert decoders.cgroup2_mount(str(info)) == "/mnt/my cgroups"
    info.write_text("25 30 0:22 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n")
    assert decoders.cgroup2_mount(str(info)) is None


def test_cgroup_decoder_without_cgroup2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decoders, "cgroup2_mount", lambda: None)  # a cgroup v1-only machine
    with pytest.raises(BpfUsageError, match="the cgroup decoder needs a cgroup v2 hierarchy, and none is mounted"):
        decoders.make("cgroup")


def test_unknown_decoder_name() -> None:
    with pytest.raises(BpfUsageError, match="unknown decoder 'pid'; expected one of: int, hex, string, comm"):
        decoders.make("pid")
