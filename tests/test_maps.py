"""Maps on the real kernel (issue 3): every map type, the bulk numpy API, zero copy, lifecycle,
bad input. Kernel-side writes come from tests/maps_types.bpf.c driven by an exact number of
getpid() calls of a fixture process."""
from __future__ import annotations

import errno
import logging
import os
import socket
import tempfile

import numpy as np
import pytest

import bpfkit
from bpfkit.events import PerfBuffer
from bpfkit import _sys as sc
from bpfkit.errors import BpfError, BpfPermissionError, MapError, MapFullError, MapKeyError
from bpfkit.maps import Map, bulk
from bpfkit.maps.array import ArrayMap
from bpfkit.maps.lpm import LpmTrie
from bpfkit.maps.queue import BloomFilter, QueueMap, StackMap
from bpfkit.symbols import kernel_symbols
from bpfkit.shipped import find_object
from bpfkit.testing import fixtures

pytestmark = pytest.mark.root


def obj_path(name: str) -> str:
    path = find_object(f"tests/{name}")
    assert path is not None, "build the BPF objects first (make setup)"
    return str(path)


# -- hash maps and the bulk API --------------------------------------------------------

def test_hash_bulk_roundtrip() -> None:
    n = 100_000
    with Map.create("hash", "u8", "u8", n, name="bulk") as m:
        keys = np.arange(n, dtype=np.uint64) * 7
        assert m.update(keys, keys + 1) == n
        assert len(m) == n
        k, v = m.to_numpy()
        order = np.argsort(k)
        assert np.array_equal(k[order], keys) and np.array_equal(v[order], keys + 1)
        assert m[7 * 123] == 7 * 123 + 1
        assert m.delete(keys[:1000]) == 1000
        assert len(m) == n - 1000
        k, v = m.pop_all()
        assert len(k) == n - 1000 and np.array_equal(v, k + 1)
        assert len(m) == 0
        m.update([1, 2, 3], 9)  # one value for all keys
        assert dict(m.items()) == {1: 9, 2: 9, 3: 9}
        m.clear()
        assert len(m) == 0 and list(m.keys()) == []


def test_lookup_batch_grows_its_buffer() -> None:
    with Map.create("hash", "u4", "u4", 5000) as m:
        m.update(np.arange(5000), np.arange(5000))
        got = bulk.lookup_batch(m.fd, np.dtype("u4"), np.dtype("u4"), capacity=1, what="t")
        assert got is not None
        assert sorted(got[0].tolist()) == list(range(5000))


def test_struct_values_and_btf_roundtrip() -> None:
    # aligned like C: the kernel refuses BTF members that are not naturally aligned
    vdt = np.dtype([("count", "<u8"), ("comm", "S16"), ("vals", "<u4", (3,)), ("ratio", "<f8")], align=True)
    with Map.create("hash", "u4", vdt, 16, name="structs") as m:
        m[1] = (5, b"bash", [1, 2, 3], 0.5)
        m.update([2, 3], np.array([(6, b"sh", [4, 5, 6], 1.5), (7, b"zsh", [7, 8, 9], 2.5)], vdt))
        rec = m[2]
        assert rec["comm"] == b"sh" and list(rec["vals"]) == [4, 5, 6] and rec["ratio"] == 1.5
        info = m.info()
        assert info.btf_id and info.value_size == vdt.itemsize and info.type_name == "hash"
        with Map.from_id(info.id) as again:  # dtypes come back from the kernel's BTF
            assert again.value_dtype == vdt and again.key_dtype == np.dtype("u4")
            assert again[3]["comm"] == b"zsh"
        m.retype(value_dtype=np.dtype(f"V{vdt.itemsize}"))
        assert len(m[1].tobytes()) == vdt.itemsize
        with pytest.raises(MapError, match="bytes but the map's value size"):
            m.retype(value_dtype="u8")


def test_pin_open_unpin_and_freeze() -> None:
    if not os.path.ismount("/sys/fs/bpf"):
        pytest.skip("bpffs not mounted at /sys/fs/bpf")
    path = f"/sys/fs/bpf/bpfkit_test_maps_{os.getpid()}"
    with Map.create("array", "u4", "u8", 8, name="pinme") as m:
        m[3] = 33
        m.pin(path)
        try:
            with Map.from_pinned(path) as p:
                assert p.id == m.id and p[3] == 33 and isinstance(p, ArrayMap)
                p.freeze()
            with pytest.raises(BpfPermissionError, match="read-only for user space .frozen"):
                m[3] = 1
            assert m[3] == 33
        finally:
            Map.unpin(path)
        assert not os.path.exists(path)
        with pytest.raises(bpfkit.BpfNotFoundError):
            Map.unpin(path)


def test_percpu_hash_values_and_reductions() -> None:
    with Map.create("percpu_hash", "u4", "u4", 64) as m:
        ncpus = sc.possible_cpus()
        assert m.ncpus == ncpus
        m[1] = 3  # broadcast to every CPU
        m[2] = np.arange(ncpus, dtype=np.uint32)
        assert list(m[1]) == [3] * ncpus
        k, v = m.to_numpy()
        assert v.shape == (2, ncpus) and v.dtype == np.dtype("u4")  # 4-byte values, 8-byte slots
        got = dict(zip(*[a.tolist() for a in m.sum()]))
        assert got == {1: 3 * ncpus, 2: sum(range(ncpus))}
        assert dict(zip(*[a.tolist() for a in m.max()]))[2] == ncpus - 1
        m.update([5, 6], np.array([[1] * ncpus, [2] * ncpus], np.uint32))
        assert m[6].sum() == 2 * ncpus


def test_percpu_array_shape() -> None:
    with Map.create("percpu_array", "u4", "u8", 10) as m:
        m[4] = 7
        k, v = m.to_numpy()
        assert k.tolist() == list(range(10)) and v.shape == (10, m.ncpus)
        assert v[4].tolist() == [7] * m.ncpus and v.sum() == 7 * m.ncpus
        with pytest.raises(MapError, match="per-CPU arrays cannot be mmap"):
            m.array  # noqa: B018
        m.clear()
        assert m.to_numpy()[1].sum() == 0


@pytest.mark.parametrize("kind", ["lru_hash", "lru_percpu_hash"])
def test_lru_hash_evicts_instead_of_failing(kind: str) -> None:
    with Map.create(kind, "u4", "u8", 128) as m:
        for i in range(1000):
            m[i] = i
        assert 0 < len(m) <= 128
        assert 999 in m  # the newest survives
        k, v = m.to_numpy()
        vals = v.sum(axis=1) // m.ncpus if m.percpu else v
        assert np.array_equal(vals, k.astype(np.uint64))


# -- arrays and zero copy ----------------------------------------------------------------

def test_mmapable_array_is_live_both_ways() -> None:
    with Map.create("array", "u4", "u8", 1 << 16, flags=sc.BPF_F_MMAPABLE) as m:
        a = m.array
        assert a.shape == (1 << 16,) and a.dtype == np.dtype("u8")
        a[100] = 12345             # a store into kernel memory ...
        assert m[100] == 12345     # ... that the syscall path sees
        m[200] = 777               # and the other way round
        assert a[200] == 777
        k, v = m.to_numpy()
        assert v[100] == 12345 and len(k) == 1 << 16
        m.clear()
        assert a.sum() == 0


def test_mmapable_array_with_padded_struct_values() -> None:
    vdt = np.dtype([("a", "<u4"), ("b", "<u2")])  # 6 bytes: the kernel strides by 8
    with Map.create("array", "u4", vdt, 100, flags=sc.BPF_F_MMAPABLE) as m:
        m[7] = (1, 2)
        m[8] = (3, 4)
        assert m.array[7]["b"] == 2 and m.array[8]["a"] == 3
        m.array["a"][9] = 99
        assert m[9]["a"] == 99


def test_plain_array_reads_in_one_batch_and_refuses_array_view() -> None:
    with Map.create("array", "u4", "u8", 1000) as m:
        m.update(np.arange(1000), np.arange(1000) * 2)
        k, v = m.to_numpy()
        assert np.array_equal(v, np.arange(1000) * 2)
        with pytest.raises(MapError, match="BPF_F_MMAPABLE"):
            m.array  # noqa: B018
        with pytest.raises(MapError, match="not supported for array"):
            del m[3]
        with pytest.raises(MapKeyError):
            m[1000]  # noqa: B018


@pytest.mark.parametrize("kind", ["array", "percpu_array"])
def test_array_index_out_of_range_is_a_key_error_not_a_full_map(kind: str) -> None:
    with Map.create(kind, "u4", "u8", 4, name="four") as a:
        with pytest.raises(MapKeyError, match=r"index 4 outside 0\.\.3 of map 'four'") as ei:
            a[4] = 1
        assert not isinstance(ei.value, MapFullError) and ei.value.errno == errno.E2BIG
        with pytest.raises(MapKeyError, match=r"index 7 outside 0\.\.3 of map 'four' after 1 of 2"):
            a.update([1, 7], [5, 5])
        assert int(np.max(a[1])) == 5  # the batch stopped at the bad index, after writing index 1


def test_kernel_writes_seen_through_mmap_view_with_no_syscall() -> None:
    n = 50
    spec = bpfkit.open(obj_path("maps_types"))
    inner = Map.create("array", "u4", "u8", 4, name="inner0")
    with inner, fixtures.spawn(fixtures.syscall_target(), "getpid", str(n)) as proc:
        spec.rodata.target_pid = proc.pid
        with spec.load() as obj:
            view = obj.maps.mm.array
            obj.maps.outer[0] = inner
            with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
                assert proc.finish().strip() == f"done {n}"
            assert view[:n].tolist() == list(range(n)) and view[n:].sum() == 0
            # array/hash of maps: the program incremented slot seq & 3 of the inner map
            assert inner.to_numpy()[1].tolist() == [13, 13, 12, 12]
            assert obj.maps.outer.inner_id(0) == inner.id
            with obj.maps.outer[0] as m:
                assert m.id == inner.id and m.value_dtype == np.dtype("u8") and m[0] == 13
            # queue filled by bpf_map_push_elem(BPF_EXIST): only the newest 16 remain, FIFO order
            assert obj.maps.fifo.pop_all().tolist() == list(range(n - 16, n))
            with pytest.raises(MapKeyError, match="no process"):
                obj.maps.task_calls[proc.pid]  # noqa: B018  (it has exited)
            # stack trace: the last kernel stack of the getpid tracepoint
            sid = obj.data.last_stackid
            addrs = obj.maps.stacks.addresses(sid)
            assert len(addrs) > 1 and all(a >= 0xFFFF800000000000 for a in addrs.tolist())
            assert "do_syscall_64" in list(kernel_symbols().lookup(addrs).names)
            with pytest.raises(MapKeyError):
                obj.maps.stacks.addresses(-14)


def test_task_storage_keyed_by_pid() -> None:
    n = 25
    spec = bpfkit.open(obj_path("maps_types"))
    spec.rodata.target_pid = os.getpid()  # this process, alive while we read its storage
    with spec.load() as obj:
        with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
            for _ in range(n):
                os.getpid()  # not cached by glibc: one syscall each
        tv = obj.maps.task_calls[os.getpid()]
        assert int(tv["calls"]) == n and int(tv["pid"]) == os.getpid()
        # enum task_phase from BTF is its integer type; the program set TASK_PHASE_MANY (0xab)
        assert obj.maps.task_calls.value_dtype.fields["phase"][0] == np.dtype("u4")
        assert int(tv["phase"]) == 0xAB
        obj.maps.task_calls[os.getpid()] = (1, 2, 1)  # TASK_PHASE_FEW round-trips through the kernel
        assert obj.maps.task_calls[os.getpid()].tolist() == (1, 2, 1)
        assert os.getppid() not in obj.maps.task_calls
        del obj.maps.task_calls[os.getpid()]
        assert obj.maps.task_calls.get(os.getpid()) is None


# -- other map types ------------------------------------------------------------------------

CGRP_STORAGE_PROG = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct cg_val {
	__u64 calls;
	__u64 cgid;
};

struct {
	__uint(type, BPF_MAP_TYPE_CGRP_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct cg_val);
} cg_calls SEC(".maps");

const volatile __u32 target_pid = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_per_cgroup(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	struct task_struct *task = bpf_get_current_task_btf();
	struct cg_val *v = bpf_cgrp_storage_get(&cg_calls, task->cgroups->dfl_cgrp, 0,
						BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (v) {
		v->calls += 1;
		v->cgid = bpf_get_current_cgroup_id();
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


def _cgroup2_mount() -> str:
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if parts[2] == "cgroup2":
                return parts[1]
    pytest.skip("no cgroup2 hierarchy mounted (needed for cgroup storage)")


def test_cgroup_storage_keyed_by_cgroup_path_and_fd() -> None:
    try:
        Map.create("cgrp_storage", None, "u8").close()
    except BpfError as e:
        pytest.skip(f"BPF_MAP_TYPE_CGRP_STORAGE not available (Linux 6.2+): {e}")
    root = _cgroup2_mount()
    cgdir = os.path.join(root, f"bpfkit_test_maps_{os.getpid()}")
    n = 17
    os.mkdir(cgdir)
    try:
        spec = bpfkit.open(bpfkit.compile(CGRP_STORAGE_PROG))
        with fixtures.spawn(fixtures.syscall_target(), "getpid", str(n)) as proc:
            spec.rodata.target_pid = proc.pid
            with open(os.path.join(cgdir, "cgroup.procs"), "w") as f:
                f.write(str(proc.pid))  # it waits before its calls: all n happen inside cgdir
            with spec.load() as obj:
                m = obj.maps.cg_calls
                with obj.progs.count_per_cgroup.attach_tracepoint("syscalls", "sys_enter_getpid"):
                    assert proc.finish().strip() == f"done {n}"
                v = m[cgdir]
                # the cgroup id is the cgroup directory's inode number
                assert int(v["calls"]) == n and int(v["cgid"]) == os.stat(cgdir).st_ino
                assert m.get(root) is None  # no call happened in the root cgroup's storage
                fd = os.open(cgdir, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    assert int(m.get_by_fd(fd)["calls"]) == n
                finally:
                    os.close(fd)
                m[root] = (5, 6)  # user space attaches a value to a cgroup too
                assert m[root].tolist() == (5, 6) and cgdir in m
                del m[root]
                del m[cgdir]
                assert root not in m and cgdir not in m
                with pytest.raises(MapKeyError):
                    del m[cgdir]
    finally:
        os.rmdir(cgdir)




def test_array_of_maps_from_python() -> None:
    inners = [Map.create("hash", "u4", "u4", 8, name=f"in{i}") for i in range(3)]
    try:
        with Map.create("array_of_maps", "u4", None, 4, inner_map=inners[0]) as outer:
            for i, m in enumerate(inners):
                outer[i] = m
                m[i] = i * 10
            keys, ids = outer.to_numpy()
            # empty slots of an array of maps are skipped by the kernel's batch lookup
            assert keys.tolist() == [0, 1, 2] and ids.tolist() == [m.id for m in inners]
            with outer[2] as m2:
                assert m2[2] == 20
            del outer[1]
            assert outer.get(1) is None
    finally:
        for m in inners:
            m.close()


def test_fd_arrays_clear_by_emptying_slots_and_count_occupied_ones() -> None:
    inners = [Map.create("hash", "u4", "u4", 2, name=f"fd{i}") for i in range(2)]
    try:
        with Map.create("array_of_maps", "u4", None, 4, inner_map=inners[0]) as outer:
            assert len(outer) == 0
            outer[1] = inners[0]
            outer[3] = inners[1]
            keys, ids = outer.to_numpy()
            assert keys.tolist() == [1, 3] and ids.tolist() == [inners[0].id, inners[1].id]
            assert len(outer) == 2  # as many as to_numpy() returns, not max_entries
            outer.clear()  # was EINVAL: it wrote fd 0 into every slot
            assert len(outer) == 0 and outer.get(1) is None and outer.to_numpy()[0].tolist() == []
    finally:
        for m in inners:
            m.close()
    with bpfkit.open(obj_path("maps_types")).load() as obj, Map.create("prog_array", "u4", "u4", 4) as pa:
        prog = obj.progs.on_getpid
        pa[2] = prog.fd
        assert len(pa) == 1 and [a.tolist() for a in pa.to_numpy()] == [[2], [prog.id]]
        pa.clear()
        assert len(pa) == 0 and pa.to_numpy()[0].tolist() == []
    ncpus = sc.possible_cpus()
    with Map.create("perf_event_array", "u4", "u4", ncpus) as pe, PerfBuffer(pe) as pb:
        pb.open()  # one BPF_OUTPUT perf event per online CPU in its slot
        pe.clear()
        assert pe.delete(np.arange(ncpus), missing_ok=True) == 0  # every slot was already empty


def test_lpm_trie_longest_prefix() -> None:
    with Map.create("lpm_trie", LpmTrie.key_dtype_for(4), "u4", 64) as m:
        assert isinstance(m, LpmTrie)
        m["10.0.0.0/8"] = 1
        m["10.1.0.0/16"] = 2
        m[("192.168.1.0", 24)] = 3
        assert m.match("10.1.2.3") == 2
        assert m.match("10.200.0.1") == 1
        assert m.match("192.168.1.77") == 3
        assert m.match("11.0.0.1") is None
        assert m["10.1.0.0/16"] == 2
        keys, vals = m.to_numpy()
        assert sorted(LpmTrie.format_key(k) for k in keys) == ["10.0.0.0/8", "10.1.0.0/16", "192.168.1.0/24"]
        del m["10.1.0.0/16"]
        assert m.match("10.1.2.3") == 1
        with pytest.raises(MapError, match="prefix length"):
            m[("10.0.0.0", 40)] = 1


def test_lpm_to_numpy_and_pop_all_exact() -> None:
    # LPM tries have LOOKUP_BATCH on 6.x but no LOOKUP_AND_DELETE_BATCH: pop_all goes per key
    with Map.create("lpm_trie", LpmTrie.key_dtype_for(16), "u8", 16) as m:
        m["2001:db8::/32"] = 5
        m["2001:db8:1::/48"] = 6
        keys, vals = m.to_numpy()
        assert sorted(zip(map(LpmTrie.format_key, keys), vals.tolist())) == [
            ("2001:db8:1::/48", 6), ("2001:db8::/32", 5)]
        keys, vals = m.pop_all()
        assert sorted(vals.tolist()) == [5, 6] and len(m) == 0 and m.match("2001:db8::1") is None


def _refusing_batches(monkeypatch: pytest.MonkeyPatch, err: int, times: int = 1 << 30) -> list[int]:
    """Make the kernel's answer to the BPF_MAP_*_BATCH commands ``err`` (the first ``times`` asks);
    returns the commands asked, in order."""
    real_call = bulk.call
    asked: list[int] = []

    def call(cmd, fd, *args, **kwargs):  # type: ignore[no-untyped-def]
        if cmd in bulk.CMD_NAMES:
            asked.append(cmd)
            if len(asked) <= times:
                return 0, err
        return real_call(cmd, fd, *args, **kwargs)

    monkeypatch.setattr(bulk, "call", call)
    return asked


def test_per_key_fallback_when_the_kernel_refuses_batches(monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    # no map type on this kernel lacks batches while having keys to read, so make it refuse them
    asked = _refusing_batches(monkeypatch, bulk.ENOTSUPP)
    with Map.create("hash", "u4", "u8", 64, name="nobatch") as m, \
            caplog.at_level(logging.DEBUG, logger="bpfkit.maps"):
        assert m.update(np.arange(10), np.arange(10) * 3) == 10
        assert [m[i] for i in range(10)] == [3 * i for i in range(10)]
        k, v = m.to_numpy()
        assert sorted(zip(k.tolist(), v.tolist())) == [(i, 3 * i) for i in range(10)]
        assert len(m) == 10
        assert m.delete([0, 1, 99], missing_ok=True) == 2
        with pytest.raises(MapKeyError, match="key 99 not in map 'nobatch' \\(1 keys before") as ei:
            m.delete([2, 99])
        assert ei.value.errno == errno.ENOENT and 2 not in m and 3 in m
        k, v = m.pop_all()
        assert sorted(zip(k.tolist(), v.tolist())) == [(i, 3 * i) for i in range(3, 10)]
        assert len(m) == 0 and list(m.keys()) == []
        assert m.pop_all()[0].tolist() == []
    # each command was asked once; the refusal is remembered for the map's lifetime
    assert sorted(asked) == sorted(bulk.CMD_NAMES) and m._refused == set(bulk.CMD_NAMES)
    msgs = [r.getMessage() for r in caplog.records if r.name == "bpfkit.maps"]
    for cmd, how in (("UPDATE_BATCH", "per-key updates"), ("LOOKUP_BATCH", "per-key iteration"),
                     ("DELETE_BATCH", "per-key deletes"), ("LOOKUP_AND_DELETE_BATCH", "per-key iteration")):
        assert f"map 'nobatch': {cmd} refused by the kernel (ENOTSUPP); falling back to {how}" in msgs


def test_real_batch_refusal_of_an_array_of_maps(caplog: pytest.LogCaptureFixture) -> None:
    # arrays of maps have LOOKUP/UPDATE_BATCH but no DELETE/LOOKUP_AND_DELETE_BATCH (kernel answers ENOTSUPP)
    inners = [Map.create("hash", "u4", "u4", 2, name=f"aom{i}") for i in range(3)]
    try:
        with Map.create("array_of_maps", "u4", None, 4, inner_map=inners[0], name="aom") as outer, \
                caplog.at_level(logging.DEBUG, logger="bpfkit.maps"):
            outer.update([0, 1, 3], inners)
            assert outer.delete([1, 2], missing_ok=True) == 1
            keys, ids = outer.pop_all()
            assert keys.tolist() == [0, 3] and ids.tolist() == [inners[0].id, inners[2].id]
            assert outer.to_numpy()[0].tolist() == []
        assert outer._refused == {sc.BPF_MAP_DELETE_BATCH, sc.BPF_MAP_LOOKUP_AND_DELETE_BATCH,
                                  sc.BPF_MAP_LOOKUP_AND_DELETE_ELEM}
        msgs = [r.getMessage() for r in caplog.records if r.name == "bpfkit.maps"]
        assert "map 'aom': DELETE_BATCH refused by the kernel (ENOTSUPP); falling back to per-key deletes" in msgs
    finally:
        for m in inners:
            m.close()


def test_einval_from_a_map_type_with_batch_ops_is_raised_not_a_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    with Map.create("hash", "u4", "u8", 8, name="nolock") as m:
        m.update([1, 2], [10, 20])
        # a real EINVAL: BPF_F_LOCK on a value without a bpf_spin_lock
        with pytest.raises(MapError, match="LOOKUP_BATCH on map 'nolock': the kernel refused the request") as ei:
            bulk.lookup_batch(m.fd, np.dtype("u4"), np.dtype("u8"), 8, what=m._what(), map_type=m.type,
                              elem_flags=sc.BPF_F_LOCK)
        assert ei.value.errno == errno.EINVAL
        with pytest.raises(MapError, match="UPDATE_BATCH on map 'nolock': .*BPF_F_LOCK") as ei:
            m.update([3], [30], flags=sc.BPF_F_LOCK)
        assert ei.value.errno == errno.EINVAL and 3 not in m
        # one EINVAL on the first read does not switch batches off for the map's lifetime
        asked = _refusing_batches(monkeypatch, errno.EINVAL, times=1)
        with pytest.raises(MapError, match="EINVAL"):
            m.to_numpy()
        k, v = m.to_numpy()
        assert sorted(zip(k.tolist(), v.tolist())) == [(1, 10), (2, 20)]
        assert asked == [sc.BPF_MAP_LOOKUP_BATCH] * 2 and m._refused == set()
    # where the type has no such op an EINVAL means just that (kernels before 5.6 answer so)
    assert bulk.refused(errno.EINVAL, sc.BPF_MAP_LOOKUP_BATCH, sc.BPF_MAP_TYPE_STACK_TRACE, "x")
    assert bulk.refused(errno.EINVAL, sc.BPF_MAP_DELETE_BATCH, sc.BPF_MAP_TYPE_ARRAY, "x")
    assert not bulk.refused(errno.ENOENT, sc.BPF_MAP_LOOKUP_BATCH, sc.BPF_MAP_TYPE_STACK_TRACE, "x")


def test_queue_stack_bloom() -> None:
    with Map.create("queue", None, "u8", 4) as q:
        assert isinstance(q, QueueMap)
        for i in (1, 2, 3):
            q.push(i)
        assert q.peek() == 1 and q.pop() == 1
        q.push(4)
        q.push(5)
        with pytest.raises(MapFullError, match="max_entries=4"):
            q.push(6)
        q.push(6, flags=sc.BPF_EXIST)  # overwrite the oldest
        assert q.pop_all().tolist() == [3, 4, 5, 6]
        with pytest.raises(MapKeyError):
            q.pop()
        assert q.pop(None) is None
        with pytest.raises(MapError, match="not supported"):
            len(q)
    with Map.create("stack", None, "u4", 8) as s:
        assert isinstance(s, StackMap)
        for i in range(5):
            s.push(i)
        assert s.pop() == 4 and s.pop_all().tolist() == [3, 2, 1, 0]
    with Map.create("bloom_filter", None, "u8", 1000, map_extra=3) as bf:
        assert isinstance(bf, BloomFilter)
        for i in range(0, 200, 2):
            bf.push(i)
        assert all(i in bf for i in range(0, 200, 2))  # never a false negative
        assert sum(i in bf for i in range(1, 200, 2)) < 20
        with pytest.raises(MapError):
            bf.to_numpy()


def test_sk_storage_keyed_by_socket() -> None:
    vdt = np.dtype([("bytes", "<u8"), ("tag", "<u4"), ("pad", "<u4")])
    try:
        m = Map.create("sk_storage", None, vdt, name="sk_tags")
    except BpfError as e:
        pytest.skip(f"sk_storage maps not available: {e}")
    with m, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s1, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s2:
        m[s1] = (100, 7, 0)
        assert m[s1]["tag"] == 7 and m.get(s2) is None and s1 in m and s2 not in m
        m.update_elem(s1.fileno(), (5, 8, 0))
        assert m.get_by_fd(s1.fileno())["bytes"] == 5
        del m[s1]
        assert s1 not in m
        with pytest.raises(MapError, match="not supported"):
            list(m.keys())


def test_inode_storage_where_the_kernel_allows() -> None:
    try:
        m = Map.create("inode_storage", None, "u8", name="ino")
    except BpfError as e:
        pytest.skip(f"inode_storage maps not available: {e}")
    with m, tempfile.NamedTemporaryFile() as f:
        try:
            m[f.name] = 42
        except BpfError as e:
            if e.errno in (errno.EBADF, errno.EOPNOTSUPP, errno.EINVAL, 524):
                pytest.skip(f"inode storage needs the BPF LSM enabled (lsm=...,bpf): {e}")
            raise
        assert m[f.name] == 42 and m[f] == 42


def test_event_buffers_have_no_elements_to_read() -> None:
    with Map.create("ringbuf", None, None, 4096) as rb:
        assert rb.type_name == "ringbuf" and rb.info().max_entries == 4096
        with pytest.raises(MapError):
            rb.to_numpy()
    with Map.create("perf_event_array", "u4", "u4", 2) as pe:
        assert pe.info().type_name == "perf_event_array"


# -- bad input -----------------------------------------------------------------------------

def test_bad_input_raises_typed_errors() -> None:
    with Map.create("hash", "u4", "u8", 2, name="tiny") as m:
        with pytest.raises(MapKeyError) as ei:
            m[5]  # noqa: B018
        assert isinstance(ei.value, KeyError) and "tiny" in str(ei.value)
        with pytest.raises(MapError, match="float"):
            m[1.5] = 1
        with pytest.raises(MapError):
            m[-1] = 1
        with pytest.raises(MapError, match="bytes given"):
            m[b"\x01\x02"] = 1
        with pytest.raises(MapError, match="3 keys but 2 values"):
            m.update([1, 2, 3], [1, 2])
        m[1] = 1
        m[2] = 2
        with pytest.raises(MapFullError, match="max_entries=2"):
            m[3] = 3
        with pytest.raises(MapFullError, match=r"max_entries=2.*after 0 of 2"):
            m.update([7, 8], [7, 8])
        with pytest.raises(MapError, match="already exists"):
            m.update_elem(1, 5, sc.BPF_NOEXIST)
        with pytest.raises(MapKeyError):
            m.update_elem(9, 5, sc.BPF_EXIST)
        with pytest.raises(MapKeyError):
            m.delete([1, 99])
        assert m.delete([1, 99], missing_ok=True) == 0  # 1 was deleted by the call above
        assert 1 not in m and 2 in m
        with pytest.raises(MapError, match="not a dtype"):
            Map.create("hash", "nope", "u8", 2)
        with pytest.raises(MapError, match="unknown map type"):
            Map.create("hashh", "u4", "u8", 2)
    with pytest.raises(bpfkit.ClosedError):
        m[1]  # noqa: B018


def test_batch_update_refuses_what_a_single_write_refuses() -> None:
    # numpy would truncate 1.5 to 1, wrap -1 to 0xffffffff and spread 5 over every struct field
    with Map.create("hash", "u4", "u8", 8, name="conv") as m:
        for keys, values, match in (([1.5], [1], "float"), ([1], [1.5], "float"),
                                    (np.array([1.5]), [1], "float"), ([-1], [1], "negative"),
                                    (np.array([-1], np.int64), [1], "negative"), ([1], [-1], "negative"),
                                    ([1 << 32], [1], "does not fit"), (["1"], [1], "strings")):
            with pytest.raises(MapError, match=match):
                m.update(keys, values)
        with pytest.raises(MapError, match="float"):
            m[1] = 1.5
        assert len(m) == 0  # nothing was written by any of the refused calls
        m.update(np.array([1, 2], np.int64), [10, 20])  # in-range ints of another dtype are fine
        assert dict(m.items()) == {1: 10, 2: 20}
    vdt = np.dtype([("a", "<u4"), ("b", "<u4")])
    with Map.create("hash", "u4", vdt, 8, name="conv_s") as s:
        for values in ([1.5], [1], 5, np.array([5])):
            with pytest.raises(MapError, match="cannot fill the 2 fields"):
                s.update([1], values)
        with pytest.raises(MapError, match="cannot fill the 2 fields"):
            s[3] = 5
        with pytest.raises(MapError, match="field 'b'.*float"):
            s.update([1], [(1, 2.5)])
        with pytest.raises(MapError, match="field 'a'.*negative"):
            s[1] = (-1, 2)
        assert len(s) == 0
        s.update([1, 2], [(1, 2), {"b": 7}])
        s[3] = {"a": 9}
        assert [tuple(s[k].tolist()) for k in (1, 2, 3)] == [(1, 2), (0, 7), (9, 0)]
    with Map.create("hash", "u4", np.dtype([("n", "<u8")]), 8, name="conv_1") as one:
        one[3] = 5  # a 1-field struct takes a plain value: nothing is ambiguous
        one.update([4, 5], [6, 7])
        assert {k: int(one[k]["n"]) for k in (3, 4, 5)} == {3: 5, 4: 6, 5: 7}
        with pytest.raises(MapError, match="float"):
            one.update([6], [1.5])
    with Map.create("percpu_hash", "u4", "u4", 8) as pc:
        with pytest.raises(MapError, match="float"):
            pc.update([1], [1.5])
        with pytest.raises(MapError, match="float"):
            pc[1] = 2.5
        assert len(pc) == 0


def test_missing_keys_carry_enoent() -> None:
    def enoent(fn) -> str:  # type: ignore[no-untyped-def]
        with pytest.raises(MapKeyError) as ei:
            fn()
        assert ei.value.errno == errno.ENOENT, (str(ei.value), ei.value.errno)
        return str(ei.value)

    with Map.create("hash", "u4", "u8", 4, name="h") as m:
        m[1] = 1
        enoent(lambda: m[5])
        enoent(lambda: m.__delitem__(5))
        enoent(lambda: m.delete([1, 5]))
        enoent(lambda: m.update_elem(6, 1, sc.BPF_EXIST))
    with Map.create("array", "u4", "u8", 4, name="a") as a:
        assert "index 9 outside 0..3" in enoent(lambda: a[9])
    with Map.create("queue", None, "u8", 4) as q:
        enoent(q.pop)
        enoent(q.peek)
    with Map.create("hash", "u4", "u4", 2) as inner, \
            Map.create("array_of_maps", "u4", None, 2, inner_map=inner) as outer:
        enoent(lambda: outer.inner_id(1))
        enoent(lambda: outer[1])
    with Map.create("sk_storage", None, "u8", name="sk") as sk, socket.socket() as s:
        enoent(lambda: sk[s])
        enoent(lambda: sk.__delitem__(s))
    with Map.create("task_storage", None, "u8", name="ts") as ts:
        enoent(lambda: ts[os.getpid()])


def test_to_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    vdt = np.dtype([("n", "<u8"), ("comm", "S8")])
    with Map.create("hash", "u4", vdt, 8) as m:
        m[1] = (3, b"a")
        df = m.to_dataframe()
        assert isinstance(df, pd.DataFrame) and df.loc[0, "comm"] == "a" and df.loc[0, "key"] == 1
