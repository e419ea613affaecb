"""A memory cgroup of the test's own with a small limit, for a real OOM kill: cgroup v2's
``memory.max`` (and ``memory.swap.max`` 0) when the v2 hierarchy has the memory controller, else
cgroup v1's ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes``), as on this machine's
hybrid layout. The directory has a unique name and is removed after.

Example::

    with memory_cgroup(48 << 20) as cg:
        p = subprocess.Popen(cmd, preexec_fn=cg.enter)   # the child joins it before exec
"""
from __future__ import annotations

import contextlib
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from bpfkit.cgroups import cgroup2_mount

__all__ = ["MemCgroup", "memory_cgroup"]


@dataclass(frozen=True)
class MemCgroup:
    path: Path

    def enter(self) -> None:
        """Move the calling process in (use as a Popen preexec_fn)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))


def _v2_root() -> Path | None:
    mount = cgroup2_mount()
    if mount is None:
        return None
    root = Path(mount)
    try:
        if "memory" not in (root / "cgroup.controllers").read_text().split():
            return None
        if "memory" not in (root / "cgroup.subtree_control").read_text().split():
            (root / "cgroup.subtree_control").write_text("+memory")
    except OSError:
        return None
    return root


@contextlib.contextmanager
def memory_cgroup(limit: int) -> Iterator[MemCgroup]:
    name = f"bpfkit-oom-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    v2 = _v2_root()
    if v2 is not None:
        path = v2 / name
        path.mkdir()
        (path / "memory.max").write_text(str(limit))
        if (path / "memory.swap.max").exists():
            (path / "memory.swap.max").write_text("0")
    else:
        v1 = Path("/sys/fs/cgroup/memory")
        if not (v1 / "memory.limit_in_bytes").exists():
            raise RuntimeError("no memory cgroup controller (v1 or v2) on this machine")
        path = v1 / name
        path.mkdir()
        (path / "memory.limit_in_bytes").write_text(str(limit))
        if (path / "memory.memsw.limit_in_bytes").exists():
            (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
    try:
        yield MemCgroup(path)
    finally:
        for _ in range(50):  # a killed child leaves the cgroup once reaped
            try:
                path.rmdir()
                break
            except OSError:
                time.sleep(0.1)
