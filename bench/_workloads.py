"""Workloads for tool benchmarks: small C programs under bench/workloads/ built on demand, each doing exactly COUNT
operations (or running until killed with COUNT 0, paced, as a trigger); a loop device; a unique marker file; and
timing a workload run. Stdlib only.

Example::

    from _workloads import loop_device, timed, workload
    with loop_device() as dev:
        wall, cpu = timed([workload("odirect"), dev, 1000])   # 1000 O_DIRECT 4 KiB reads, one request each
"""
from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

WORKLOADS = Path(__file__).resolve().parent / "workloads"


def workload(name: str) -> Path:
    """Compile bench/workloads/NAME.c (on demand, when the source is newer) and return the executable.

    Example: ``subprocess.run([workload("openloop"), "100000"])``"""
    src, exe = WORKLOADS / f"{name}.c", WORKLOADS / "build" / name
    deps = [src, WORKLOADS / "common.h"]
    if not exe.exists() or any(d.stat().st_mtime > exe.stat().st_mtime for d in deps):
        exe.parent.mkdir(exist_ok=True)
        tmp = exe.with_name(f".{name}.{os.getpid()}")  # concurrent builds: compile aside, rename atomically
        subprocess.run(["gcc", "-O2", "-Wall", "-o", str(tmp), str(src)], check=True)
        os.replace(tmp, exe)
    return exe


@contextmanager
def background(argv: Sequence[object]) -> Iterator["subprocess.Popen[bytes]"]:
    """A trigger process (e.g. ``openloop 0 1000``: an open every 1 ms) for the duration of the block; it and any
    children it forked (tcpconn's server) are killed at the end, as a process group."""
    p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        yield p
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()


@contextmanager
def loop_device(size_mib: int = 64) -> Iterator[str]:
    """A loop device (direct I/O on) over a fresh file in /tmp; detached and removed afterwards.

    Example: ``with loop_device() as dev: subprocess.run([workload("odirect"), dev, "1000"])``"""
    fd, path = tempfile.mkstemp(prefix=f"bench-loop-{os.getpid()}-", dir="/tmp")
    dev = None
    try:
        os.posix_fallocate(fd, 0, size_mib << 20)
        os.close(fd)
        dev = subprocess.run(["losetup", "--find", "--show", "--direct-io=on", path], check=True,
                             capture_output=True, text=True).stdout.strip()
        yield dev
    finally:
        if dev:
            subprocess.run(["losetup", "-d", dev], check=False)
        os.unlink(path)


@contextmanager
def marker_file() -> Iterator[str]:
    """A uniquely named empty file in /tmp (a path only the trigger opens), removed afterwards."""
    fd, path = tempfile.mkstemp(prefix=f"bkmark-{os.getpid()}-", dir="/tmp")
    os.close(fd)
    try:
        yield path
    finally:
        os.unlink(path)


def timed(argv: Sequence[object], timeout: float = 600) -> tuple[float, float]:
    """Run a workload to completion: (wall s, its own CPU s from wait4). It must exit 0 within ``timeout``."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen([str(a) for a in argv], stdout=subprocess.DEVNULL, stderr=err)
        timer = threading.Timer(timeout, p.kill)
        timer.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        timer.cancel()
        p.returncode = os.waitstatus_to_exitcode(status)
        if p.returncode:
            err.seek(0)
            raise RuntimeError(f"workload {[str(a) for a in argv]} failed ({p.returncode}): "
                               f"{err.read().decode(errors='replace')[-500:]}")
    return wall, ru.ru_utime + ru.ru_stime
