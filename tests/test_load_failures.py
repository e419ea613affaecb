"""Load failures say what was not found and which map or program was refused, and why (issue 11),
instead of a bare `loading 'x' failed (ESRCH 3)`. Each object is compiled from the source here with
bpfkit.compile (cached) and loaded against the running kernel."""
from __future__ import annotations

import errno
import os

import pytest

import bpfkit
from bpfkit.errors import LoadError, VerifierError
from bpfkit.loader import failures
from bpfkit.maps.rules import MapShape
from bpfkit import _sys as sc


@pytest.fixture(autouse=True)
def _libbpf_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    # these are loader/failures.py's words, the libbpf backend's; the native loader (the default
    # since the merge) explains the same refusals in its own words, tested with it
    monkeypatch.setenv("BPFKIT_LOADER", "libbpf")


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")

HEAD = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n' \
       '#include <bpf/bpf_core_read.h>\nchar LICENSE[] SEC("license") = "GPL";\n__u64 out;\n'


def _load(body: str) -> bpfkit.Object:
    return bpfkit.load(bpfkit.compile(HEAD + body))


def test_missing_fentry_target_is_named() -> None:
    with pytest.raises(LoadError) as ei:
        _load('SEC("fentry/no_such_function_xyz")\nint BPF_PROG(on_x) { return 0; }\n')
    msg = str(ei.value)
    assert "program 'on_x'" in msg and "no function 'no_such_function_xyz'" in msg
    assert "bpfkit.probes.list('fentry:*')" in msg and ei.value.errno == errno.ESRCH


def test_missing_tp_btf_target_is_named() -> None:
    with pytest.raises(LoadError) as ei:
        _load('SEC("tp_btf/no_such_tracepoint_xyz")\nint BPF_PROG(on_x) { return 0; }\n')
    assert "no raw tracepoint 'no_such_tracepoint_xyz'" in str(ei.value)


@pytest.mark.parametrize("decl, use, words", [
    ("extern int CONFIG_NO_SUCH_OPTION_XYZ __kconfig;", "out = CONFIG_NO_SUCH_OPTION_XYZ;",
     ["kernel config option CONFIG_NO_SUCH_OPTION_XYZ", "__weak"]),
    ("extern const int no_such_ksym_xyz __ksym;", "out = (__u64)&no_such_ksym_xyz;",
     ["kernel symbol 'no_such_ksym_xyz'", "bpf_ksym_exists"]),
])
def test_missing_externs_are_named(decl: str, use: str, words: list[str]) -> None:
    with pytest.raises(LoadError) as ei:
        _load(f'{decl}\nSEC("tracepoint/syscalls/sys_enter_getpid")\nint on_x(void *ctx) {{ {use} return 0; }}\n')
    for w in words:
        assert w in str(ei.value)
    assert ei.value.errno == errno.ESRCH


def test_missing_kfunc_is_named() -> None:
    with pytest.raises(LoadError, match=r"kernel function \(kfunc\) 'bpf_no_such_kfunc_xyz'"):
        _load('extern int bpf_no_such_kfunc_xyz(int x) __ksym;\n'
              'SEC("syscall")\nint on_x(void *ctx) { return bpf_no_such_kfunc_xyz(1); }\n')


def test_refused_map_is_named_with_the_reason() -> None:
    with pytest.raises(LoadError) as ei:
        _load('struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 0); __type(key, __u32);\n'
              '         __type(value, __u64); } h SEC(".maps");\n'
              'SEC("tracepoint/syscalls/sys_enter_getpid")\n'
              'int on_x(void *ctx) { __u32 k = 0; bpf_map_lookup_elem(&h, &k); return 0; }\n')
    msg = str(ei.value)
    assert "map 'h' (hash" in msg and "max_entries is 0" in msg and ei.value.errno == errno.EINVAL


def test_spec_edit_that_the_kernel_refuses_is_explained() -> None:
    spec = bpfkit.open("tests/count")
    spec.maps.counts.max_entries = 0
    with pytest.raises(LoadError, match=r"map 'counts' \(hash.*max_entries is 0"):
        spec.load()


def test_failed_core_relocation_names_the_field() -> None:
    with pytest.raises(VerifierError) as ei:
        _load('struct task_struct___fake { int no_such_field_xyz; } __attribute__((preserve_access_index));\n'
              'SEC("tracepoint/syscalls/sys_enter_getpid")\nint on_x(void *ctx) {\n'
              '  struct task_struct___fake *t = (void *)bpf_get_current_task();\n'
              '  out = BPF_CORE_READ(t, no_such_field_xyz); return 0; }\n')
    msg = str(ei.value)
    assert "CO-RE relocation failed" in msg and "struct task_struct___fake.no_such_field_xyz" in msg
    assert "bpf_core_field_exists" in msg


def test_explanations_are_plain_functions_for_every_backend() -> None:
    # what the native backend calls with the facts it has (no libbpf messages to parse)
    assert "no function 'vfs_reed'" in failures.missing_attach_target("p", "fentry/vfs_reed", "vfs_reed")
    why = failures.map_refused("rb", MapShape(sc.BPF_MAP_TYPE_RINGBUF, 0, 0, 5000, 0), errno.EINVAL)
    assert "power of 2" in why and "'rb'" in why
