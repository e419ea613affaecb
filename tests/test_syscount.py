"""bpfkit syscount, checked against children making a known number of known system calls, and
its command line behaving like bcc's (options checked, Ctrl-C and SIGTERM print the summary, also
with SIGINT ignored as under nohup)."""
from __future__ import annotations

import errno
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bpfkit.testing import fixtures
from bpfkit.testing.triggers import syscall_number
from bpfkit.tools import syscount
from bpfkit.tools.common import Scope

pytestmark = pytest.mark.root
BPFKIT = str(Path(sys.executable).parent / "bpfkit")


def _count(args: list[str], **kw: object) -> syscount.Summary:
    """Run syscall_target ARGS, counting its syscalls from its release to its exit."""
    with fixtures.spawn(fixtures.syscall_target(), *args) as proc:
        with syscount.Syscount(Scope(pid=proc.pid), **kw) as sc:  # type: ignore[arg-type]
            proc.finish()
            return sc.read()


def test_counts_each_syscall_by_name() -> None:
    n = 300
    s = _count(["read", str(n), "3000"])
    # the child's poll() for its go returns, it reads n times, says "done" with writev, and exits
    # (exit_group never returns, so it is not counted: syscalls count as they return, as in bcc)
    assert s.as_dict() == {"read": n, "poll": 1, "writev": 1}
    assert s.rows["key"].tolist() == [syscall_number(n) for n in ("read", "poll", "writev")]  # ties by name
    assert s.dropped == 0
    text = syscount.format_summary(s, top=1)
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\]\nSYSCALL                   COUNT\nread                        300\n", text)


def test_failures_and_one_errno() -> None:
    close = str(syscall_number("close"))
    # close(-1) fails with EBADF seven times; poll and writev succeed
    assert _count(["nr", "7", close, "-1"], failures=True).as_dict() == {"close": 7}
    assert _count(["nr", "7", close, "-1"], errno=errno.EBADF).as_dict() == {"close": 7}
    assert _count(["nr", "7", close, "-1"], errno=errno.ENOENT).as_dict() == {}
    assert _count(["nr", "7", close, "-1"]).as_dict() == {"close": 7, "poll": 1, "writev": 1}


def test_latency_is_the_time_spent_in_the_syscall() -> None:
    # five poll(NULL, 0, 20): each sleeps 20 ms in the kernel
    # (the fixture then waits with ppoll, entered before counting began: not timed, not counted)
    s = _count(["nr", "5", str(syscall_number("poll")), "0", "0", "20"], latency=True)
    assert s.as_dict() == {"poll": 5, "writev": 1}
    poll = s.rows[0]  # sorted by time
    assert poll["name"] == "poll" and 100e6 <= int(poll["total_ns"]) < 1e9
    text = syscount.format_summary(s, milliseconds=True).splitlines()
    assert text[1] == "SYSCALL                   COUNT        TIME (ms)"
    assert re.fullmatch(r"poll +5 +1\d\d\.\d{6}", text[2])


def test_by_process_names_it_by_what_it_runs_after_exec() -> None:
    # the shell makes syscalls as "sh" (its start, the read of its go line), then becomes dd
    sh = subprocess.Popen(["sh", "-c", "read go; exec dd if=/dev/zero of=/dev/null bs=512 count=100"],
                          stdin=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        time.sleep(0.1)  # let it reach its read
        assert sh.stdin is not None
        with syscount.Syscount(Scope(pid=sh.pid), by_process=True) as sc:
            sh.stdin.write("go\n")
            sh.stdin.close()
            assert sh.wait(timeout=10) == 0
            s = sc.read()
    finally:
        sh.kill()
        sh.wait()
    [row] = s.rows
    assert (int(row["key"]), row["name"]) == (sh.pid, "dd")
    assert int(row["count"]) >= 200  # 100 reads and 100 writes, and dd's start
    assert syscount.format_summary(s).splitlines()[2].startswith(f"{sh.pid:<6d} dd ")


def test_count_runs_the_workload_once_counting_is_on() -> None:
    with fixtures.spawn(fixtures.syscall_target(), "getpid", "50") as proc:
        s = syscount.count(1.0, Scope(pid=proc.pid), on_attached=proc.release)
        assert proc.finish().strip() == "done 50"
    assert s.as_dict() == {"getpid": 50, "poll": 1, "writev": 1}


# -- the command line ---------------------------------------------------------------------

def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BPFKIT, "syscount", *args], capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, message", [
    (["-d", "-1"], "argument -d/--duration: -1 must be a positive number of seconds"),
    (["-i", "0"], "argument -i/--interval: 0 must be a positive number of seconds"),
    (["-T", "-3"], "argument -T/--top: -3 must be greater than 0"),
    (["-T", "x"], "argument -T/--top: 'x' is not an integer"),
    (["-e", "EFOO"], "argument -e/--errno: unknown errno 'EFOO' (a name like ENOENT, or a number)"),
    (["-p", "0"], "argument -p/--pid: 0 must be greater than 0"),
])
def test_bad_options_are_usage_errors(args: list[str], message: str) -> None:
    r = _cli(*args)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines()[-1] == f"bpfkit syscount: error: {message}"


def test_a_missing_process_is_named_not_counted_as_zero() -> None:
    pid = 1 << 22  # above any pid_max: no such process
    r = _cli("-p", str(pid), "-d", "1")
    assert (r.returncode, r.stdout, r.stderr) == (2, "", f"bpfkit syscount: -p {pid}: no such process\n")
    r = _cli("-m", "-d", "1")
    assert r.returncode == 2 and r.stderr == "bpfkit syscount: -m shows times in milliseconds: it needs -L\n"


def test_list_and_json() -> None:
    r = _cli("-l")
    assert r.returncode == 0 and {"read", "openat", "execve"} <= set(r.stdout.split())
    with fixtures.spawn(fixtures.syscall_target(), "getpid", "20") as proc:
        cli = subprocess.Popen([BPFKIT, "syscount", "--json", "-p", str(proc.pid), "-d", "2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert cli.stderr is not None  # the banner goes to stderr with --json, once attached
        assert cli.stderr.readline() == "Tracing syscalls, printing top 10... Ctrl+C to quit.\n"
        proc.finish()
        out, err = cli.communicate(timeout=30)
    assert cli.returncode == 0, err
    [doc] = [json.loads(line) for line in out.splitlines()]
    assert doc["by"] == "syscall" and doc["dropped"] == 0
    assert [(r["syscall"], r["count"]) for r in doc["rows"]] == [("getpid", 20), ("poll", 1), ("writev", 1)]


def test_interval_output_then_the_end_of_the_duration() -> None:
    r = _cli("-i", "0.5", "-d", "1.6", "-T", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "Tracing syscalls, printing top 3... Ctrl+C to quit."
    assert lines[-1] == "Detaching..."
    stamps = [ln for ln in lines if re.fullmatch(r"\[\d\d:\d\d:\d\d\]", ln)]
    assert len(stamps) == 4  # at 0.5, 1.0, 1.5 s and at the end of the 1.6 s


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "SIGINT under nohup"])
def test_runs_until_stopped_then_prints_the_summary(how: str) -> None:
    with fixtures.spawn(fixtures.syscall_target(), "getpid", "30") as proc:
        # nohup and a background job of a non-interactive shell start it with SIGINT ignored
        ignore = (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if "nohup" in how else None
        cli = subprocess.Popen([BPFKIT, "syscount", "-p", str(proc.pid)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=ignore)
        assert cli.stdout is not None
        assert cli.stdout.readline() == "Tracing syscalls, printing top 10... Ctrl+C to quit.\n"
        proc.finish()
        time.sleep(0.5)
        assert cli.poll() is None  # no -d: it runs until stopped
        cli.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGINT)
        out, err = cli.communicate(timeout=30)
    assert cli.returncode == 0, err
    lines = out.splitlines()
    assert lines[1:] == ["SYSCALL                   COUNT", f"{'getpid':<22} {30:>8}", f"{'poll':<22} {1:>8}",
                         f"{'writev':<22} {1:>8}", "", "Detaching..."]


def test_syscall_names_agree_with_the_c_library() -> None:
    from bpfkit import _sys as sc
    from bpfkit.testing.triggers import syscall_numbers

    numbers = syscall_numbers()  # gcc's <sys/syscall.h>: an independent reading of the same table
    assert len(numbers) > 300
    assert {name: sc.syscall_name(nr) for name, nr in numbers.items()} == {name: name for name in numbers}
    assert sc.syscall_name(100_000) == "[unknown: 100000]"
