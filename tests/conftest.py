"""Shared pytest configuration and fixtures for bpfkit's own tests.

* ``@pytest.mark.root`` (usually as a module's ``pytestmark``): the test needs root (BPF, perf
  events, tracefs); skipped, with one reason, otherwise. Every root test also runs under the
  plugin's leak check (``bpf_leak_check``): BPF fds, programs, maps, links or pins left behind
  fail it. Mark a test ``no_leak_check`` only when it keeps such things on purpose, and say why.
* Objects are loaded through the plugin's ``bpf_load`` fixture (closed after the test, tracked by
  the leak check): ``bpf_load(source, target_pid=pid)`` sets globals before load.
* ``events_obj`` / ``trigger``: the event tests' program and its deterministic getpid() child.
* ``cgroup``: a cgroup v2 directory of the test's own (move fixture children into it).
"""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import bpfkit
from _event_trigger import EVENTS_SRC, Trigger
from bpfkit.cgroups import cgroup2_mount

IS_ROOT = os.geteuid() == 0


def pytest_configure(config: pytest.Config) -> None:
    # `guest`: needs a kernel feature the host lacks (kprobes, fentry); `python -m bpfkit.testing.vm`
    # runs these inside Debian kernels under qemu. `vm`: boots qemu from the host (slow, ~1 min).
    config.addinivalue_line("markers", "guest: run inside a guest kernel by python -m bpfkit.testing.vm")
    config.addinivalue_line("markers", "vm: boots guest kernels under qemu from the host (slow)")
    config.addinivalue_line("markers", "root: needs root (BPF, perf events, tracefs); runs under the leak check")
    config.addinivalue_line("markers", "no_leak_check: keeps BPF resources past the test on purpose")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IS_ROOT:
        return
    skip = pytest.mark.skip(reason="needs root (BPF, perf events and tracefs are root-only here)")
    for item in items:
        if item.get_closest_marker("root"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _leak_check(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every root test is leak-checked, whether it loads through bpf_load or not."""
    node = request.node
    if node.get_closest_marker("root") and not node.get_closest_marker("no_leak_check") and IS_ROOT:
        request.getfixturevalue("bpf_leak_check")
    yield


@pytest.fixture(scope="session")
def events_src() -> Any:
    """The event tests' program (c/tests/events_test.bpf.c), compiled once per session."""
    return bpfkit.compile(EVENTS_SRC)


@pytest.fixture
def trigger() -> Iterator[Trigger]:
    """A fresh getpid() child per test (see tests/_event_trigger.py)."""
    with Trigger() as t:
        yield t


@pytest.fixture
def events_obj(bpf_load: Any, events_src: Any) -> Callable[..., bpfkit.Object]:
    """``events_obj(pid, ring_bytes=0, **globals)``: the events program filtered to ``pid``, its
    ring buffer resized when asked, loaded through bpf_load."""

    def load(pid: int, ring_bytes: int = 0, **globals_: int) -> bpfkit.Object:
        spec = bpf_load.open(events_src)
        if ring_bytes:
            spec.maps.events.max_entries = ring_bytes
        return bpf_load(spec, target_pid=pid, **globals_)

    return load


@pytest.fixture
def cgroup() -> Iterator[Path]:
    """A fresh cgroup v2 directory of the test's own below the cgroup2 mount, removed after the test
    (the children moved into it must have exited by then)."""
    mount = cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup v2 hierarchy mounted: bpf_get_current_cgroup_id() needs one")
    path = Path(mount) / f"bpfkit-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        for _ in range(50):  # exited children leave the cgroup when they are reaped, a moment later
            try:
                path.rmdir()
                break
            except OSError:
                time.sleep(0.1)
