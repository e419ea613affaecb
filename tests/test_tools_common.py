"""The shared tool framework (bpfkit.tools.common): BPF-side scoping by process, thread, command
name and cgroup counted exactly; signals that stop a tool with its summary, also when SIGINT is
ignored; option checking; tables and JSON."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import bpfkit
from bpfkit.testing import triggers
from bpfkit.tools import common

pytestmark = pytest.mark.root


def _count(scope: common.Scope, *triggered: triggers.Trigger) -> dict[int, int]:
    spec = bpfkit.open("tests/scope")
    scope.apply(spec)
    with spec.load() as obj, obj.attach():
        for t in triggered:
            t.run()
        keys, values = obj.maps.calls.to_numpy()
    return {int(k): int(v) for k, v in zip(keys, values)}


def test_scope_by_process_counts_exactly_that_process() -> None:
    with triggers.syscalls("getpid", 7) as a, triggers.syscalls("getpid", 3) as b:
        got = _count(common.Scope(pid=a.pid), a, b)
    assert got == {a.pid: 7}


def test_scope_by_command_name() -> None:
    with triggers.syscalls("getpid", 5) as a:
        comm = common.comm_of(a.pid)
        got = _count(common.Scope(comm=comm), a)
        assert got.get(a.pid) == 5
        with triggers.syscalls("getpid", 5) as b:
            assert _count(common.Scope(comm="bpfkit-nomatch"), b) == {}


def test_scope_by_cgroup(cgroup: Path) -> None:
    with triggers.syscalls("getpid", 4) as inside, triggers.syscalls("getpid", 6) as outside:
        (cgroup / "cgroup.procs").write_text(str(inside.pid))
        got = _count(common.Scope(cgroup=str(cgroup)), inside, outside)
    assert got == {inside.pid: 4}
    assert common.cgroup_id(cgroup.name) == cgroup.stat().st_ino  # relative to the cgroup2 mount


def test_scope_checks_before_loading(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    with pytest.raises(common.ToolError, match=f"-p {dead}: no such process"):
        common.Scope(pid=int(dead)).check()
    with pytest.raises(common.ToolError, match="not a cgroup v2 directory"):
        common.Scope(cgroup=str(tmp_path)).check()
    with pytest.raises(common.ToolError, match="no such cgroup"):
        common.Scope(cgroup="/sys/fs/cgroup/bpfkit-no-such-cgroup").check()
    with pytest.raises(common.ToolError, match="1 to 15 bytes"):
        common.Scope(comm="x" * 16).check()
    spec = bpfkit.open("tests/count")  # no bpfkit_filter.h in it
    with pytest.raises(bpfkit.BpfUsageError, match="cannot be scoped"):
        common.Scope(pid=os.getpid()).apply(spec)
    common.Scope().apply(spec)  # an empty scope needs nothing of the object


@pytest.mark.parametrize("text", ["-3", "0", "x", "1.5", str(1 << 32)])
def test_positive_int_refuses(text: str) -> None:
    p = common.parser("t", "")
    common.add_scope(p)
    with pytest.raises(SystemExit) as e:
        p.parse_args(["-p", text])
    assert e.value.code == 2


TOOL = r"""
import sys, time
from bpfkit.tools import common

def body(args):
    with common.stop_signals() as stop:
        print("READY", flush=True)
        common.wait(args.duration)
    print("SUMMARY", "signal" if stop.signaled else "duration", flush=True)

p = common.parser("fake", "a tool")
common.add_duration(p)
sys.exit(common.run_tool("fake", p, None, body))
"""


def _start_tool(tmp_path: Path, *args: str) -> subprocess.Popen:
    script = tmp_path / "tool.py"
    script.write_text(TOOL)
    # SIGINT ignored, as for `nohup` or a background job of a non-interactive shell
    proc = subprocess.Popen([sys.executable, str(script), *args], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READY"
    return proc


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signals_end_a_tool_with_its_summary_even_when_sigint_is_ignored(tmp_path: Path, sig: int) -> None:
    proc = _start_tool(tmp_path)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=10)
    assert out.strip() == "SUMMARY signal" and proc.returncode == 0


def test_duration_ends_a_tool(tmp_path: Path) -> None:
    t0 = time.monotonic()
    proc = _start_tool(tmp_path, "-d", "0.3")
    out, _ = proc.communicate(timeout=10)
    assert out.strip() == "SUMMARY duration" and proc.returncode == 0 and time.monotonic() - t0 < 5


def test_ticks_interval_and_count() -> None:
    t0 = time.monotonic()
    seen = list(common.ticks(0.05, 3))
    assert seen == [False, False, True] and 0.14 < time.monotonic() - t0 < 2
    assert list(common.ticks(None, duration=0.05)) == [True]


def test_run_tool_turns_errors_into_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    p = common.parser("fake", "")
    common.add_scope(p)

    def body(args: object) -> int:
        common.Scope.from_args(args)  # type: ignore[arg-type]
        return 0

    dead = 2 ** 22 + 12345  # above pid_max's default: never a live process
    assert common.run_tool("fake", p, ["-p", str(dead)], body) == 2
    assert capsys.readouterr().err.strip() == f"bpfkit fake: -p {dead}: no such process"


def test_table_and_json() -> None:
    t = common.Table([("PCOMM", -16), ("PID", 7), ("RET", 3)])
    assert t.header() == "PCOMM                PID RET"
    assert t.row([b"bash", 1234, 0]) == "bash                1234   0"
    rec = np.array([(7, b"bash\0\0junk", [1, 2])], dtype=[("pid", "u4"), ("comm", "S16"), ("v", "u8", (2,))])[0]
    assert json.loads(json.dumps(common.to_jsonable(rec))) == {"pid": 7, "comm": "bash", "v": [1, 2]}
