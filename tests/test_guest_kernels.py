"""The kernel matrix: run the `guest`-marked tests (kprobe, kretprobe, kprobe_multi, fentry/fexit,
and the CO-RE portability checks) inside Debian's 6.1 and 6.12 kernels under qemu, so the paths this
host's kernel cannot exercise are tested for real rather than skipped.

Each kernel is one boot (~5 s) plus the selected tests at guest speed (20-45x slower than the host):
about 50 s per kernel. Kernel packages are downloaded once and cached (``bpfkit.testing.vm.cache_dir()``).

The tests that must pass, and the few that may skip, are listed exactly per kernel: a guest test
that starts skipping (a feature probe gone wrong, a filter too loose) fails here. Adding a
`guest`-marked test means adding its id below.
"""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from bpfkit.shipped import shipped_objects
from bpfkit.testing import vm

REPO = Path(__file__).resolve().parent.parent
# The native loader's differential and portability tests add ~40 s per kernel at guest speed; on a
# busy host (load average 8 on 2 CPUs) a kernel's whole run took 250 s.
TIMEOUT_PER_KERNEL = 420.0
STAGE_LIMIT = 900.0  # both kernels, downloads included

pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(vm.in_guest(), reason="already inside a guest kernel"),
    pytest.mark.root,
    pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None,
                       reason="qemu-system-x86_64 missing (Debian: apt-get install qemu-system-x86)"),
]

KPROBE = "tests/test_kprobe.py::"
FENTRY = "tests/test_fentry.py::"
KPROBE_MULTI = KPROBE + "test_kprobe_multi_link_for_a_pattern"
FMOD_RET = FENTRY + "test_fmod_ret_runs_before_the_function"
HW_PMU = "tests/test_perf.py::test_hardware_counters_count_a_busy_loop"  # qemu TCG has no PMU
PORTABILITY = "tests/test_core_portability.py::test_shipped_object_loads_on_this_kernel[{}]"
# native loader vs libbpf, object by object (both refusing an object the kernel cannot take is a pass)
DIFFERENTIAL = "tests/test_loader_differential.py::test_both_loaders_put_the_same_object_in_the_kernel[{}]"
ONELINERS = "tests/test_oneliners_kprobe.py::"
ONELINERS_KPROBE_MULTI = ONELINERS + "test_funccount_kernel_functions_exactly[kprobe_multi]"

# What the host cannot run, plus the end-to-end paths that use the same prebuilt objects.
EVERY_KERNEL = {
    KPROBE + "test_ksyscall_read_arguments_and_kretsyscall_return_values",
    KPROBE + "test_kretprobe_by_function_name_sees_each_return_value",
    KPROBE + "test_kprobe_by_name_address_and_pattern_with_cookie[name]",
    KPROBE + "test_kprobe_by_name_address_and_pattern_with_cookie[address]",
    KPROBE + "test_kprobe_by_name_address_and_pattern_with_cookie[pattern]",
    KPROBE + "test_unknown_kernel_function_is_a_clear_error",
    FENTRY + "test_fentry_and_fexit_see_arguments_and_return_values_exactly",
    "tests/test_discovery.py::test_fentry_lists_btf_functions_ftrace_can_patch",
    "tests/test_discovery.py::test_kernel_functions_kprobes_can_attach",
    "tests/test_foundation.py::test_globals_round_trip_both_ways",
    "tests/test_stacktools.py::test_stackcount_kprobe_kernel_stack",
    "tests/test_foundation.py::test_n_getpid_counted_exactly_for_the_child",
    "tests/test_foundation.py::test_ring_buffer_delivers_exactly_n_events",
    "tests/test_foundation.py::test_uprobe_counts_calls_and_uretprobe_sees_return_values",
    "tests/test_tool_capable.py::test_capable_kprobe_sees_the_checks_with_verdict_audit_and_insetid",
    "tests/test_tracepoint_kinds.py::test_raw_and_btf_tracepoints_count_exactly[on_raw_sys_enter-<lambda>-raw_tp_hits]",
    "tests/test_tracepoint_kinds.py::test_raw_and_btf_tracepoints_count_exactly[on_btf_sys_enter-<lambda>-tp_btf_hits0]",
    "tests/test_tracepoint_kinds.py::test_raw_and_btf_tracepoints_count_exactly[on_btf_sys_enter-<lambda>-tp_btf_hits1]",
    "tests/test_native_loader.py::test_kfuncs_and_core_candidates_in_module_btf",
    ONELINERS + "test_kprobe_arguments_and_user_string_exactly",
    ONELINERS + "test_kretprobe_return_values_and_latency",
    ONELINERS + "test_funccount_kernel_functions_exactly[one_kprobe_each]",
    # the file tools of the toolkit (kprobes: the VFS has no tracepoints)
    "tests/test_tools_files.py::test_vfsstat_counts_a_process_exactly",
    "tests/test_tools_files.py::test_filetop_reads_and_bytes_per_file_exactly",
    "tests/test_tools_files.py::test_fileslower_reports_each_io_over_the_threshold",
    "tests/test_tools_files.py::test_filelife_sees_a_file_created_and_deleted",
    "tests/test_tools_files.py::test_cachestat_counts_hits_of_a_cached_file_exactly",
}
# kernel -> (tests that must skip there, shipped objects that cannot load there)
MAY_SKIP: dict[str, tuple[set[str], set[str]]] = {
    # 6.1: no CONFIG_FPROBE (kprobe_multi); fmod_ret refused on bpf_modify_return_test (no
    # CONFIG_FUNCTION_ERROR_INJECTION, and the BTF allowlist came in 6.2), so probes_fentry's
    # on_modify does not load.
    # The loader corpus' kfuncs for tracing programs came in 6.2.
    "6.1": ({KPROBE_MULTI, FMOD_RET, HW_PMU, ONELINERS_KPROBE_MULTI},
            {"tests/probes_fentry", "tests/corpus/kfuncs", "tests/corpus/modules"}),
    # tests/corpus/modules calls kfuncs of nf_conntrack, a module nothing has loaded yet when the
    # portability test runs (test_native_loader.py loads it and tests the object then)
    "6.12": ({HW_PMU}, {"tests/corpus/modules"}),
}


def expected(kernel: str) -> tuple[set[str], set[str]]:
    """(ids that must pass, ids that must skip) in ``kernel``."""
    skip, unloadable = MAY_SKIP[kernel]
    portability = {PORTABILITY.format(name) for name in shipped_objects()}
    differential = {DIFFERENTIAL.format(name) for name in shipped_objects()}
    skipped = skip | {PORTABILITY.format(name) for name in unloadable}
    passed = (EVERY_KERNEL | {KPROBE_MULTI, FMOD_RET, ONELINERS_KPROBE_MULTI} | portability | differential) - skipped
    return passed, skipped


def _diff(what: str, got: set[str], want: set[str]) -> str:
    return (f"{what}: missing {sorted(want - got)}, unexpected {sorted(got - want)}" if got != want else "")


@pytest.fixture(scope="module")
def stage_start() -> float:
    return time.monotonic()


@pytest.fixture
def progress_on_terminal(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """The runner's progress (download, boot, a heartbeat) straight to the terminal, past pytest's
    capture: the first run downloads ~650 MB, and each kernel then takes about a minute."""
    with capsys.disabled():  # the terminal's stderr, before pytest redirects fd 2 for the test
        terminal = os.fdopen(os.dup(2), "w", buffering=1)
    handler = logging.StreamHandler(terminal)
    handler.setFormatter(logging.Formatter("\n  vm: %(message)s"))
    log = logging.getLogger("bpfkit.testing.vm")
    old = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(old)
        terminal.close()


def _guest_files() -> list[str]:
    """The test files holding guest tests: a guest collects only those, since collecting the whole
    suite at guest speed takes minutes (test_every_guest_test_is_listed keeps the list complete)."""
    ids = set().union(*(set().union(*expected(k)) for k in vm.KERNELS))
    return sorted({i.split("::")[0] for i in ids})


def test_every_guest_test_is_listed() -> None:
    # collected on the host, where it is fast: a guest-marked test missing from the lists above
    # would otherwise not run in the guests at all
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-m", "guest", "tests"], cwd=REPO, capture_output=True, text=True, timeout=300)
    collected = {line for line in out.stdout.splitlines() if "::" in line}
    listed = set().union(*(set().union(*expected(k)) for k in vm.KERNELS))
    assert collected == listed, _diff("guest tests", collected, listed)


@pytest.mark.parametrize("kernel", sorted(vm.KERNELS))
@pytest.mark.usefixtures("progress_on_terminal")
def test_guest_marked_tests_pass_in_kernel(kernel: str, stage_start: float) -> None:
    guest = vm.prepare_kernel(kernel)
    result = vm.run_pytest(guest, ["-m", "guest", "-q", "-ra", *_guest_files()], timeout=TIMEOUT_PER_KERNEL,
                           cwd=str(REPO))
    print(f"guest {guest.version}: {result.summary()} in {result.total_seconds:.0f}s")
    assert result.failed == 0 and result.errors == 0, result.output[-12000:]
    assert result.ok, result.output[-6000:]
    want_passed, want_skipped = expected(kernel)
    problems = [p for p in (_diff("passed", result.ids("passed"), want_passed),
                            _diff("skipped", result.ids("skipped"), want_skipped)) if p]
    assert not problems, "\n".join(problems) + "\n" + result.output[-6000:]
    elapsed = time.monotonic() - stage_start
    assert elapsed < STAGE_LIMIT, f"the guest stage has taken {elapsed:.0f}s so far (limit {STAGE_LIMIT:.0f}s)"
