"""The peer benchmark kit's bpfkit peer (``../shared/reference/peer-bench/bpfkit/w*.py``, which is
not ours to edit) keeps working as bpfkit's API changes: each workload runs once through it and
reports figures, not NA. W2 counts exactly: every getpid() of the workload is received or lost."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.root

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KIT = Path(__file__).resolve().parents[2] / "shared" / "reference" / "peer-bench"


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (KIT / "bpfkit").is_dir():
        pytest.skip(f"the peer benchmark kit is not at {KIT} (it is outside the repository)")
    for tool in ("clang-14", "bpftool", "make"):  # what the kit's Makefile uses
        if shutil.which(tool, path=PATH) is None:
            pytest.skip(f"building the peer kit needs {tool}")
    work = tmp_path_factory.mktemp("peer") / "peer-bench"
    shutil.copytree(KIT, work)
    for p in work.rglob("*"):
        p.chmod(p.stat().st_mode | 0o200)
    work.chmod(work.stat().st_mode | 0o200)
    subprocess.run(["make", "-s"], cwd=work, check=True, capture_output=True, timeout=300,
                   env={"PATH": PATH})
    return work


def _results(kit: Path, script: str, *args: str) -> dict[str, float]:
    proc = subprocess.run([sys.executable, script, "--only", "bpfkit", *args], cwd=kit, capture_output=True,
                          text=True, timeout=600, env={"PYK": sys.executable, "PATH": PATH})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = {}
    for m in re.finditer(r"^RESULT peer=bpfkit workload=\S+ metric=(\S+) value=(\S+)", proc.stdout, re.M):
        assert m.group(2) != "NA", f"{script}: {m.group(1)} is NA:\n{proc.stdout}\n{proc.stderr}"
        out[m.group(1)] = float(m.group(2))
    assert out, proc.stdout + proc.stderr
    return out


def test_w1_cold_start(kit: Path) -> None:
    r = _results(kit, "w1_cold_start.py", "--runs", "1")
    assert r["wall_s"] > 0 and r["peak_rss_mib"] > 0


def test_w2_stream_counts_every_event(kit: Path) -> None:
    r = _results(kit, "w2_stream.py", "--runs", "1", "--n", "200000")
    assert r["events_received"] + r["events_lost"] == 200000


def test_w3_map_dump(kit: Path) -> None:
    r = _results(kit, "w3_map_dump.py", "--runs", "1")
    assert r["read_batch_s"] > 0 and r["read_iter_s"] > 0


def test_w4_overhead(kit: Path) -> None:
    r = _results(kit, "w4_overhead.py", "--runs", "1", "--strace-runs", "0")
    assert r["dd_wall_s"] > 0
