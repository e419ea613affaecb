"""End to end on the real kernel: compile → open → load → attach → read (issue: foundation)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import bpfkit
from bpfkit import _sys as sc
from bpfkit.shipped import find_object
from bpfkit.testing import fixtures

pytestmark = pytest.mark.root


def count_obj() -> str:
    path = find_object("tests/count")
    assert path is not None, "build the BPF objects first (make setup)"
    return str(path)


def run_getpid(n: int, attach) -> int:  # type: ignore[no-untyped-def]
    """Start the fixture, call ``attach(pid)`` (returns a context manager), let it do n getpid()."""
    with fixtures.spawn(fixtures.syscall_target(), "getpid", str(n)) as proc:
        with attach(proc.pid):
            out = proc.finish()
        assert out.strip() == f"done {n}"
        return proc.pid


def test_spec_is_inspectable_before_load() -> None:
    spec = bpfkit.open(count_obj())
    assert list(spec.programs) == ["on_getpid"]
    p = spec.programs.on_getpid
    assert p.section == "tracepoint/syscalls/sys_enter_getpid" and p.type == "tracepoint"
    counts = spec.maps.counts
    assert (counts.type, counts.key_size, counts.value_size, counts.max_entries) == ("hash", 4, 8, 1024)
    assert counts.key_dtype == np.dtype("u4") and counts.value_dtype == np.dtype("u8")
    assert spec.maps.events.type == "ringbuf"
    assert spec.maps.events.record_dtype.names == ("pid", "seq", "ts", "comm")
    assert spec.maps.events.record_dtype["comm"] == np.dtype("S16")
    assert spec.rodata.target_pid == 0 and spec.rodata.multiplier == 1
    assert spec.data.in_value == 7
    spec.maps.counts.max_entries = 77
    spec.rodata.multiplier = 5
    assert spec.rodata.multiplier == 5


@pytest.mark.guest  # also run inside Debian 6.1/6.12 guests: CO-RE portability
def test_n_getpid_counted_exactly_for_the_child() -> None:
    n = 1234
    spec = bpfkit.open(count_obj())
    spec.maps.counts.max_entries = 77  # a spec edit the kernel must see
    with fixtures.spawn(fixtures.syscall_target(), "getpid", str(n)) as proc:
        spec.rodata.target_pid = proc.pid
        spec.rodata.multiplier = 3
        with spec.load() as obj:
            assert obj.maps.counts.max_entries == 77
            assert sc.map_info(obj.maps.counts.fd).max_entries == 77
            with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
                assert proc.finish().strip() == f"done {n}"
            assert obj.maps.counts[proc.pid] == n
            assert dict(obj.maps.counts.items()) == {proc.pid: n}
            assert obj.bss.total == 3 * n  # multiplier from rodata reached the program
            assert int(obj.bss.seen_by_slot.sum()) == n
            assert isinstance(obj.maps.counts[proc.pid], int)
            with pytest.raises(KeyError):
                obj.maps.counts[proc.pid + 1]


@pytest.mark.guest  # also run inside Debian 6.1/6.12 guests: CO-RE portability
def test_globals_round_trip_both_ways() -> None:
    spec = bpfkit.open(count_obj())
    with fixtures.spawn(fixtures.syscall_target(), "getpid", "5") as proc:
        spec.rodata.target_pid = proc.pid
        with spec.load() as obj:
            assert obj.rodata.target_pid == proc.pid  # rodata as loaded, read back from the kernel
            obj.data.in_value = 0xC0FFEE  # Python -> kernel: the program copies it to out_value
            obj.bss.seen_by_slot[:] = 100  # numpy view writes go to the kernel too
            with obj.progs.on_getpid.attach_tracepoint("syscalls:sys_enter_getpid"):
                proc.finish()
            assert obj.bss.out_value == 0xC0FFEE  # kernel -> Python
            assert obj.bss.seen_by_slot.tolist() == [102, 101, 101, 101]
            with pytest.raises(bpfkit.BpfError, match="read-only"):
                obj.rodata.target_pid = 1
            # the same bytes through the syscall path: .bss is an array map with one element
            record = obj.maps[".bss"][0]
            assert record["out_value"] == 0xC0FFEE and record["total"] == 5


@pytest.mark.guest  # also run inside Debian 6.1/6.12 guests: CO-RE portability
def test_ring_buffer_delivers_exactly_n_events() -> None:
    n = 500
    spec = bpfkit.open(count_obj())
    with fixtures.spawn(fixtures.syscall_target(), "getpid", str(n)) as proc:
        spec.rodata.target_pid = proc.pid
        with spec.load() as obj:
            with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
                proc.finish()
            batches = list(obj.reader("events").read(timeout=0.2))
    events = np.concatenate(batches)
    assert events.dtype.names == ("pid", "seq", "ts", "comm")
    assert len(events) == n
    assert (events["pid"] == proc.pid).all()
    assert events["seq"].tolist() == list(range(n))
    assert (np.diff(events["ts"].astype(np.int64)) >= 0).all()
    assert set(events["comm"].tolist()) == {b"syscall_target"[:15]}


def test_attach_by_section_and_detach_on_exit() -> None:
    with bpfkit.load(count_obj()) as obj:
        with obj.attach() as links:
            assert len(links) == 1
            link_id = links.links[0].id
            assert link_id in sc.link_ids()
        assert link_id not in sc.link_ids()


@pytest.mark.guest  # also run inside Debian 6.1/6.12 guests: CO-RE portability
def test_uprobe_counts_calls_and_uretprobe_sees_return_values() -> None:
    n, a, b = 37, 20, 22
    exe = fixtures.uprobe_target(pie=True)
    spec = bpfkit.open(find_object("tests/uprobe_add"))  # type: ignore[arg-type]
    with fixtures.spawn(exe, str(n), str(a), str(b)) as proc:
        spec.rodata.target_pid = proc.pid
        with spec.load() as obj:
            with obj.progs.on_add.attach_uprobe(str(exe), "bpfkit_add"), \
                    obj.progs.on_add_ret.attach_uretprobe(str(exe), "bpfkit_add"):
                assert proc.finish().strip() == f"sum={n * (a + b)}"
            assert obj.bss.calls == n
            assert obj.bss.returns == n
            assert obj.bss.arg_sum == n * (a + b)
            assert (obj.bss.last_a, obj.bss.last_b) == (a, b)
            assert dict(obj.maps.retvals.items()) == {a + b: n}


def test_uprobe_pid_filter_and_non_pie_binary() -> None:
    exe = fixtures.uprobe_target(pie=False)
    with bpfkit.load(find_object("tests/uprobe_add")) as obj:  # type: ignore[arg-type]
        with fixtures.spawn(exe, "9", "1", "1") as mine, fixtures.spawn(exe, "5", "1", "1") as other:
            with obj.progs.on_add.attach_uprobe(str(exe), "bpfkit_add", pid=mine.pid):
                mine.finish()
                other.finish()
        assert obj.bss.calls == 9


def test_verifier_rejection_raises_with_log() -> None:
    src = textwrap.dedent("""
        #include "vmlinux.h"
        #include <bpf/bpf_helpers.h>
        struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 4);
                 __type(key, __u32); __type(value, __u64); } m SEC(".maps");
        SEC("tracepoint/syscalls/sys_enter_getpid")
        int bad(void *ctx) {
            __u32 k = 0;
            __u64 *v = bpf_map_lookup_elem(&m, &k);
            return *v;   /* no NULL check: the verifier must refuse this */
        }
        char LICENSE[] SEC("license") = "GPL";
    """)
    obj_path = bpfkit.compile(src)
    with pytest.raises(bpfkit.VerifierError) as info:
        bpfkit.load(obj_path)
    err = info.value
    assert err.program == "bad"
    assert "invalid mem access 'map_value_or_null'" in err.log
    assert "invalid mem access" in str(err)  # the failing line is in the message itself
    assert err.errno == 13  # EACCES
    assert isinstance(err, bpfkit.BpfError)


def test_missing_tracepoint_binary_and_symbol_are_clear_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with bpfkit.load(count_obj()) as obj:
        prog = obj.progs.on_getpid
        with pytest.raises(bpfkit.BpfNotFoundError, match="tracepoint syscalls:sys_enter_nope not found"):
            prog.attach_tracepoint("syscalls", "sys_enter_nope")
        with pytest.raises(bpfkit.BpfNotFoundError, match="nosuchcategory"):
            prog.attach_tracepoint("nosuchcategory", "x")
        with pytest.raises(bpfkit.BpfNotFoundError, match="'..' is not a tracepoint or category name"):
            prog.attach_tracepoint("..", "sched/sched_switch")  # no walking around the tracefs tree
        assert obj.links == []
    with bpfkit.load(find_object("tests/uprobe_add")) as obj:  # type: ignore[arg-type]
        prog = obj.progs.on_add
        with pytest.raises(bpfkit.BpfNotFoundError, match="no_such_binary"):
            prog.attach_uprobe(str(tmp_path / "no_such_binary"), "main")
        with pytest.raises(bpfkit.BpfNotFoundError, match="no_such_function"):
            prog.attach_uprobe(str(fixtures.uprobe_target()), "no_such_function")
        with pytest.raises(bpfkit.BpfNotFoundError, match="bpfkit_add"):
            prog.attach_uprobe(str(fixtures.uprobe_target(stripped=True)), "bpfkit_add")
        assert obj.links == []


def test_bad_inputs_to_open() -> None:
    with pytest.raises(bpfkit.BpfNotFoundError):
        bpfkit.open("/nonexistent/x.bpf.o")
    with pytest.raises(bpfkit.ObjectFormatError):
        bpfkit.open(b"not an elf at all")
    data = open(count_obj(), "rb").read()
    with pytest.raises(bpfkit.ObjectFormatError):
        bpfkit.open(data[: len(data) // 3])  # truncated ELF


def test_links_removed_even_when_the_block_raises() -> None:
    with bpfkit.load(count_obj()) as obj:
        prog_id = obj.progs.on_getpid.id
        with pytest.raises(RuntimeError):
            with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid") as link:
                link_id = link.id
                assert link_id in sc.link_ids()
                raise RuntimeError("boom")
        assert link_id not in sc.link_ids()
        assert link.closed
    # the program itself is gone once the object is closed
    assert prog_id not in sc.prog_ids()


def test_object_close_detaches_links_left_open() -> None:
    obj = bpfkit.load(count_obj())
    link = obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid")
    link_id = link.id
    obj.close()
    assert link.closed and link_id not in sc.link_ids()
    with pytest.raises(bpfkit.ClosedError):
        obj.maps.counts[1]


CHILD = """
import os, sys, time, bpfkit
obj = bpfkit.load(sys.argv[1])
tp = obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid")
with open(sys.argv[2]) as f: pass
print(tp.id, obj.progs.on_getpid.id, flush=True)
time.sleep(60)
"""


def test_sigkill_while_attached_leaves_nothing_behind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "go").write_text("")
    child = subprocess.Popen([sys.executable, "-c", CHILD, count_obj(), str(tmp_path / "go")],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        link_id, prog_id = map(int, child.stdout.readline().split())
        assert link_id in sc.link_ids() and prog_id in sc.prog_ids()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (link_id in sc.link_ids() or prog_id in sc.prog_ids()):
        time.sleep(0.05)  # the kernel frees the link and program from a deferred work item
    assert link_id not in sc.link_ids()
    assert prog_id not in sc.prog_ids()


def _bpf_fds() -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            n += os.readlink(f"/proc/self/fd/{fd}").startswith("anon_inode:bpf")
        except OSError:
            pass
    return n


def test_failure_while_building_the_object_closes_what_was_loaded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    spec = bpfkit.open(count_obj())
    before = _bpf_fds()

    def broken(map_type: int):  # type: ignore[no-untyped-def]
        raise bpfkit.MapError("simulated failure after the kernel created the maps")

    # the public hook that picks each map's class runs after the kernel made every map and program
    monkeypatch.setattr(bpfkit.maps.Map, "class_for", broken)
    with pytest.raises(bpfkit.MapError, match="simulated"):
        spec.load()
    assert _bpf_fds() == before


def test_spec_edits_are_checked_before_load() -> None:
    spec = bpfkit.open(count_obj())
    for bad in ("x", -1, 2**32, 1.5):
        with pytest.raises(bpfkit.MapError, match="max_entries must be an integer"):
            spec.maps.counts.max_entries = bad
    with pytest.raises(bpfkit.MapError, match="value_dtype uint32 is 4 bytes, the map's value is 8 bytes"):
        spec.maps.counts.value_dtype = np.dtype("u4")
    with pytest.raises(bpfkit.MapError, match=r"outside 0\.\.4294967295"):
        spec.rodata.target_pid = 2**40
    with pytest.raises(bpfkit.MapError, match="float"):
        spec.rodata.target_pid = 1.7
    with pytest.raises(bpfkit.MapError, match="outside"):
        spec.rodata.target_pid = -1
    assert spec.rodata.target_pid == 0  # nothing was half-written


def test_globals_after_close_and_readonly_errno() -> None:
    obj = bpfkit.load(count_obj())
    bss, rodata = obj.bss, obj.rodata
    with pytest.raises(bpfkit.BpfError) as info:
        rodata.target_pid = 5
    assert info.value.errno == 1  # EPERM
    obj.close()
    with pytest.raises(bpfkit.ClosedError):
        bss.total
    with pytest.raises(bpfkit.ClosedError):
        bss.total = 1


def test_test_run_refuses_event_only_programs_with_a_pointer_to_triggers() -> None:
    with bpfkit.load(count_obj()) as obj:
        with pytest.raises(bpfkit.BpfUsageError, match="tracepoint programs .* cannot be test-run.*triggers"):
            obj.progs.on_getpid.test_run(b"\0" * 64)
