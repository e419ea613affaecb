"""Every code block of the README runs, and prints what the README says it prints.

Python blocks run in order in one fresh interpreter (one namespace, as a reader pasting them into a
notebook would), from a scratch directory; ``bpfkit ...`` shell lines run as commands. Shell lines that
set up a machine or run this very suite are covered by the tests named in COVERED_ELSEWHERE.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from _readme import Block, blocks, write_runner

BLOCKS = blocks()
PYTHON = [b for b in BLOCKS if b.lang == "python"]
SHELL = [b for b in BLOCKS if b.lang == "sh"]
BIN = Path(sys.executable).parent

# shell commands the README shows that this test does not run, and the test that does
COVERED_ELSEWHERE = {
    "sudo apt-get install": "scripts/setup.sh installs these (tests/test_setup_script.py)",
    "pip install": "tests/test_packaging.py installs the sdist-built wheel and the checkout into a fresh venv",
    "make demo": "make demo = set-up + `bpfkit syscount`; tests/test_syscount.py runs the tool",
    "make test": "this suite",
    "make test-host": "this suite without the guest kernels",
}


def _commands(block: Block) -> list[str]:
    lines = []
    for line in block.code.splitlines():
        cmd = line.split("  #", 1)[0].strip()
        if cmd:
            lines.append(cmd)
    return lines


def test_the_readme_has_the_blocks_it_should() -> None:
    sections = {b.section for b in PYTHON}
    assert {"Quickstart", "Your own program", "Maps are numpy", "Events at kernel speed",
            "Every probe kind, as a context manager"} <= sections
    assert all(b.output for b in PYTHON if b.section in ("Quickstart", "Maps are numpy")), \
        "the quickstart and maps blocks show their exact output"


@pytest.fixture(scope="module")
def python_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("readme")
    runner, src, res = write_runner(work, [b.code for b in PYTHON])
    proc = subprocess.run([sys.executable, str(runner), str(res), str(src)], cwd=work, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results: dict[str, Any] = json.loads(res.read_text())
    return results


@pytest.mark.parametrize("index", range(len(PYTHON)), ids=[b.id for b in PYTHON])
def test_python_block_runs_and_prints_what_the_readme_shows(index: int, python_results: dict[str, Any]) -> None:
    block = PYTHON[index]
    got = python_results.get(str(index))
    assert got is not None, "an earlier block failed, so this one did not run"
    assert got["error"] == "", f"README line {block.line}:\n{got['error']}"
    if block.output is not None:
        assert got["stdout"] == block.output, f"README line {block.line} printed:\n{got['stdout']}"


@pytest.mark.parametrize("block", SHELL, ids=[b.id for b in SHELL])
def test_shell_block_commands_run_or_are_covered_elsewhere(block: Block, tmp_path: Path) -> None:
    out = []
    for cmd in _commands(block):
        if any(cmd == c or cmd.startswith(c + " ") for c in COVERED_ELSEWHERE):
            continue
        argv = shlex.split(cmd)
        assert argv[0] == "bpfkit", f"README line {block.line}: {cmd!r} is neither run here nor covered elsewhere"
        proc = subprocess.run([str(BIN / "bpfkit"), *argv[1:]], cwd=tmp_path, capture_output=True, text=True,
                              timeout=60, env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})
        assert proc.returncode == 0, f"{cmd}: {proc.stderr}"
        out.append(proc.stdout)
    if block.output is not None:
        assert "".join(out) == block.output
