"""The one-liners on kprobe specs. This host's kernel has no CONFIG_KPROBES: these skip here naming
it and run for real inside the guest kernels (``guest`` marker; ids in test_guest_kernels.py),
with kprobe_multi where the kernel has it (6.12) and one kprobe per function where not (6.1)."""
from __future__ import annotations

import tempfile

import numpy as np
import pytest

import bpfkit
from bpfkit import features
from bpfkit.probes.spec import parse_probe
from bpfkit.testing import fixtures
from bpfkit.tools.common import Scope
from bpfkit.tools.funccount import Counter, parse_pattern

KPROBES = features.check("kprobes")
pytestmark = [pytest.mark.root, pytest.mark.guest, pytest.mark.skipif(not KPROBES[0], reason=KPROBES[1])]


def target() -> str:
    return str(fixtures.build_fixture("oneliner_target"))


def test_kprobe_arguments_and_user_string_exactly() -> None:
    n = 8
    with tempfile.NamedTemporaryFile(prefix="bpfkit-ol-kprobe-") as f:
        with fixtures.spawn(target(), str(n), "0", f.name, timeout=60) as proc:
            ev = np.concatenate(list(bpfkit.trace(
                "p::do_sys_openat2(int dfd, const char *filename)", filter=f'filename == "{f.name}"',
                pid=proc.pid, timeout=1.0, on_attached=proc.release)))
            proc.finish()
    assert ev["filename"].tolist() == [f.name.encode()] * n  # a __user pointer: read from user memory
    assert ev["dfd"].tolist() == [-100] * n


def test_kretprobe_return_values_and_latency() -> None:
    n = 6
    with tempfile.NamedTemporaryFile(prefix="bpfkit-ol-kretprobe-") as f:
        with fixtures.spawn(target(), str(n), "0", f.name, timeout=60) as proc:
            ev = np.concatenate(list(bpfkit.trace("r::do_sys_openat2", filter="$latency > 0", pid=proc.pid,
                                                  timeout=1.0, on_attached=proc.release)))
            proc.finish()
    assert len(ev) == n
    assert np.all(ev["retval"] >= 3) and np.all(ev["latency"] > 0)


@pytest.mark.parametrize("multi", [True, False], ids=["kprobe_multi", "one_kprobe_each"])
def test_funccount_kernel_functions_exactly(multi: bool) -> None:
    if multi and not features.check("kprobe_multi")[0]:
        pytest.skip(f"kprobe_multi: {features.check('kprobe_multi')[1]}")
    n = 7
    spec = parse_pattern("^(do_sys_openat2|do_filp_open)$", regex=True)
    with tempfile.NamedTemporaryFile(prefix="bpfkit-ol-funccount-") as f:
        with fixtures.spawn(target(), str(n), "0", f.name, timeout=60) as proc:
            with Counter(spec, regex=True, scope=Scope(pid=proc.pid), multi=multi) as c:
                assert c.multi is multi
                proc.release()
                proc.finish()
                assert c.read() == {"do_sys_openat2": n, "do_filp_open": n}
    assert parse_probe("p::vfs_read").kind == "kprobe"
