"""bpfkit strace: -c counts equal real strace's for the same command, exactly; lines look like
strace's (strings, flags, errno names, -f prefixes, exits); -p attaches to a running process."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from bpfkit.testing import fixtures
from bpfkit.tools.strace import format_summary, strace_counts
from bpfkit.tools.strace.decode import format_return, quote
from bpfkit.tools.strace.syscalls import name, number, resolve_names

BPFKIT = str(Path(sys.executable).with_name("bpfkit"))
ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s+(\S+)$")


def _table(text: str) -> dict[str, tuple[int, int]]:
    rows = {}
    for line in text.splitlines():
        m = ROW.match(line)
        if m and m.group(3) != "total":
            rows[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    return rows


def test_quoting_returns_and_names() -> None:
    assert quote(b'a"b\\c\n\t\0\x7f\x011', truncated=True) == '"a\\"b\\\\c\\n\\t\\0\\177\\0011"...'
    assert format_return("openat", -2) == "-1 ENOENT (No such file or directory)"
    assert format_return("mmap", 0x7F0000001000) == "0x7f0000001000"
    assert format_return("read", 5) == "5"
    assert (number("openat"), name(257), name(9999)) == (257, "openat", "syscall_0x270f")
    assert resolve_names("open,openat") == {"open", "openat"}
    assert "read" not in resolve_names("!read") and "write" in resolve_names("!read")
    assert "mmap" in resolve_names("%memory")


@pytest.mark.root
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)")
def test_summary_counts_equal_strace_exactly() -> None:
    cmd = ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=3000"]
    real = subprocess.run(["strace", "-c", "-o", "/dev/stdout", *cmd], capture_output=True, text=True)
    ours = subprocess.run([BPFKIT, "strace", "-c", *cmd], capture_output=True, text=True)
    assert real.returncode == 0 and ours.returncode == 0, ours.stderr
    want, got = _table(real.stdout), _table(ours.stderr)
    assert got == want
    assert got["read"] == (3003, 0) and got["write"] == (3003, 0)
    assert ours.stderr.splitlines()[-1].split()[3:] == [str(sum(c for c, _ in want.values())),
                                                        str(sum(e for _, e in want.values())), "total"]


@pytest.mark.root
def test_counts_from_python_exact_for_a_fixture() -> None:
    exe = str(fixtures.build_fixture("oneliner_target"))
    # the fixture's stdin is pytest's (EOF): it does not wait
    rows, status = strace_counts([exe, "11", "7", "/nonexistent-bpfkit"])
    by = {r.name: r for r in rows}
    assert status == 0
    assert by["getpid"].calls == 11 + 1 and by["getppid"].calls == 7  # + the getpid() of its "ready" line
    assert by["execve"].calls == 1
    opens = [r for r in rows if r.name == "openat"][0]
    assert opens.errors >= 11  # the 11 opens of the missing path fail (+ the loader's misses)
    text = format_summary(rows)
    assert text.splitlines()[0] == "% time     seconds  usecs/call     calls    errors syscall"
    assert text.splitlines()[-1].endswith(" total")


@pytest.mark.root
def test_lines_look_like_strace() -> None:
    with tempfile.TemporaryDirectory(prefix="bpfkit-strace-") as d:
        f = Path(d) / "data.txt"
        f.write_bytes(b"0123456789abcdefghij")
        missing = f"{d}/missing"
        r = subprocess.run([BPFKIT, "strace", "-s", "8", "-T", "-e", "trace=openat,read,write,close,exit_group",
                            "cat", str(f), missing], capture_output=True, text=True)
    assert r.returncode == 1  # cat's status: the missing file
    lines = r.stderr.splitlines()
    i = next(k for k, ln in enumerate(lines) if str(f) in ln)
    strip = [re.sub(r" <\d+\.\d{6}>$", "", ln) for ln in lines[i:i + 6]]
    def col40(call: str, ret: str) -> str:  # strace starts "= " at column 40
        return call.ljust(39) + " = " + ret

    assert strip == [col40(f'openat(AT_FDCWD, "{f}", O_RDONLY)', "3"),
                     col40('read(3, "01234567"..., 131072)', "20"),
                     col40('write(1, "01234567"..., 20)', "20"),
                     col40('read(3, "", 131072)', "0"),
                     col40("close(3)", "0"),
                     col40(f'openat(AT_FDCWD, "{missing}", O_RDONLY)', "-1 ENOENT (No such file or directory)")]
    assert all(re.search(r" <\d+\.\d{6}>$", ln) for ln in lines[i:i + 6])
    assert lines[-2:] == ["exit_group(1)                           = ?", "+++ exited with 1 +++"]


@pytest.mark.root
def test_follow_forks_prefixes_children() -> None:
    r = subprocess.run([BPFKIT, "strace", "-f", "-e", "trace=execve,exit_group", "sh", "-c", "true; /bin/true; exit 3"],
                       capture_output=True, text=True)
    assert r.returncode == 3
    lines = r.stderr.splitlines()
    assert re.fullmatch(r'execve\("/usr/bin/sh", 0x[0-9a-f]+, 0x[0-9a-f]+\) = 0', lines[0])
    m = re.fullmatch(r'\[pid +(\d+)\] execve\("/bin/true", 0x[0-9a-f]+, 0x[0-9a-f]+\) = 0', lines[2])
    assert m, lines
    child = m.group(1)
    assert lines[1] == f"bpfkit strace: Process {child} attached"  # as strace says it, at the fork
    assert lines[3:] == [f"[pid {child:>5}] exit_group(0)               = ?", f"[pid {child:>5}] +++ exited with 0 +++",
                         "exit_group(3)                           = ?", "+++ exited with 3 +++"]


@pytest.mark.root
def test_attach_to_a_running_process() -> None:
    exe = str(fixtures.build_fixture("oneliner_target"))
    with fixtures.spawn(exe, "5", "0") as proc:
        cli = subprocess.Popen([BPFKIT, "strace", "-p", str(proc.pid), "-e", "trace=getpid"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        try:
            assert cli.stderr is not None
            assert cli.stderr.readline() == f"bpfkit strace: Process {proc.pid} attached\n"
            proc.release()
            proc.finish()
            _, err = cli.communicate(timeout=30)
        finally:
            if cli.poll() is None:
                cli.kill()
                cli.wait()
    assert err.splitlines() == [f"getpid()                                = {proc.pid}"] * 5 + ["+++ exited with 0 +++"]


def _normalized(text: str) -> list[str]:
    """strace lines with pids and user addresses (ASLR) blanked; without signal lines (bpfkit
    strace does not show signals yet)."""
    text = re.sub(r"\[pid +\d+\]", "[pid N]", text)
    text = re.sub(r"^(bpfkit )?strace: Process \d+ attached$", "Process N attached", text, flags=re.M)
    return [re.sub(r"0x[0-9a-f]{8,}", "0xADDR", ln) for ln in text.splitlines() if not ln.startswith("--- SIG")]


@pytest.mark.root
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (apt-get install strace)")
def test_structs_and_arrays_as_strace_shows_them() -> None:
    # struct stat, a timespec read before the call, pipe2's int[2] filled by it: line for line
    # what strace prints for the same commands (-f: the children of sh, attached and prefixed)
    with tempfile.TemporaryDirectory(prefix="bpfkit-strace-") as d:
        f = Path(d) / "data.txt"
        f.write_bytes(b"0123456789abcdefghij")
        f.chmod(0o640)
        runs = [(["-f", "-e", "trace=newfstatat,clock_nanosleep"], ["sh", "-c", f"cat {f} >/dev/null; sleep 0.01"]),
                (["-e", "trace=pipe2"], [sys.executable, "-S", "-c", "import os; os.pipe(); os.pipe2(0)"])]
        got = []
        for opts, cmd in runs:
            real = subprocess.run(["strace", *opts, *cmd], capture_output=True, text=True)
            ours = subprocess.run([BPFKIT, "strace", *opts, *cmd], capture_output=True, text=True)
            assert real.returncode == ours.returncode == 0, ours.stderr
            assert _normalized(ours.stderr) == _normalized(real.stderr)
            got.append(ours.stderr)
    assert '{st_mode=S_IFREG|0640, st_size=20, ...}, AT_EMPTY_PATH) = 0' in got[0]
    assert "clock_nanosleep(CLOCK_REALTIME, 0, {tv_sec=0, tv_nsec=10000000}, " in got[0]
    assert len(re.findall(r"^bpfkit strace: Process \d+ attached$", got[0], flags=re.M)) == 2  # cat, sleep
    pipes = [ln for ln in got[1].splitlines() if ln.startswith("pipe2(")]
    assert [re.sub(r" +=", " =", ln) for ln in pipes] == ["pipe2([3, 4], O_CLOEXEC) = 0", "pipe2([5, 6], 0) = 0"]
