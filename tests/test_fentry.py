"""fentry/fexit/fmod_ret (issue 5). bpf_fentry_test1() and bpf_modify_return_test() run once per
BPF_PROG_TEST_RUN of a tracing program, in the calling thread: an exact, private trigger.

This project's CI kernel refuses BPF trampolines (EPERM at load): the error path runs here, the
real attachment in guest kernels (``python -m bpfkit.testing.vm``).
"""
from __future__ import annotations

import threading

import pytest

import bpfkit
from bpfkit import features
from bpfkit import _sys as sc

pytestmark = pytest.mark.root
FENTRY = features.check("fentry")


def _load(*names: str) -> bpfkit.Object:
    spec = bpfkit.open("tests/probes_fentry")
    spec.rodata.target_tid = threading.get_native_id()
    for p in spec.programs.values():
        p.autoload = p.name in names
    return spec.load()


@pytest.mark.skipif(FENTRY[0], reason="this kernel supports fentry")
def test_kernel_refusing_trampolines_raises_feature_not_supported_with_the_reason() -> None:
    with pytest.raises(bpfkit.FeatureNotSupported, match="cannot load: the kernel refuses fentry") as exc:
        _load("on_entry")
    assert exc.value.feature == "fentry" and exc.value.errno != 0
    assert "on_entry" in str(exc.value)


@pytest.mark.guest
@pytest.mark.skipif(not FENTRY[0], reason=FENTRY[1])
def test_fentry_and_fexit_see_arguments_and_return_values_exactly() -> None:
    n = 40
    with _load("on_entry", "on_exit") as obj:
        with obj.progs.on_entry.attach_fentry() as a, obj.progs.on_exit.attach() as b:
            for link in (a, b):
                assert sc.BPF_LINK_TYPE_NAMES[sc.link_info(link.fd).type] == "tracing"
            for _ in range(n):
                obj.progs.on_entry.test_run()  # calls bpf_fentry_test1(1), which returns 2
        for _ in range(3):
            obj.progs.on_entry.test_run()  # detached: not counted
        assert (obj.bss.entries, obj.bss.entry_arg_sum) == (n, n * 1)
        assert (obj.bss.exits, obj.bss.exit_ret_sum) == (n, n * 2)


@pytest.mark.guest
@pytest.mark.skipif(not FENTRY[0], reason=FENTRY[1])
def test_fmod_ret_runs_before_the_function() -> None:
    n = 12
    try:
        obj = _load("on_modify")
    except bpfkit.VerifierError as e:
        if "not modifiable" not in e.log:
            raise
        pytest.skip("this kernel does not allow fmod_ret on bpf_modify_return_test (it needs "
                    "CONFIG_FUNCTION_ERROR_INJECTION, or Linux 6.2+ where the BTF fmod_ret allowlist has it)")
    with obj:
        with obj.progs.on_modify.attach():
            for _ in range(n):
                obj.progs.on_modify.test_run()  # calls bpf_modify_return_test()
        assert obj.bss.modify_calls == n
