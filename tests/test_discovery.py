"""Discovery like bpftrace -l/-lv: tracepoints and their fields, kernel functions, binary symbols,
USDT probes of a binary or a process, and the `bpfkit list` CLI (issue 5)."""
from __future__ import annotations

import os
import platform

import numpy as np
import pytest

import bpfkit
import bpfkit.probes
from bpfkit import features
from bpfkit.cli import main as cli_main
from bpfkit.probes.kprobe import kernel_functions
from bpfkit.testing import fixtures
from bpfkit.tools.list import main as list_main
from bpfkit.tracefs import available_filter_functions, tracefs_root

pytestmark = pytest.mark.root
KPROBES = features.check("kprobes")
FENTRY = features.check("fentry")
HW = features.check("hw_pmu")


def test_tracepoints_by_pattern() -> None:
    [p] = bpfkit.probes.list("tracepoint:sched:sched_switch")
    assert str(p) == "tracepoint:sched:sched_switch" and (p.target, p.name) == ("sched", "sched_switch")
    events = os.path.join(tracefs_root(), "events", "sched")
    expected = sorted(n for n in os.listdir(events) if os.path.isdir(os.path.join(events, n)))
    assert [p.name for p in bpfkit.probes.list("tracepoint:sched:*")] == expected
    assert [p.name for p in bpfkit.probes.list("t:syscalls:sys_enter_rea?")] == ["sys_enter_read"]
    assert [str(p) for p in bpfkit.probes.list("sched:sched_switch")] == ["tracepoint:sched:sched_switch"]
    assert bpfkit.probes.list("tracepoint:nosuchcat:*") == []
    assert [str(p) for p in bpfkit.probes.list("rawtracepoint:sched_switch")] == ["rawtracepoint:sched_switch"]


def test_tracepoint_fields_from_the_format_file() -> None:
    fields = bpfkit.probes.tracepoint_fields("syscalls:sys_enter_openat")
    assert [f.name for f in fields] == ["__syscall_nr", "dfd", "filename", "flags", "mode"]
    filename = fields[2]
    assert filename.type == "const char *" and filename.size == 8 and filename.declaration == "const char * filename;"
    common = bpfkit.probes.tracepoint_fields("sched", "sched_switch", common=True)
    assert common[0].name == "common_type" and common[0].common
    assert {f.name: f.type for f in common}["prev_comm"] == "char[16]"
    with pytest.raises(bpfkit.BpfNotFoundError, match="tracepoint sched:nope not found"):
        bpfkit.probes.tracepoint_fields("sched:nope")


def test_tracepoint_dtype_decodes_the_record_the_kernel_passes() -> None:
    n, size = 17, 1234
    dt = bpfkit.probes.tracepoint_dtype("syscalls", "sys_enter_read")
    assert dt["count"] == np.dtype("<u8") and dt.fields["count"][1] == 32  # type: ignore[index]
    spec = bpfkit.open("tests/probes_tp")
    with fixtures.spawn(fixtures.syscall_target(), "read", str(n), str(size)) as proc:
        spec.rodata.target_pid = proc.pid
        with spec.load() as obj:
            with obj.progs.on_read.attach():
                proc.finish()
            assert obj.bss.records == n
            rec = np.frombuffer(bytes(obj.bss.raw)[: dt.itemsize], dtype=dt)[0]
    # (the common_* header of syscall tracepoints is not filled in for BPF: the kernel keeps a
    # pt_regs pointer there, so only the syscall's own fields are checked)
    assert rec["__syscall_nr"] == 0  # __NR_read on x86-64
    assert rec["count"] == size and rec["fd"] >= 3 and rec["buf"] != 0


def test_perf_events_by_kind() -> None:
    assert {p.name for p in bpfkit.probes.list("software:*faults")} >= {"page-faults", "major-faults"}


@pytest.mark.skipif(not HW[0], reason=HW[1])
def test_hardware_events_listed_are_the_ones_the_pmu_opens() -> None:
    listed = [p.name for p in bpfkit.probes.list("hardware:*")]
    assert "cycles" in listed
    for name in listed:  # every listed event counts for real
        with bpfkit.counters.count([name], pid=os.getpid()) as c:
            sum(range(100_000))
        assert c[name] > 0, name


@pytest.mark.skipif(HW[0], reason="this machine has a hardware PMU")
def test_hardware_events_without_a_pmu_say_why_instead_of_listing(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(bpfkit.FeatureNotSupported) as exc:
        bpfkit.probes.list("hardware:*")
    assert exc.value.feature == "hw_pmu" and HW[1] in str(exc.value)
    assert list_main(["hardware:cycles"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == f"bpfkit list: not listing hardware events, this machine cannot use them: {HW[1]}\n"


@pytest.mark.skipif(KPROBES[0] and FENTRY[0], reason="this kernel has kprobes and fentry")
def test_kinds_this_kernel_cannot_attach_say_why(capsys) -> None:  # type: ignore[no-untyped-def]
    # an empty listing would read as "no such function": the user is told what the kernel lacks
    for kind, what, feature, (ok, reason) in (("kprobe", "kprobes", "kprobes", KPROBES),
                                              ("fentry", "fentry targets", "fentry", FENTRY)):
        if ok:
            continue
        for pattern in (f"{kind}:*", f"{kind}:vfs_read"):
            with pytest.raises(bpfkit.FeatureNotSupported) as exc:
                bpfkit.probes.list(pattern)
            assert exc.value.feature == feature
            assert str(exc.value) == f"not listing {what}, this machine cannot use them: {reason}"
        assert list_main([f"{kind}:vfs_read"]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err == f"bpfkit list: not listing {what}, this machine cannot use them: {reason}\n"
    # the function names stay available for what the kernel could probe once it can
    assert kernel_functions("vfs_read") == ["vfs_read"]


def test_list_says_when_nothing_matches(capsys) -> None:  # type: ignore[no-untyped-def]
    assert list_main(["tracepoint:sched:sched_switch", "tracepoint:no_such_category_x:*"]) == 1
    out, err = capsys.readouterr()
    assert out == "tracepoint:sched:sched_switch\n"
    assert err == "bpfkit list: no probe matches 'tracepoint:no_such_category_x:*'\n"


@pytest.mark.guest
@pytest.mark.skipif(not KPROBES[0], reason=KPROBES[1])
def test_kernel_functions_kprobes_can_attach() -> None:
    assert [str(p) for p in bpfkit.probes.list("kprobe:vfs_read")] == ["kprobe:vfs_read"]
    names = [p.name for p in bpfkit.probes.list("k:vfs_rea*")]
    assert "vfs_read" in names and all(n.startswith("vfs_rea") for n in names)


@pytest.mark.guest
@pytest.mark.skipif(not FENTRY[0], reason=FENTRY[1])
def test_fentry_lists_btf_functions_ftrace_can_patch() -> None:
    from bpfkit.btf import Kind, vmlinux_btf

    assert [p.name for p in bpfkit.probes.list("fentry:bpf_fentry_test1")] == ["bpf_fentry_test1"]
    traceable = available_filter_functions()
    if traceable is None:
        pytest.skip("this kernel does not let root read available_filter_functions")
    listed = {p.name for p in bpfkit.probes.list("fentry:*")}
    btf_funcs = {t.name for t in vmlinux_btf() if t.kind == Kind.FUNC}
    assert listed == btf_funcs & traceable
    assert listed < btf_funcs  # notrace functions have BTF too, and are left out


def test_raw_tracepoint_arguments_from_btf(capsys) -> None:  # type: ignore[no-untyped-def]
    args = bpfkit.probes.tracepoint_fields("sched_switch")
    assert [(f.name, f.type, f.offset, f.size) for f in args] == [
        ("preempt", "bool", 0, 1), ("prev", "struct task_struct *", 8, 8), ("next", "struct task_struct *", 16, 8),
        ("prev_state", "unsigned int", 24, 4)]
    sys_enter = bpfkit.probes.raw_tracepoint_args("sys_enter")
    assert [(f.declaration, f.signed) for f in sys_enter] == [("struct pt_regs * regs;", False), ("long int id;", True)]
    [p] = bpfkit.probes.list("rawtracepoint:sched_switch", verbose=True)
    assert p.fields == tuple(args)
    assert [str(p) for p in bpfkit.probes.list("tp_btf:sys_e*")] == ["rawtracepoint:sys_enter", "rawtracepoint:sys_exit"]
    # syscalls:sys_enter_* are ftrace events on top of sys_enter, not raw tracepoints
    assert bpfkit.probes.list("rawtracepoint:sys_enter_openat") == []
    with pytest.raises(bpfkit.BpfNotFoundError, match="raw tracepoint 'no_such_tp' not found"):
        bpfkit.probes.tracepoint_fields("no_such_tp")
    assert list_main(["-v", "rawtracepoint:sched_switch"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "rawtracepoint:sched_switch", "    bool preempt;", "    struct task_struct * prev;",
        "    struct task_struct * next;", "    unsigned int prev_state;"]


@pytest.mark.skipif(platform.machine() != "x86_64", reason="checks x86-64 syscall numbers")
def test_raw_tracepoint_dtype_decodes_what_a_raw_tp_program_sees() -> None:
    n = 7
    dt = bpfkit.probes.tracepoint_dtype("sys_enter")
    assert dt.names == ("regs", "id") and dt.itemsize == 16
    spec = bpfkit.open("tests/probes_tp")
    with fixtures.spawn(fixtures.syscall_target(), "getpid", str(n)) as proc:
        spec.rodata.target_pid = proc.pid
        with spec.load() as obj:
            with obj.progs.on_raw_sys_enter.attach():
                proc.finish()
            count = int(obj.bss.raw_records)
            assert n < count <= len(obj.bss.raw_args)  # the getpids, the stdin wait, the final write, exit
            recs = np.frombuffer(np.ascontiguousarray(obj.bss.raw_args[:count]).tobytes(), dtype=dt)
    assert int((recs["id"] == 39).sum()) == n  # __NR_getpid on x86-64
    assert recs["id"][-1] == 231  # exit_group, the last thing the process does
    assert np.all(recs["regs"] != 0)


def test_symbols_of_a_binary_and_of_libc() -> None:
    exe = fixtures.uprobe_target()
    probes = bpfkit.probes.list(f"uprobe:{exe}:bpfkit_*")
    assert sorted(p.name for p in probes) == ["bpfkit_add", "bpfkit_void"]
    assert probes[0].target == str(exe.resolve())
    assert "malloc" in [p.name for p in bpfkit.probes.list("uprobe:c:malloc")]


def test_usdt_probes_of_a_binary_a_library_and_a_process() -> None:
    exe = fixtures.usdt_target()
    names = {p.name for p in bpfkit.probes.list(f"usdt:{exe}")}
    assert names == {"bpfkit:tick", "bpfkit:guarded", "bpfkit:consts"}
    [lib] = bpfkit.probes.list(f"usdt:{fixtures.usdt_lib()}:bpfkit_lib:*", verbose=True)
    assert lib.name == "bpfkit_lib:libtick" and lib.args.startswith("-4@")
    with fixtures.spawn(exe, "1") as proc:
        found = {(os.path.basename(p.target), p.name) for p in bpfkit.probes.list("usdt:*", pid=proc.pid)}
        proc.finish()
    assert {("usdt_target", "bpfkit:tick"), ("libusdt_target.so", "bpfkit_lib:libtick")} <= found


def test_cli_lists_with_fields_and_fails_on_bad_patterns(capsys) -> None:  # type: ignore[no-untyped-def]
    assert list_main(["-v", "tracepoint:syscalls:sys_enter_read"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "tracepoint:syscalls:sys_enter_read"
    assert "    unsigned int fd;" in out and "    size_t count;" in out
    assert list_main(["bogus:thing"]) == 1
    assert "unknown probe kind 'bogus'" in capsys.readouterr().err
    assert list_main(["tracepoint:nosuchcat:*"]) == 1


def test_bpfkit_list_subcommand(capsys) -> None:  # type: ignore[no-untyped-def]
    assert cli_main(["list", "tracepoint:sched:sched_switch"]) == 0
    assert capsys.readouterr().out.splitlines() == ["tracepoint:sched:sched_switch"]
    assert cli_main(["list", "bogus:thing"]) == 1
