"""CO-RE portability: the objects built once against the build host's vmlinux.h load on this
kernel. Marked `guest`, so `tests/test_guest_kernels.py` also runs it inside Debian's 6.1 and 6.12
kernels, together with the other `guest`-marked end-to-end tests that use the same prebuilt objects."""
from __future__ import annotations


import pytest

import bpfkit
from bpfkit.shipped import shipped_objects

pytestmark = [pytest.mark.guest,
              pytest.mark.root]

# objects whose programs need what some kernels refuse: fentry at all (this host: EPERM), or
# fmod_ret on bpf_modify_return_test (6.1: "is not modifiable" without CONFIG_FUNCTION_ERROR_INJECTION);
# the loader corpus' trampolines and sleepable programs (the same), typed data ksyms (the kernel
# needs CONFIG_KALLSYMS_ALL, which this host lacks) and kfuncs for tracing programs (6.2+).
# tests/test_guest_kernels.py lists exactly which of these may not load in each guest kernel.
OPTIONAL = {"tests/probes_fentry", "tests/corpus/trampolines", "tests/corpus/sleepable", "tests/corpus/ksyms_typed",
            "tests/corpus/kfuncs", "tests/corpus/modules"}  # modules: needs veth and nf_conntrack loaded


@pytest.mark.parametrize("name", sorted(shipped_objects()))
def test_shipped_object_loads_on_this_kernel(name: str) -> None:
    path = shipped_objects()[name]
    try:
        obj = bpfkit.load(path)
    except (bpfkit.FeatureNotSupported, bpfkit.LoadError) as e:  # LoadError: e.g. a kfunc this kernel lacks
        if name in OPTIONAL:
            pytest.skip(f"{name}: {e}")
        raise
    with obj:
        # every program the object marks for loading (SEC("?...") ones are off by default)
        assert len(obj.progs) == sum(p.autoload for p in bpfkit.open(path).programs.values())
        for prog in obj.progs.values():
            assert prog.id > 0
