"""execsnoop against a fixture that execs a known number of times with known arguments: exact
counts, exact argv (spaces, an over-long argument, more than --max-args), failed execs with their
errno, BPF-side scoping (parent pid, uid, cgroup), and the command's table, --json and signals."""
from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest

from bpfkit.testing import proc_triggers
from bpfkit.tools import execsnoop

from _tool_cli import Tool, cgroup, run

pytestmark = pytest.mark.root

TRUE = "/bin/true"


def _events(s: execsnoop.EventStream) -> list[dict]:
    return execsnoop.decode(s.drain(), s.clock)


def test_exact_execs_with_exact_arguments() -> None:
    argv = ["true", "with space", "", "tab\there", "x" * 300, "last"]
    with proc_triggers.execs(4, TRUE, argv) as t, execsnoop.stream(ppid=t.pid) as s:
        assert t.run().value("ok") == 4
        got = _events(s)
    assert len(got) == 4
    for ev in got:
        assert (ev["argv"], ev["path"], ev["args"]) == (argv, TRUE, [TRUE, *argv[1:]])
        assert (ev["ret"], ev["pcomm"], ev["ppid"], ev["uid"], ev["truncated"]) == (0, "true", t.pid, 0, False)
    assert len({ev["pid"] for ev in got}) == 4  # four children
    assert s.dropped == 0 and s.lost == 0


def test_more_arguments_than_max_args_are_cut_and_flagged() -> None:
    argv = ["true", *[f"a{i}" for i in range(1, 30)]]  # 30 fields
    with proc_triggers.execs(1, TRUE, argv) as t, execsnoop.stream(ppid=t.pid) as s:
        t.run()
        batch = s.drain()
    (ev,) = execsnoop.decode(batch, max_args=20)
    assert ev["args"] == [TRUE, *argv[1:20]] and ev["truncated"]  # the path and argv[1..19]: 20 fields
    assert ev["argv"] == argv  # all of it was traced
    (ev,) = execsnoop.decode(batch, max_args=30)
    assert ev["args"] == [TRUE, *argv[1:]] and not ev["truncated"]  # exactly 30: nothing cut


def test_an_argument_area_larger_than_the_buffer_is_cut_and_flagged() -> None:
    argv = ["true", *["y" * 1000 for _ in range(10)]]  # 10 kB of arguments, 8 kB kept
    with proc_triggers.execs(1, TRUE, argv) as t, execsnoop.stream(ppid=t.pid) as s:
        t.run()
        (ev,) = execsnoop.decode(s.drain(), max_args=None)
    assert ev["truncated"]
    assert ev["argv"][:9] == argv[:9] and ev["argv"][9] == "y" * (execsnoop.ARGS_BUF - 5 - 8 * 1001)


def test_failed_execs_with_their_errno(tmp_path: Path) -> None:
    plain = tmp_path / "not-executable"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    missing = str(tmp_path / "missing")
    with execsnoop.stream(failed=True) as s:
        with proc_triggers.execs(3, missing, ["missing", "arg"]) as t1:
            assert t1.run().value("failed") == 3
        with proc_triggers.execs(2, str(plain), ["plain"]) as t2:
            assert t2.run().value("errno") == errno.EACCES
        got = _events(s)
    mine = [(ev["ppid"], ev["ret"], ev["args"]) for ev in got if ev["ppid"] in (t1.pid, t2.pid)]
    assert mine == [(t1.pid, -errno.ENOENT, [missing, "arg"])] * 3 + [(t2.pid, -errno.EACCES, [str(plain)])] * 2
    # without -x failures are not reported
    with proc_triggers.execs(2, missing, ["missing"]) as t3, execsnoop.stream(ppid=t3.pid) as s:
        t3.run()
        assert _events(s) == []


def test_scoped_by_uid_and_cgroup() -> None:
    with proc_triggers.execs(2, TRUE, ["true"]) as t, execsnoop.stream(ppid=t.pid, uid=65534) as s:
        t.run()
        assert _events(s) == []
    with cgroup("execsnoop") as cg:
        with proc_triggers.execs(3, TRUE, ["true", "in"]) as inside, \
                proc_triggers.execs(2, TRUE, ["true", "out"]) as outside:
            (cg / "cgroup.procs").write_text(str(inside.pid))
            with execsnoop.stream(cgroup=str(cg)) as s:
                inside.run()
                outside.run()
                got = _events(s)
    assert [(ev["ppid"], ev["args"]) for ev in got] == [(inside.pid, [TRUE, "in"])] * 3


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_command_prints_bcc_columns_until_signalled(sig: int) -> None:
    with proc_triggers.execs(2, TRUE, ["true", "hello world"]) as t, Tool(["execsnoop", "-x", "-P", str(t.pid)]) as tool:
        assert tool._out.decode().split() == ["PCOMM", "PID", "PPID", "RET", "ARGS"]
        t.run()
        fin = tool.stop(sig)
    assert fin.rc == 0, fin.stderr
    rows = [line.split(None, 4) for line in fin.lines[1:]]
    assert [(r[0], r[2], r[3], r[4]) for r in rows] == [("true", str(t.pid), "0", "/bin/true hello world")] * 2
    assert "2 execs shown" in fin.stderr


def test_command_json_lines_and_truncation_marker() -> None:
    argv = ["true", *[f"a{i}" for i in range(1, 6)]]
    with proc_triggers.execs(1, TRUE, argv) as t, \
            Tool(["execsnoop", "--json", "--max-args", "3", "-P", str(t.pid)], ready_on_stderr=True) as tool:
        t.run()
        fin = tool.stop()
    (ev,) = fin.json()
    assert ev["args"] == [TRUE, "a1", "a2"] and ev["truncated"] is True and ev["ppid"] == t.pid
    with proc_triggers.execs(1, TRUE, argv) as t, Tool(["execsnoop", "-q", "--max-args", "3", "-P", str(t.pid)]) as tool:
        t.run()
        fin = tool.stop()
    assert fin.lines[1].endswith('"/bin/true" "a1" "a2" "..."')
    bad = run(["execsnoop", "--max-args", "0"])
    assert bad.rc == 2 and "must be greater than 0" in bad.stderr


def test_bad_options_are_one_line_errors() -> None:
    fin = run(["execsnoop", "-p", "999999999"])
    assert fin.rc == 2 and "no such process" in fin.stderr
