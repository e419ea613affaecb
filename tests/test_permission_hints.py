"""Permission errors say what is really wrong (issue 11): "needs root" only to a process that is not
root; to root (here: root of a user namespace, which the tracefs files do not belong to) they say
why root is refused; an unreadable tracefs is not "not mounted"; pinning outside bpffs says so.

The unprivileged cases run the system python3 on this tree's bpfkit (tracefs needs no numpy) under
setpriv, as nobody, and as nobody that is root in a new user namespace."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bpfkit import errors

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PY = "/usr/bin/python3"
PROBE = ("import sys; sys.path.insert(0, %r)\n"
         "from bpfkit import tracefs\n"
         "try:\n    tracefs.tracepoint_id('sched', 'sched_switch'); print('OK')\n"
         "except Exception as e:\n    print(type(e).__name__, e)\n") % str(ROOT)

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user"),
    pytest.mark.skipif(not (shutil.which("setpriv") and shutil.which("unshare") and os.path.exists(SYSTEM_PY)),
                       reason="needs setpriv, unshare (util-linux) and /usr/bin/python3"),
]


def _run(*prefix: str) -> str:
    cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *prefix, SYSTEM_PY, "-c", PROBE]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd="/", timeout=60)
    if proc.returncode != 0 and "unshare" in proc.stderr:
        pytest.skip(f"user namespaces refused here: {proc.stderr.strip()}")
    return proc.stdout.strip()


def _tracefs_is_private() -> bool:
    return os.stat("/sys/kernel/tracing").st_mode & 0o077 == 0


@pytest.mark.skipif(not os.path.isdir("/sys/kernel/tracing") or not _tracefs_is_private(),
                    reason="tracefs here is readable by other users")
def test_not_root_is_told_it_needs_root() -> None:
    out = _run()
    assert out.startswith("BpfPermissionError") and "needs root" in out, out
    assert "not mounted" not in out


@pytest.mark.skipif(not os.path.isdir("/sys/kernel/tracing") or not _tracefs_is_private(),
                    reason="tracefs here is readable by other users")
def test_root_without_access_is_not_told_to_be_root() -> None:
    out = _run("unshare", "--user", "--map-root-user")
    assert out.startswith("BpfPermissionError"), out
    assert "needs root" not in out and "even as root" in out and "not mounted" not in out, out


def test_kernel_eperm_hint_depends_on_who_asks() -> None:
    e = errors.BpfError.from_errno(1, "BPF_MAP_UPDATE_ELEM map 'x'")
    assert isinstance(e, errors.BpfPermissionError)
    assert "needs root" not in str(e) and "although this process is root" in str(e)
