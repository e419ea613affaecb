"""Moving fixture children into a test's own cgroup (the ``cgroup`` fixture of conftest.py), so a BPF
program that filters on its id (bpf_get_current_cgroup_id()) counts them and nothing else."""
from __future__ import annotations

from pathlib import Path




def move(cgroup: Path, pid: int) -> None:
    """Move process ``pid`` into ``cgroup``."""
    (cgroup / "cgroup.procs").write_text(str(pid))
