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
from bpfkit.tools import mountsnoop

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
