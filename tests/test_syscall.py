"""The ctypes syscall layer on its own: typed attrs in, kernel results and typed errors out."""
from __future__ import annotations

import mmap
import os
import uuid

import numpy as np
import pytest

import bpfkit
from bpfkit import _sys as sc
from bpfkit.testing import fixtures

pytestmark = pytest.mark.root


@pytest.fixture
def hash_fd():  # type: ignore[no-untyped-def]
    fd = sc.map_create(sc.BPF_MAP_TYPE_HASH, 4, 8, 64, name="t_hash")
    yield fd
    os.close(fd)


def test_elem_ops_and_iteration(hash_fd: int) -> None:
    k, v = np.zeros(1, "u4"), np.zeros(1, "u8")
    for i in range(10):
        k[0], v[0] = i, i * i
        sc.map_update(hash_fd, k, v)
    k[0] = 3
    assert sc.map_lookup(hash_fd, k, v) and v[0] == 9
    assert sc.map_delete(hash_fd, k) and not sc.map_delete(hash_fd, k)
    assert not sc.map_lookup(hash_fd, k, v)
    keys, cur, nxt = [], None, np.zeros(1, "u4")
    while sc.map_get_next_key(hash_fd, cur, nxt):
        keys.append(int(nxt[0]))
        cur = nxt.copy()
    assert sorted(keys) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    k[0] = 4
    with pytest.raises(bpfkit.BpfError, match="BPF_MAP_UPDATE_ELEM map 'x'.*File exists"):
        sc.map_update(hash_fd, k, v, sc.BPF_NOEXIST, what="map 'x'")


def test_batch_lookup_update_delete(hash_fd: int) -> None:
    keys = np.arange(50, dtype="u4")
    vals = keys.astype("u8") * 3
    n, _ = sc.map_batch(sc.BPF_MAP_UPDATE_BATCH, hash_fd, None, None, keys, vals, 50)
    assert n == 50
    out_k, out_v = np.zeros(64, "u4"), np.zeros(64, "u8")
    batch = np.zeros(1, "u4")
    n, done = sc.map_batch(sc.BPF_MAP_LOOKUP_BATCH, hash_fd, None, batch, out_k, out_v, 64)
    assert n == 50 and done
    assert dict(zip(out_k[:n].tolist(), out_v[:n].tolist())) == {i: 3 * i for i in range(50)}
    n, _ = sc.map_batch(sc.BPF_MAP_DELETE_BATCH, hash_fd, None, None, keys[:20], None, 20)
    assert n == 20
    n, done = sc.map_batch(sc.BPF_MAP_LOOKUP_BATCH, hash_fd, None, batch, out_k, out_v, 64)
    assert n == 30 and sorted(out_k[:n].tolist()) == list(range(20, 50))


def test_pin_get_and_info(hash_fd: int) -> None:
    if not os.path.ismount("/sys/fs/bpf"):
        pytest.skip("bpffs is not mounted at /sys/fs/bpf")
    path = f"/sys/fs/bpf/bpfkit_test_{uuid.uuid4().hex[:8]}"
    sc.obj_pin(hash_fd, path)
    try:
        fd2 = sc.obj_get(path)
        try:
            a, b = sc.map_info(hash_fd), sc.map_info(fd2)
            assert a.id == b.id and (b.type, b.key_size, b.value_size, b.max_entries) == (1, 4, 8, 64)
            assert b.name == b"t_hash"
            fd3 = sc.map_fd_by_id(a.id)
            assert fd3 > 0
            os.close(fd3)
        finally:
            os.close(fd2)
    finally:
        os.unlink(path)
    with pytest.raises(bpfkit.BpfNotFoundError, match="BPF_OBJ_GET at '/sys/fs/bpf/nope"):
        sc.obj_get("/sys/fs/bpf/nope_bpfkit")


def test_enable_stats_counts_program_runs() -> None:
    n = 40
    with bpfkit.load("tests/count") as obj, fixtures.spawn(fixtures.syscall_target(), "getpid", str(n)) as proc:
        with sc.enable_stats() as stats:
            with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
                proc.finish()
            info = obj.progs.on_getpid.info()
        assert stats.fileno() == -1
    assert info.run_cnt >= n  # every getpid on the machine runs it (the rodata filter is 0)
    assert info.run_time_ns > 0


def test_perf_event_open_software_counter() -> None:
    attr = sc.PerfEventAttr(type=sc.PERF_TYPE_SOFTWARE, config=2,  # PERF_COUNT_SW_PAGE_FAULTS
                            flags=sc.PERF_ATTR_DISABLED | sc.PERF_ATTR_EXCLUDE_KERNEL)
    fd = sc.perf_event_open(attr, pid=0, cpu=-1)
    try:
        sc.ioctl(fd, sc.PERF_EVENT_IOC_RESET)
        sc.ioctl(fd, sc.PERF_EVENT_IOC_ENABLE)
        buf = mmap.mmap(-1, 64 * 4096)  # fresh anonymous pages: the first touch of each faults
        for i in range(0, len(buf), 4096):
            buf[i] = 1
        sc.ioctl(fd, sc.PERF_EVENT_IOC_DISABLE)
        buf.close()
        count = int.from_bytes(os.read(fd, 8), "little")
    finally:
        os.close(fd)
    assert count >= 64
    with pytest.raises(bpfkit.BpfError, match="perf_event_open"):
        sc.perf_event_open(sc.PerfEventAttr(type=12345), pid=0, cpu=-1)


def test_errno_maps_to_typed_errors() -> None:
    with pytest.raises(bpfkit.BpfError, match="BPF_MAP_CREATE map 'bad'.*Invalid argument"):
        sc.map_create(sc.BPF_MAP_TYPE_HASH, 0, 8, 1, name="bad")
    with pytest.raises(bpfkit.BpfNotFoundError):
        sc.map_fd_by_id(0xFFFFFFF)
