"""A cgroup v2 directory of a test's own: fixture children are moved into it so a BPF program that
filters on its id (bpf_get_current_cgroup_id()) counts them and nothing else on the machine."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from bpfkit.exporter.decoders import cgroup2_mount


@pytest.fixture
def cgroup() -> Iterator[Path]:
    """A fresh cgroup below the cgroup2 mount, removed after the test (its tasks must have exited)."""
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


def move(cgroup: Path, pid: int) -> None:
    """Move process ``pid`` into ``cgroup``."""
    (cgroup / "cgroup.procs").write_text(str(pid))
