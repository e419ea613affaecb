"""exitsnoop, killsnoop, opensnoop, statsnoop and syncsnoop against a fixture that does a known
thing a known number of times: exact exit codes and killing signals, exact (sender, target,
signal, result) tuples, exact file names and errnos, exact calls; scoping; the commands' tables,
--json and their exit on SIGINT/SIGTERM."""
from __future__ import annotations

import errno
import os
import re
import signal
import time
from pathlib import Path

import pytest

from bpfkit.testing import proc_triggers
from bpfkit.tools import exitsnoop, killsnoop, opensnoop, statsnoop, syncsnoop

from _tool_cli import Tool, cgroup, run

pytestmark = pytest.mark.root


# -- exitsnoop -------------------------------------------------------------------------------------

def test_exitsnoop_exact_exit_codes() -> None:
    codes = [0, 3, 255, 1]
    with cgroup("exitsnoop") as cg:
        with proc_triggers.exits(codes) as t:
            (cg / "cgroup.procs").write_text(str(t.pid))
            with exitsnoop.stream(cgroup=str(cg)) as s:
                res = t.run()
                got = exitsnoop.decode(s.drain())
    children = res.values("child")
    # the children in order, then the fixture itself (exit 0), nothing else from the cgroup
    assert [(e["pid"], e["ppid"], e["exit_code"], e["signal"]) for e in got] == \
        [(c, t.pid, code, 0) for c, code in zip(children, codes)] + [(t.pid, got[-1]["ppid"], 0, 0)]
    assert [exitsnoop.describe(e) for e in got[:4]] == ["0", "code 3", "code 255", "code 1"]
    assert all(0 <= e["age"] < 30 for e in got)


def test_exitsnoop_killing_signals_and_failed_only() -> None:
    sigs = [signal.SIGKILL, signal.SIGTERM, signal.SIGUSR1]
    with proc_triggers.signals(sigs) as t, exitsnoop.stream(failed=True) as s:
        res = t.run()
        got = [e for e in exitsnoop.decode(s.drain()) if e["ppid"] == t.pid]
    assert [(e["pid"], e["signal"], e["exit_code"]) for e in got] == \
        [(c, int(sig), 0) for c, sig in zip(res.values("child"), sigs)]
    assert [exitsnoop.describe(e) for e in got] == ["signal 9 (KILL)", "signal 15 (TERM)", "signal 10 (USR1)"]
    with proc_triggers.exits([0, 0, 7]) as t, exitsnoop.stream(failed=True) as s:
        res = t.run()
        got = [e for e in exitsnoop.decode(s.drain()) if e["ppid"] == t.pid]
    assert [(e["pid"], e["exit_code"]) for e in got] == [(res.values("child")[2], 7)]  # -x: exit(0) left out


def test_exitsnoop_command_table_on_sigterm() -> None:
    with proc_triggers.exits([5]) as t, Tool(["exitsnoop", "--comm", "proc_target", "-t"]) as tool:
        assert tool._out.decode().split()[1:] == ["PCOMM", "PID", "PPID", "TID", "AGE(s)", "EXIT_CODE"]
        child = t.run().value("child")
        fin = tool.stop(signal.SIGTERM)
    assert fin.rc == 0, fin.stderr
    rows = {int(line.split()[2]): line for line in fin.lines[1:]}
    assert rows[child].endswith(" code 5") and rows[t.pid].endswith(" 0")
    assert "exits shown" in fin.stderr


# -- killsnoop -------------------------------------------------------------------------------------

def test_killsnoop_exact_tuples() -> None:
    with proc_triggers.kills() as t, killsnoop.stream(pid=t.pid) as s:
        res = t.run()
        got = killsnoop.decode(s.drain())
    child, gone, me = res.value("child"), res.value("gone"), t.pid
    assert [(e["pid"], e["tpid"], e["sig"], e["ret"], e["call"]) for e in got] == [
        (me, child, 0, 0, "kill"),
        (me, child, signal.SIGUSR1, 0, "kill"),
        (me, gone, signal.SIGTERM, -errno.ESRCH, "kill"),
        (me, me, 0, 0, "tgkill"),
        (me, child, signal.SIGKILL, 0, "kill"),
        (me, 1, 0, -errno.EPERM, "kill"),
    ]
    assert all(e["comm"] == t.comm for e in got)


def test_killsnoop_filters_by_target_signal_and_failure() -> None:
    with proc_triggers.kills() as t, killsnoop.stream(pid=t.pid, failed=True) as s:
        t.run()
        assert [(e["sig"], e["ret"]) for e in killsnoop.decode(s.drain())] == \
            [(signal.SIGTERM, -errno.ESRCH), (0, -errno.EPERM)]
    with proc_triggers.kills() as t, killsnoop.stream(pid=t.pid, signal=signal.SIGKILL) as s:
        child = t.run().value("child")
        assert [(e["tpid"], e["sig"]) for e in killsnoop.decode(s.drain())] == [(child, signal.SIGKILL)]
    with proc_triggers.kills() as t, killsnoop.stream(tpid=1) as s:
        t.run()
        assert [(e["pid"], e["ret"]) for e in killsnoop.decode(s.drain()) if e["pid"] == t.pid] == \
            [(t.pid, -errno.EPERM)]


def test_killsnoop_command_json() -> None:
    with proc_triggers.kills() as t, Tool(["killsnoop", "--json", "-x", "-p", str(t.pid)], ready_on_stderr=True) as tool:
        gone = t.run().value("gone")
        fin = tool.stop()
    assert fin.rc == 0
    assert [(e["tpid"], e["sig"], e["ret"]) for e in fin.json()] == [(gone, 15, -errno.ESRCH), (1, 0, -errno.EPERM)]


# -- opensnoop -------------------------------------------------------------------------------------

def test_opensnoop_exact_names_and_errnos(tmp_path: Path) -> None:
    f = tmp_path / "file with space"
    f.write_text("x")
    calls = [(str(f), os.O_RDONLY), (str(tmp_path / "missing"), os.O_RDONLY), (str(tmp_path), os.O_WRONLY),
             (str(tmp_path / "new"), os.O_WRONLY | os.O_CREAT)]
    with proc_triggers.opens(calls) as t, opensnoop.stream(pid=t.pid) as s:
        res = t.run()
        got = opensnoop.decode(s.drain())
    assert res.values("ret")[1:3] == [-errno.ENOENT, -errno.EISDIR]
    assert [(e["path"], e["fd"], e["err"], e["flags"]) for e in got] == [
        (str(f), res.values("ret")[0], 0, os.O_RDONLY),
        (str(tmp_path / "missing"), -1, errno.ENOENT, os.O_RDONLY),
        (str(tmp_path), -1, errno.EISDIR, os.O_WRONLY),
        (str(tmp_path / "new"), res.values("ret")[3], 0, os.O_WRONLY | os.O_CREAT),
    ]
    assert all((e["pid"], e["tid"], e["comm"]) == (t.pid, t.pid, t.comm) for e in got)


def test_opensnoop_failed_and_flag_filters(tmp_path: Path) -> None:
    calls = [(str(tmp_path / "a"), os.O_WRONLY | os.O_CREAT), ("/nonexistent-bpfkit", os.O_RDONLY),
             (str(tmp_path / "b"), os.O_RDWR | os.O_CREAT)]
    with proc_triggers.opens(calls) as t, opensnoop.stream(pid=t.pid, failed=True) as s:
        t.run()
        assert [(e["path"], e["err"]) for e in opensnoop.decode(s.drain())] == [("/nonexistent-bpfkit", errno.ENOENT)]
    with proc_triggers.opens(calls) as t, opensnoop.stream(pid=t.pid, flags=opensnoop.open_flags(["O_RDWR"])) as s:
        t.run()
        assert [e["path"] for e in opensnoop.decode(s.drain())] == [str(tmp_path / "b")]


def test_opensnoop_command_extended_and_name_filter(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("x")
    with proc_triggers.opens([(str(target), os.O_RDONLY)]) as t, \
            Tool(["opensnoop", "-e", "-n", "proc_tar", "-p", str(t.pid)]) as tool:
        assert tool._out.decode().split() == ["PID", "COMM", "FD", "ERR", "FLAGS", "PATH"]
        t.run()
        fin = tool.stop()
    assert fin.rc == 0
    assert [line.split() for line in fin.lines[1:]] == [[str(t.pid), t.comm, "3", "0", "00000000", str(target)]]
    bad = run(["opensnoop", "-f", "O_NOPE"])
    assert bad.rc == 2 and bad.stderr.strip() == "bpfkit opensnoop: Bad flag: O_NOPE"


# -- statsnoop -------------------------------------------------------------------------------------

def test_statsnoop_exact_calls_and_errnos(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing")
    with proc_triggers.stats([str(tmp_path), missing]) as t, statsnoop.stream(pid=t.pid) as s:
        t.run()
        got = statsnoop.decode(s.drain())
    calls = ["newfstatat", "newfstatat", "statx", "statfs"]
    assert [(e["path"], e["call"], e["ret"]) for e in got] == \
        [(str(tmp_path), c, 0) for c in calls] + [(missing, c, -errno.ENOENT) for c in calls]
    with proc_triggers.stats([str(tmp_path), missing]) as t, Tool(["statsnoop", "-x", "-p", str(t.pid)]) as tool:
        t.run()
        fin = tool.stop()
    assert [line.split() for line in fin.lines[1:]] == [[str(t.pid), t.comm, "-1", "2", missing]] * 4


# -- syncsnoop -------------------------------------------------------------------------------------

def test_syncsnoop_exact_calls() -> None:
    with proc_triggers.syncs(3) as t, syncsnoop.stream(pid=t.pid) as s:
        t.run()
        got = syncsnoop.decode(s.drain())
    assert [(e["pid"], e["call"]) for e in got] == [(t.pid, c) for c in ["sync"] * 3 + ["fsync", "fdatasync"]]
    with proc_triggers.syncs(2) as t, Tool(["syncsnoop", "--comm", t.comm]) as tool:
        t.run()
        fin = tool.stop(signal.SIGTERM)
    assert fin.rc == 0
    assert [line.split()[1:] for line in fin.lines[1:]] == \
        [[str(t.pid), t.comm, c] for c in ["sync()", "sync()", "fsync()", "fdatasync()"]]


def test_opensnoop_counts_and_prints_what_a_full_ring_buffer_drops(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("x")
    n = 3000
    # one page of ring buffer holds a dozen records: a burst of 3000 opens overflows it
    with proc_triggers.opens([(str(target), os.O_RDONLY)] * n) as t, \
            Tool(["opensnoop", "-b", "1", "-p", str(t.pid)]) as tool:
        t.run()
        time.sleep(0.5)
        fin = tool.stop()
    assert fin.rc == 0, fin.stderr
    shown = len(fin.lines) - 1
    m = re.search(r"opensnoop: (\d+) events lost \((\d+) with the ring buffer full, (\d+) before it\)", fin.stderr)
    assert m, fin.stderr
    lost, full, before = (int(x) for x in m.groups())
    assert full > 0 and before == 0 and lost == full
    assert shown + lost == n  # every open is either printed or counted as lost
    assert f"opensnoop: {shown} opens shown" in fin.stderr


def test_opensnoop_names_end_at_their_nul_when_the_ring_reuses_its_memory(tmp_path: Path) -> None:
    """Short names recorded over ring memory that held long ones: a string read stops at its NUL and
    leaves the old bytes after it, which must not show (they did, once the 4 MiB ring wrapped)."""
    long_name, short = str(tmp_path / ("x" * 150)), str(tmp_path / "s")
    assert len(long_name) < 255
    n = 20  # two pages hold ~24 records: the second burst wraps over the first one's names
    got, lines = [], []
    with cgroup("opensnoop") as cg:
        with opensnoop.stream(cgroup=str(cg), buffer_pages=2) as s, \
                Tool(["opensnoop", "-b", "2", "--cgroup", str(cg)]) as tool:
            for path in (long_name, short):
                with proc_triggers.opens([(path, os.O_RDONLY)] * n) as t:
                    (cg / "cgroup.procs").write_text(str(t.pid))
                    t.run()
                got += opensnoop.decode(s.drain())
                time.sleep(0.3)  # the command's reader takes its burst before the next
            fin = tool.stop()
            dropped = s.dropped
    assert dropped == 0 and fin.rc == 0, fin.stderr
    assert [e["path"] for e in got] == [long_name] * n + [short] * n
    assert [line.split(None, 4)[-1] for line in fin.lines[1:]] == [long_name] * n + [short] * n


def test_opensnoop_and_statsnoop_flag_a_path_longer_than_they_keep(tmp_path: Path) -> None:
    base = str(tmp_path) + "/"
    exact, longer = base + "y" * (255 - len(base)), base + "z" * (300 - len(base))  # 255 bytes fit, 300 do not
    with proc_triggers.opens([(exact, os.O_RDONLY), (longer, os.O_RDONLY)]) as t, opensnoop.stream(pid=t.pid) as s:
        t.run()
        got = opensnoop.decode(s.drain())
    assert [(e["path"], e["truncated"], e["err"]) for e in got] == [(exact, False, errno.ENOENT),
                                                                    (longer[:255], True, errno.ENOENT)]
    with proc_triggers.stats([exact, longer]) as t, statsnoop.stream(pid=t.pid) as s:
        t.run()
        got = statsnoop.decode(s.drain())
    assert {(e["path"], e["truncated"]) for e in got} == {(exact, False), (longer[:255], True)}
    with proc_triggers.opens([(longer, os.O_RDONLY)]) as t, Tool(["opensnoop", "-p", str(t.pid)]) as tool:
        t.run()
        fin = tool.stop()
    assert fin.lines[1].endswith(" " + longer[:255] + "...")
