"""The `bpfkit` command itself (not its tools): --version, usage errors, help."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import bpfkit

BPFKIT = str(Path(sys.executable).parent / "bpfkit")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BPFKIT, *args], capture_output=True, text=True, timeout=60)


def test_version() -> None:
    for flag in ("--version", "-V"):
        r = _run(flag)
        assert (r.returncode, r.stdout, r.stderr) == (0, f"bpfkit {bpfkit.__version__}\n", "")


def test_usage_errors_exit_2_with_the_usage_on_stderr() -> None:
    r = _run()
    assert r.returncode == 2 and r.stdout == "" and r.stderr.startswith("usage: bpfkit [--version] COMMAND")
    r = _run("--verison")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("bpfkit: unknown option '--verison'\n\nusage: bpfkit")
    r = _run("frobnicate")
    assert r.returncode == 2 and r.stderr.startswith("bpfkit: unknown command 'frobnicate'\n")


def test_help_lists_every_command() -> None:
    from bpfkit.cli import COMMANDS

    r = _run("--help")
    assert r.returncode == 0 and r.stderr == ""
    listed = [line.split()[0] for line in r.stdout.splitlines() if line.startswith("  ")]
    assert listed == list(COMMANDS)
