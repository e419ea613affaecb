"""bpfkit.testing.vm: boots the Debian 6.1 kernel under qemu (TCG) and checks
what really happens inside. Three boots in all, ~1 minute."""
from __future__ import annotations

import logging
import os
import re
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bpfkit.testing import vm

pytestmark = [
    pytest.mark.vm,
    pytest.mark.skipif(vm.in_guest(), reason="already inside a guest kernel: no nested qemu"),
]

# Booting takes ~4 s under TCG on these machines; everything inside is 20-45x slower.
TIMEOUT = 240.0
TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def kernel() -> vm.GuestKernel:
    try:
        return vm.prepare_kernel("6.1")
    except vm.GuestUnavailable as e:
        pytest.skip(f"guest kernel 6.1 unavailable (qemu/apt/busybox-static): {e}")


@pytest.fixture(scope="module")
def facts(kernel: vm.GuestKernel) -> tuple[vm.GuestResult, dict[str, str]]:
    """One boot answering several questions as key=value lines, ending in exit 3."""
    script = textwrap.dedent(
        f"""\
        echo "uname=$(uname -r)"
        echo "kprobe_type=$(cat /sys/bus/event_source/devices/kprobe/type)"
        echo "pwd=$(pwd)"
        echo "token=$BPFKIT_TEST_TOKEN"
        echo "in_guest=$BPFKIT_IN_GUEST"
        {sys.executable} -c 'import numpy, sys; print("numpy=" + numpy.__version__); print("prefix=" + sys.prefix)'
        modprobe dummy && grep -q '^dummy ' /proc/modules && echo modprobe=ok
        exit 3
        """
    )
    res = vm.run_in_guest(kernel, ["bash", "-c", script], timeout=TIMEOUT,
                          env={"BPFKIT_TEST_TOKEN": "tok en'42"}, cwd=str(TESTS_DIR))
    values = dict(line.split("=", 1) for line in res.output.splitlines() if "=" in line)
    return res, values


def test_guest_runs_the_package_kernel(kernel: vm.GuestKernel, facts: tuple[vm.GuestResult, dict[str, str]]) -> None:
    assert kernel.package == f"linux-image-{kernel.version}"
    assert facts[1]["uname"] == kernel.version
    assert facts[1]["in_guest"] == kernel.version


def test_kprobes_available_in_guest(facts: tuple[vm.GuestResult, dict[str, str]]) -> None:
    assert facts[1]["kprobe_type"].isdigit(), facts[0].output


def test_host_venv_python_runs_in_guest(facts: tuple[vm.GuestResult, dict[str, str]]) -> None:
    import numpy

    assert facts[1]["numpy"] == numpy.__version__
    assert facts[1]["prefix"] == sys.prefix


def test_modprobe_uses_package_modules(facts: tuple[vm.GuestResult, dict[str, str]]) -> None:
    assert facts[1].get("modprobe") == "ok", facts[0].output


def test_env_and_cwd_reach_the_command(facts: tuple[vm.GuestResult, dict[str, str]]) -> None:
    assert facts[1]["token"] == "tok en'42"
    assert facts[1]["pwd"] == str(TESTS_DIR)


def test_exit_status_comes_back(facts: tuple[vm.GuestResult, dict[str, str]]) -> None:
    assert facts[0].returncode == 3


def test_times_are_measured(facts: tuple[vm.GuestResult, dict[str, str]]) -> None:
    res = facts[0]
    assert 0 < res.boot_seconds < res.total_seconds < TIMEOUT


def test_timeout_kills_qemu(kernel: vm.GuestKernel, facts: tuple[vm.GuestResult, dict[str, str]]) -> None:
    # Long enough for the guest to be running the command when the timeout hits.
    timeout = facts[0].boot_seconds + 4
    t0 = time.monotonic()
    with pytest.raises(vm.GuestTimeout) as info:
        vm.run_in_guest(kernel, ["bash", "-c", "echo sleeping; sleep 600"], timeout=timeout)
    elapsed = time.monotonic() - t0
    assert timeout <= elapsed < timeout + 10
    pid = info.value.pid
    assert pid > 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # killed and reaped: the pid no longer exists
    assert "bpfkit-vm: start" in info.value.console
    assert "sleeping" in info.value.output


def test_run_pytest_counts(kernel: vm.GuestKernel, tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(
        """\
        import os, pytest

        def test_in_guest():
            assert os.environ["BPFKIT_IN_GUEST"]

        def test_two():
            pass

        def test_fails():
            assert False

        @pytest.mark.skip(reason="on purpose")
        def test_skipped():
            pass
        """
    ))
    res = vm.run_pytest(kernel, ["-q", "test_sample.py"], timeout=TIMEOUT, cwd=str(tmp_path))
    assert (res.passed, res.failed, res.skipped, res.errors) == (2, 1, 1, 0), res.output
    assert res.returncode == 1
    assert not res.ok
    assert res.summary() == "2 passed, 1 failed, 1 skipped"
    assert res.tests == {"test_sample.py::test_in_guest": "passed", "test_sample.py::test_two": "passed",
                         "test_sample.py::test_fails": "failed", "test_sample.py::test_skipped": "skipped"}
    assert res.ids("passed") == {"test_sample.py::test_in_guest", "test_sample.py::test_two"}
    # The guest's writes (pytest's rewritten-assert .pyc files) land in its tmpfs overlay, not on the host.
    assert not (tmp_path / "__pycache__").exists()


def test_second_prepare_builds_nothing(kernel: vm.GuestKernel) -> None:
    before = {p: p.stat().st_mtime_ns for p in (kernel.vmlinux, kernel.initrd, kernel.modules_dir / "modules.dep")}
    again = vm.prepare_kernel("6.1")
    assert again == kernel
    assert {p: p.stat().st_mtime_ns for p in before} == before


def test_newest_package_is_picked_numerically() -> None:
    names = ["linux-image-6.1.0-9-amd64", "linux-image-6.1.0-56-amd64", "linux-image-6.1.0-56-amd64-dbg",
             "linux-image-6.1.0-56-cloud-amd64", "linux-image-6.12.9+deb12-amd64",
             "linux-image-6.12.117+deb12-amd64", "linux-image-6.12.115+deb12-amd64-unsigned"]
    apt = FixedApt(names)
    assert vm.resolve_package("6.1", apt) == "linux-image-6.1.0-56-amd64"
    # The unsigned 6.12 build is preferred; Debian publishes it alongside each signed one.
    assert vm.resolve_package("6.12", apt) == "linux-image-6.12.115+deb12-amd64-unsigned"


def test_ok_needs_a_test_that_passed() -> None:
    # pytest's exit 5 (nothing collected) or a run where all skipped tested nothing
    assert not vm.PytestResult(5, "", 1.0, 2.0).ok
    assert not vm.PytestResult(0, "", 1.0, 2.0, skipped=3).ok
    assert vm.PytestResult(0, "", 1.0, 2.0, passed=1, skipped=3).ok
    assert not vm.PytestResult(1, "", 1.0, 2.0, passed=1, failed=1).ok


class FixedApt(vm.Apt):
    """An archive that names the packages it is given (and counts its list refreshes): the real
    apt-get download still runs, and fails for a package no mirror has."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names
        self.updates = 0

    def candidates(self, spec: vm.KernelSpec) -> list[str]:
        return list(self.names)

    def update(self) -> bool:
        self.updates += 1
        return False


def test_failed_download_falls_back_to_the_newest_cached_kernel(kernel: vm.GuestKernel) -> None:
    gone = "linux-image-6.1.0-999-amd64"  # newer than anything cached, and not on any mirror
    apt = FixedApt([gone, kernel.package])
    assert vm.resolve_package("6.1", apt) == gone
    assert vm.prepare_kernel("6.1", apt) == kernel  # the real `apt-get download` failed
    assert not (vm.cache_dir() / gone).exists()


def test_empty_kernel_cache_refreshes_apt_lists_first(kernel: vm.GuestKernel, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    apt = FixedApt([kernel.package])
    assert vm.resolve_package("6.1", apt) == kernel.package  # the module's kernel is cached: no update
    assert apt.updates == 0
    monkeypatch.setenv("BPFKIT_KERNEL_CACHE", str(tmp_path))
    apt.names = []
    with pytest.raises(vm.GuestUnavailable, match="none is cached"):
        vm.resolve_package("6.1", apt)
    assert apt.updates == 1


def test_bad_arguments_are_usage_errors(kernel: vm.GuestKernel) -> None:
    from bpfkit.errors import BpfUsageError

    with pytest.raises(BpfUsageError, match="invalid environment variable name 'BAD-NAME'"):
        vm.run_in_guest(kernel, ["true"], timeout=TIMEOUT, env={"BAD-NAME": "x"})
    with pytest.raises(BpfUsageError, match="argv must name a command"):
        vm.run_in_guest(kernel, [], timeout=TIMEOUT)


def test_boot_and_run_report_progress(kernel: vm.GuestKernel, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bpfkit.testing.vm"):
        res = vm.run_in_guest(kernel, ["sleep", "3"], timeout=TIMEOUT, progress_every=1.0)
    assert res.returncode == 0
    msgs = [m for m in caplog.messages if m.startswith(f"guest {kernel.version}: ")]
    assert msgs[0].startswith(f"guest {kernel.version}: booting under qemu (")
    assert any(re.fullmatch(rf"guest {re.escape(kernel.version)}: booted in [0-9.]+ s, running sleep 3", m)
               for m in msgs)
    beats = [m for m in msgs if re.fullmatch(rf"guest {re.escape(kernel.version)}: (running|still booting), \d+ s "
                                             r"so far \(\d+ bytes of output\)", m)]
    assert len(beats) >= 2  # at least one a second while the guest slept 3 s (and booted)


def test_download_reports_what_and_how_far(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="bpfkit.testing.vm"):
        vm.download("hello", tmp_path, progress_every=0.01)
    [deb] = tmp_path.glob("hello_*.deb")
    assert re.fullmatch(r"downloading hello \(\d+ MB\) into .*", caplog.messages[0])
    assert re.fullmatch(r"downloaded hello in \d+ s", caplog.messages[-1])
    with pytest.raises(vm.GuestUnavailable, match="download no-such-package-bpfkit failed"):
        vm.download("no-such-package-bpfkit", tmp_path)
