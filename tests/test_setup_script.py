"""scripts/setup.sh on a machine where another apt is running, or whose package lists are stale.

The apt parts run with their lock files, lists directory and commands pointed elsewhere (the
script's BPFKIT_* settings, and `apt-get`/`dpkg-query` stand-ins first on PATH): holding the real
dpkg lock here would break other people's apt on this shared machine.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOLD_LOCK = "import fcntl, sys, time; f = open(sys.argv[1], 'w'); fcntl.lockf(f, fcntl.LOCK_EX); " \
            "print('held', flush=True); time.sleep(float(sys.argv[2]))"


def _bash(script: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    full = f"BPFKIT_SETUP_FUNCTIONS_ONLY=1 source {ROOT}/scripts/setup.sh\n{script}"
    return subprocess.run(["bash", "-c", full], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **env})


def _holder(lock: Path, seconds: float) -> subprocess.Popen[str]:
    p = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock), str(seconds)], stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout is not None and p.stdout.readline() == "held\n"
    return p


def test_waits_for_another_apt_then_goes_on(tmp_path: Path) -> None:
    lock = tmp_path / "lock-frontend"
    holder = _holder(lock, 2.5)
    try:
        t0 = time.monotonic()
        r = _bash("wait_for_apt && echo proceeding", {"BPFKIT_APT_LOCKS": f"{tmp_path}/absent {lock}",
                                                     "BPFKIT_APT_WAIT": "30"})
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"setup: waiting for another apt/dpkg to finish: pid {holder.pid} (")
    assert lines[0].endswith(", 0s of 30s") and lines[-1] == "proceeding"
    assert 1.5 < waited < 20


def test_gives_up_after_the_bound_saying_what_to_do(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    holder = _holder(lock, 60)
    try:
        r = _bash("wait_for_apt", {"BPFKIT_APT_LOCKS": str(lock), "BPFKIT_APT_WAIT": "2"})
    finally:
        holder.kill()
        holder.wait()
    assert r.returncode == 1
    assert r.stderr == ("setup: another apt/dpkg still holds its lock after 2s; let it finish (or stop it) and run "
                        "this again (BPFKIT_APT_WAIT=SECONDS waits longer)\n")


def test_no_lock_held_means_no_wait(tmp_path: Path) -> None:
    (tmp_path / "lock").touch()
    r = _bash("wait_for_apt && echo proceeding", {"BPFKIT_APT_LOCKS": f"{tmp_path}/lock", "BPFKIT_APT_WAIT": "5"})
    assert (r.returncode, r.stdout) == (0, "proceeding\n")


def _fake_apt(tmp_path: Path, fail_first_install: bool = False) -> Path:
    """`dpkg-query` saying nothing is installed and `apt-get` writing its arguments to a log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nexit 1\n")
    fail = (f'if [ "$3" = install ] && [ ! -e {tmp_path}/failed ]; then touch {tmp_path}/failed; exit 100; fi\n'
            if fail_first_install else "")
    (bin_dir / "apt-get").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/apt.log\n{fail}exit 0\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    return bin_dir


def test_says_what_it_installs_and_refreshes_stale_lists(tmp_path: Path) -> None:
    bin_dir = _fake_apt(tmp_path)
    lists = tmp_path / "lists"
    lists.mkdir()
    old = lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4"
    old.touch()
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "BPFKIT_APT_LOCKS": str(tmp_path / "nolock"),
           "BPFKIT_APT_LISTS_DIR": str(lists)}
    r = _bash("install_packages", env)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "setup: installing 15 Debian package(s) with apt-get:"
    assert out[1].split() == ["setup:", "clang-14", "compiles", "BPF", "C", "into", ".bpf.o", "objects"]
    assert all(line.startswith("setup:   ") and len(line.split()) > 2 for line in out[1:16])
    assert out[16] == "setup: package lists are missing or older than 86400s: apt-get update"
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls[0] == "-o DPkg::Lock::Timeout=600 -q update"
    assert calls[1].startswith("-o DPkg::Lock::Timeout=600 install -y -q clang-14 llvm-14 libbpf-dev bpftool")
    assert len(calls) == 2


def test_fresh_lists_are_not_refreshed_and_a_failed_install_is_retried_after_an_update(tmp_path: Path) -> None:
    bin_dir = _fake_apt(tmp_path, fail_first_install=True)
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "x_Packages").touch()
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "BPFKIT_APT_LOCKS": str(tmp_path / "nolock"),
           "BPFKIT_APT_LISTS_DIR": str(lists)}
    r = _bash("install_packages", env)
    assert r.returncode == 0, r.stderr
    assert "setup: install failed; refreshing the package lists (apt-get update) and trying once more" in r.stdout
    calls = [c.split()[2] for c in (tmp_path / "apt.log").read_text().splitlines()]
    assert calls == ["install", "-q", "install"]  # no update up front: the lists were fresh
