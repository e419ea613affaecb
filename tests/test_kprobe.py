"""kprobes/kretprobes/ksyscall/kprobe_multi (issue 5).

This project's CI kernel has no CONFIG_KPROBES: the tests that need kprobes skip with that reason
here and run for real in guest kernels (``python -m bpfkit.testing.vm``); the error path runs here.
"""
from __future__ import annotations

import errno

from typing import Any

import pytest

import bpfkit
from bpfkit import features
from bpfkit import _sys as sc
from bpfkit.probes.kprobe import kernel_functions, syscall_function
from bpfkit.probes.link import MultiLink
from bpfkit.testing import fixtures

pytestmark = pytest.mark.root
KPROBES = features.check("kprobes")
KPROBE_MULTI = features.check("kprobe_multi")
needs_kprobes = [pytest.mark.guest, pytest.mark.skipif(not KPROBES[0], reason=KPROBES[1])]


def _load_only(bpf_load: Any, pid: int, *names: str) -> bpfkit.Object:
    spec = bpf_load.open("tests/probes_kprobe")
    for p in spec.programs.values():
        p.autoload = p.name in names
    return bpf_load(spec, target_pid=pid)


def _kallsyms_address(name: str) -> int:
    with open("/proc/kallsyms") as f:
        for line in f:
            addr, _, sym = line.split()[:3]
            if sym == name:
                return int(addr, 16)
    raise LookupError(name)


@pytest.mark.skipif(KPROBES[0], reason="this kernel has kprobes")
def test_without_kprobes_attaching_names_config_kprobes(bpf_load: Any) -> None:
    with _load_only(bpf_load, 1, "on_kprobe", "on_read") as obj:
        for attach in (lambda: obj.progs.on_kprobe.attach_kprobe("vfs_read"),
                       lambda: obj.progs.on_kprobe.attach_kretprobe("vfs_read"),
                       lambda: obj.progs.on_kprobe.attach_kprobe("vfs_rea*"),
                       # a pattern matching nothing: the missing feature is the news, not the pattern
                       lambda: obj.progs.on_kprobe.attach_kprobe("bpfkit_no_such_*"),
                       obj.progs.on_read.attach):
            with pytest.raises(bpfkit.FeatureNotSupported, match="CONFIG_KPROBES") as exc:
                attach()
            assert exc.value.feature == "kprobes" and exc.value.errno == errno.ENOENT
        assert obj.links == []


@pytest.mark.skipif(KPROBE_MULTI[0], reason="this kernel has kprobe_multi")
def test_without_kprobe_multi_an_unmatched_pattern_names_the_feature(bpf_load: Any) -> None:
    from bpfkit.probes.kprobe import attach_kprobe_multi

    with _load_only(bpf_load, 1, "on_multi") as obj:
        for attach in (lambda: obj.progs.on_multi.attach_kprobe("bpfkit_no_such_*"),
                       lambda: attach_kprobe_multi(obj.progs.on_multi.fd, "bpfkit_no_such_*")):
            with pytest.raises(bpfkit.FeatureNotSupported) as exc:
                attach()
            assert exc.value.feature == "kprobe_multi"
        assert obj.links == []


@pytest.mark.parametrize("how", ["offset=", "name+off", "SEC"])
def test_kretprobe_at_an_offset_is_refused_on_any_kernel(how: str, bpf_load: Any) -> None:
    from bpfkit.probes.auto import attach_by_section
    from bpfkit.probes.kprobe import attach_kprobe

    with _load_only(bpf_load, 1, "on_kprobe") as obj:
        fd = obj.progs.on_kprobe.fd
        attach = {"offset=": lambda: attach_kprobe(fd, "vfs_read", offset=4, retprobe=True),
                  "name+off": lambda: attach_kprobe(fd, "vfs_read+0x4", retprobe=True),
                  "SEC": lambda: attach_by_section(fd, "kretprobe/vfs_read+4")}[how]
        with pytest.raises(bpfkit.AttachError, match=r"kretprobe vfs_read\+0x4: a return probe must be on the "
                                                      "function's entry") as exc:
            attach()
        assert exc.value.errno == errno.EINVAL


def _guest(fn):  # type: ignore[no-untyped-def]
    for m in needs_kprobes:
        fn = m(fn)
    return fn


@_guest
def test_ksyscall_read_arguments_and_kretsyscall_return_values(bpf_load: Any) -> None:
    n, size = 100, 512
    with fixtures.spawn(fixtures.syscall_target(), "read", str(n), str(size)) as proc:
        with _load_only(bpf_load, proc.pid, "on_read", "on_read_ret") as obj:
            with obj.attach() as group:  # SEC("ksyscall/read"), SEC("kretsyscall/read")
                assert len(group) == 2
                assert proc.finish().strip() == f"done {n}"
            b = obj.bss
            assert (b.read_calls, b.read_bytes_asked) == (n, n * size)
            assert (b.read_returns, b.read_ret_sum) == (n, n * size)
            assert obj.data.read_fd >= 3  # /dev/zero, opened after stdio


@_guest
def test_kretprobe_by_function_name_sees_each_return_value(bpf_load: Any) -> None:
    n, size = 60, 300
    with fixtures.spawn(fixtures.syscall_target(), "read", str(n), str(size)) as proc:
        # on_read_ret is a BPF_KRETPROBE: attached explicitly, not through its kretsyscall/ section
        with _load_only(bpf_load, proc.pid, "on_read_ret") as obj:
            with obj.progs.on_read_ret.attach_kretprobe("vfs_read") as link:
                assert sc.BPF_LINK_TYPE_NAMES[sc.link_info(link.fd).type] == "perf_event"
                assert proc.finish().strip() == f"done {n}"
            # each read(2) of /dev/zero went through vfs_read once and returned `size`
            assert (obj.bss.read_returns, obj.bss.read_ret_sum) == (n, n * size)
            assert obj.bss.read_calls == 0  # only the return probe was loaded


@_guest
@pytest.mark.parametrize("how", ["name", "address", "pattern"])
def test_kprobe_by_name_address_and_pattern_with_cookie(how: str, bpf_load: Any) -> None:
    n = 77
    if how == "pattern":
        # __x64_sys_read, _readv, _readlink...: the child only calls read(2)
        what, args, target = "read", (str(n), "64"), syscall_function("read") + "*"
    else:
        func = syscall_function("getpid")
        what, args, target = "getpid", (str(n),), func if how == "name" else _kallsyms_address(func)
    with fixtures.spawn(fixtures.syscall_target(), what, *args) as proc:
        with _load_only(bpf_load, proc.pid, "on_kprobe") as obj:
            with obj.progs.on_kprobe.attach_kprobe(target, cookie=42) as link:
                links = link.links if isinstance(link, MultiLink) else [link]
                assert {sc.BPF_LINK_TYPE_NAMES[sc.link_info(lk.fd).type] for lk in links} == {"perf_event"}
                assert len(links) > 1 if how == "pattern" else len(links) == 1
                proc.finish()
            assert obj.bss.kprobe_hits == n
            assert obj.bss.last_cookie == 42


@_guest
@pytest.mark.skipif(not KPROBE_MULTI[0], reason=KPROBE_MULTI[1])
def test_kprobe_multi_link_for_a_pattern(bpf_load: Any) -> None:
    n = 55
    pattern = syscall_function("read") + "*"  # the child only calls read(2)
    assert kernel_functions(pattern)
    with fixtures.spawn(fixtures.syscall_target(), "read", str(n), "64") as proc:
        with _load_only(bpf_load, proc.pid, "on_multi") as obj:
            with obj.progs.on_multi.attach_kprobe(pattern) as link:
                assert sc.BPF_LINK_TYPE_NAMES[sc.link_info(link.fd).type] == "kprobe_multi"
                proc.finish()
            assert obj.bss.multi_hits == n


@_guest
def test_unknown_kernel_function_is_a_clear_error(bpf_load: Any) -> None:
    with _load_only(bpf_load, 1, "on_kprobe") as obj:
        with pytest.raises(bpfkit.BpfNotFoundError, match="cannot be kprobed"):
            obj.progs.on_kprobe.attach_kprobe("bpfkit_no_such_function")
        with pytest.raises(bpfkit.BpfNotFoundError, match="cannot be kprobed"):
            obj.progs.on_kprobe.attach_kprobe("bpfkit_no_such_*")


def test_syscall_function_and_kernel_function_listing() -> None:
    assert syscall_function("read").endswith("sys_read")
    assert syscall_function("read") in kernel_functions(syscall_function("rea*"))
    assert kernel_functions("vfs_read") == ["vfs_read"]
    assert kernel_functions("bpfkit_no_such_function") == []
