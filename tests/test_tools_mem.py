"""The memory tools on the real kernel: oomkill sees the OOM kill of a fixture process that
allocates without end inside a memory cgroup of the test's own (tests/_memcg.py)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from _cli import ToolRun
from _memcg import memory_cgroup
from bpfkit.tools import oomkill

pytestmark = pytest.mark.root

LIMIT = 48 << 20
# touches every page it allocates (bytearray(n) alone may stay unbacked zero pages)
HOG = "x = []\nwhile True:\n    x.append(bytearray(b'\\1') * (1 << 20))\n"


def _oom_victim() -> subprocess.Popen[bytes]:
    with memory_cgroup(LIMIT) as cg:
        p = subprocess.Popen([sys.executable, "-c", HOG], preexec_fn=cg.enter, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        p.wait(timeout=60)
    return p


def test_oomkill_sees_the_kill_of_a_process_over_its_cgroup_limit() -> None:
    with oomkill.stream() as s:
        p = _oom_victim()
        time.sleep(0.2)
        rows = [r for r in oomkill.decode(s.drain()) if r["pid"] == p.pid]
    assert p.returncode == -signal.SIGKILL
    assert len(rows) == 1, rows
    (r,) = rows
    assert r["trigger_pid"] == p.pid            # it was its own allocation that hit the limit
    assert r["comm"] == r["trigger_comm"] and r["comm"].startswith("python")
    # its anonymous memory is what the cgroup charged (shared library pages may be charged elsewhere)
    assert LIMIT // 2 < r["anon_rss_kb"] * 1024 <= LIMIT and r["total_vm_kb"] >= r["anon_rss_kb"]


def test_oomkill_cli_text_and_json() -> None:
    with ToolRun("oomkill") as run:
        p = _oom_victim()
        time.sleep(0.3)
        rc, out, err = run.stop(signal.SIGINT)
    assert rc == 0, err
    mine = [line for line in out.splitlines() if f"OOM kill of PID {p.pid} " in line]
    assert len(mine) == 1 and f"Triggered by PID {p.pid} (" in mine[0] and " pages, loadavg: " in mine[0], out
    with ToolRun("oomkill", "--json") as run:
        p = _oom_victim()
        time.sleep(0.3)
        rc, out, err = run.stop(signal.SIGTERM)
    assert rc == 0, err
    assert [json.loads(line)["trigger_pid"] for line in out.splitlines()
            if json.loads(line)["pid"] == p.pid] == [p.pid]
