"""The file tools. mountsnoop runs on this kernel (syscall tracepoints): a child in a mount
namespace of its own makes a known sequence of mount(2)/umount2(2) calls, one failing, and the
rows match them exactly. vfsstat, filelife, fileslower, filetop and cachestat need kprobes: here
they fail naming kprobes; in the guest kernels (``guest``-marked) they count a fixture exactly."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

from _cli import ToolRun
from bpfkit import FeatureNotSupported, cli, features
from bpfkit.testing import fixtures
from bpfkit.tools import cachestat, filelife, fileslower, filetop, mountsnoop, vfsstat

pytestmark = pytest.mark.root

# A child: its own mount namespace (private, so nothing it mounts shows outside), then a tmpfs
# mounted on a directory of the test's, a mount on a missing directory (ENOENT), a lazy umount.
MOUNTER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x20000) != 0:                                  # CLONE_NEWNS
    sys.exit("unshare: " + os.strerror(ctypes.get_errno()))
sys.stdin.readline()                                            # traced from here
assert libc.mount(None, b"/", None, (1 << 14) | (1 << 18), None) == 0         # MS_REC|MS_PRIVATE
target = sys.argv[1].encode()
assert libc.mount(b"bpfkit-src", target, b"tmpfs", 2 | 4, b"size=1m,mode=700") == 0   # MS_NOSUID|MS_NODEV
assert libc.mount(b"none", target + b"/missing", b"tmpfs", 0, None) == -1
assert libc.umount2(target, 2) == 0                             # MNT_DETACH
"""


def _mounter(target: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", MOUNTER, target], stdin=subprocess.PIPE, text=True)


def test_mountsnoop_exact_calls_of_a_process() -> None:
    with tempfile.TemporaryDirectory(prefix="bpfkit-mnt-") as target:
        p = _mounter(target)
        with mountsnoop.stream(pid=p.pid) as s:
            p.communicate("\n", timeout=30)
            time.sleep(0.1)
            rows = mountsnoop.decode(s.drain())
    assert p.returncode == 0
    assert [r["call"] for r in rows] == [
        'mount("", "/", "", MS_REC|MS_PRIVATE, "") = 0',
        f'mount("bpfkit-src", "{target}", "tmpfs", MS_NOSUID|MS_NODEV, "size=1m,mode=700") = 0',
        f'mount("none", "{target}/missing", "tmpfs", 0, "") = -ENOENT',
        f'umount("{target}", MNT_DETACH) = 0',
    ]
    own_ns = os.stat(f"/proc/{os.getpid()}/ns/mnt").st_ino
    assert {(r["pid"], r["tid"]) for r in rows} == {(p.pid, p.pid)}
    assert len({r["mnt_ns"] for r in rows}) == 1 and rows[0]["mnt_ns"] != own_ns   # the child's own namespace


def test_mountsnoop_cli_text_and_json() -> None:
    with tempfile.TemporaryDirectory(prefix="bpfkit-mnt-") as target:
        for fmt in ("text", "json"):
            p = _mounter(target)
            with ToolRun("mountsnoop", "-p", str(p.pid), *(["--json"] if fmt == "json" else [])) as run:
                p.communicate("\n", timeout=30)
                time.sleep(0.3)
                rc, out, err = run.stop(signal.SIGINT)
            assert rc == 0, err
            lines = out.splitlines()
            if fmt == "json":
                calls = [json.loads(line)["call"] for line in lines]
            else:
                assert lines[0].split() == ["COMM", "PID", "TID", "MNT_NS", "CALL"]
                calls = [line.split(None, 4)[4] for line in lines[1:]]
                assert all(line.split()[1] == str(p.pid) for line in lines[1:])
            assert calls[1] == f'mount("bpfkit-src", "{target}", "tmpfs", MS_NOSUID|MS_NODEV, "size=1m,mode=700") = 0'
            assert len(calls) == 4 and calls[3] == f'umount("{target}", MNT_DETACH) = 0'


def test_mount_flag_names() -> None:
    assert mountsnoop.mount_flags(0xC0ED0000 | 1) == "MS_MGC_VAL|MS_RDONLY"
    assert mountsnoop.mount_flags(4096 | 16384) == "MS_BIND|MS_REC"
    assert mountsnoop.mount_flags(1 << 30) == hex(1 << 30)
    assert mountsnoop.umount_flags(1 | 8) == "MNT_FORCE|UMOUNT_NOFOLLOW"


# -- the kprobe file tools ------------------------------------------------------------------------

KPROBES = features.check("kprobes")
KPROBE_TOOLS = {"vfsstat": lambda: vfsstat.trace(), "filetop": lambda: filetop.trace(), "cachestat": lambda: cachestat.trace(),
                "fileslower": lambda: fileslower.stream(), "filelife": lambda: filelife.stream()}


@pytest.mark.skipif(KPROBES[0], reason="this kernel has kprobes: the file tools are tested for real")
@pytest.mark.parametrize("tool", sorted(KPROBE_TOOLS))
def test_file_tools_name_the_missing_kprobes(tool: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FeatureNotSupported, match=f"^{tool} .*needs kprobes: ") as exc:
        KPROBE_TOOLS[tool]()
    assert exc.value.feature == "kprobes"
    assert cli.main([tool]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"bpfkit {tool}: {tool} (") and "needs kprobes" in err and "CONFIG_KPROBES" in err


N, SIZE = 9, 3000


@pytest.mark.guest
@pytest.mark.skipif(not KPROBES[0], reason=KPROBES[1])
def test_vfsstat_counts_a_process_exactly() -> None:
    with fixtures.spawn(fixtures.syscall_target(), "read", str(N), str(SIZE)) as p:
        with vfsstat.trace(pid=p.pid) as t:
            p.finish()
            reads = t.read()
    with fixtures.spawn(fixtures.syscall_target(), "write", str(N), str(SIZE)) as p:
        with vfsstat.trace(pid=p.pid) as t:
            p.finish()
            writes = t.read()
    assert reads == {"read": N, "write": 0, "fsync": 0, "open": 0, "create": 0}
    assert writes == {"read": 0, "write": N, "fsync": 0, "open": 0, "create": 0}


@pytest.mark.guest
@pytest.mark.skipif(not KPROBES[0], reason=KPROBES[1])
def test_filetop_reads_and_bytes_per_file_exactly() -> None:
    with fixtures.spawn(fixtures.syscall_target(), "read", str(N), str(SIZE)) as p:
        with filetop.trace(pid=p.pid, all_files=True) as t, filetop.trace(pid=p.pid) as regular:
            p.finish()
            rows = t.read()
            assert regular.read() == []             # /dev/zero is not a regular file
    assert [(r["tid"], r["file"], r["type"], r["reads"], r["rbytes"], r["writes"]) for r in rows] == [
        (p.pid, "zero", "O", N, N * SIZE, 0)]


@pytest.mark.guest
@pytest.mark.skipif(not KPROBES[0], reason=KPROBES[1])
def test_fileslower_reports_each_io_over_the_threshold() -> None:
    with fixtures.spawn(fixtures.syscall_target(), "read", str(N), str(SIZE)) as p:
        with fileslower.stream(min_ms=0, pid=p.pid, all_files=True) as s, \
                fileslower.stream(min_ms=60_000, pid=p.pid, all_files=True) as none:
            p.finish()
            time.sleep(0.1)
            rows = fileslower.decode(s.drain())
            assert len(none.drain()) == 0
    assert [(r["dir"], r["bytes"], r["ret"], r["file"], r["tid"]) for r in rows] == [("R", SIZE, SIZE, "zero", p.pid)] * N
    assert all(r["lat_ns"] > 0 for r in rows)


LIFE = r"""
import os, sys, time
sys.stdin.readline()
fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, 0o600)
os.close(fd)
time.sleep(0.3)
os.unlink(sys.argv[1])
"""


@pytest.mark.guest
@pytest.mark.skipif(not KPROBES[0], reason=KPROBES[1])
def test_filelife_sees_a_file_created_and_deleted() -> None:
    # tmpfs: on a stacked file system (overlayfs, as a guest's / may be) the file is created and
    # deleted twice, once in each layer, and filelife rightly reports both
    with tempfile.TemporaryDirectory(prefix="bpfkit-life-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as d:
        path = os.path.join(d, "short-lived")
        p = subprocess.Popen([sys.executable, "-c", LIFE, path], stdin=subprocess.PIPE, text=True)
        with filelife.stream(pid=p.pid) as s:
            p.communicate("\n", timeout=60)
            time.sleep(0.1)
            rows = filelife.decode(s.drain())
    assert p.returncode == 0
    assert [(r["file"], r["pid"]) for r in rows] == [("short-lived", p.pid)], rows
    assert 0.3e9 <= rows[0]["age_ns"] < 30e9


PAGES = 64
READER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.write(1, b"ready\n")
sys.stdin.readline()
for i in range(int(sys.argv[2])):
    assert len(os.pread(fd, 4096, i * 4096)) == 4096
os.write(1, b"done\n")
sys.stdin.readline()
"""


@pytest.mark.guest
@pytest.mark.skipif(not KPROBES[0], reason=KPROBES[1])
def test_cachestat_counts_hits_of_a_cached_file_exactly() -> None:
    """A file on tmpfs is all page cache: reading each of its pages once from its start is one
    access and no miss per page. Read before the reader exits: its exit marks the pages it had
    mapped (the interpreter, its libraries) accessed too, as cachestat rightly counts; and trace
    only once it started (its imports read files through the page cache)."""
    with tempfile.NamedTemporaryFile(prefix="bpfkit-cache-", dir="/dev/shm") as f:
        f.write(b"c" * (PAGES * 4096))
        f.flush()
        p = subprocess.Popen([sys.executable, "-c", READER, f.name, str(PAGES)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        assert p.stdin is not None and p.stdout is not None
        assert p.stdout.readline() == "ready\n"   # its start-up (imports read files) is over
        with cachestat.trace(pid=p.pid) as t:
            p.stdin.write("\n")
            p.stdin.flush()
            assert p.stdout.readline() == "done\n"
            s = t.read()
        p.communicate("\n", timeout=60)
    assert p.returncode == 0
    assert (s.accessed, s.added, s.dirtied, s.buffers_dirtied) == (PAGES, 0, 0, 0)
    assert (s.hits, s.misses, s.ratio) == (PAGES, 0, 1.0)
