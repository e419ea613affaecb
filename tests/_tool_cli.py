"""Running a ``bpfkit TOOL`` command as a user does, for the tool tests: start it, wait until it
says it is tracing (its header or ``Tracing ...`` line, on stdout, or on stderr under ``--json``),
let the test make events, then stop it with SIGINT or SIGTERM and collect what it printed."""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

BPFKIT = [sys.executable, "-m", "bpfkit.cli"]


@dataclass
class Finished:
    rc: int
    stdout: str
    stderr: str

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def json(self) -> list[Any]:
        return [json.loads(line) for line in self.lines if line.strip()]


class Tool:
    """``with Tool(["execsnoop", "-x"]) as t: ...make events...; fin = t.stop()``"""

    def __init__(self, argv: Sequence[str], *, ready_on_stderr: bool = False, timeout: float = 60.0) -> None:
        self.argv = [*BPFKIT, *argv]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._out = b""
        self._err = b""
        stream = self.proc.stderr if ready_on_stderr else self.proc.stdout
        assert stream is not None
        deadline = time.monotonic() + timeout
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([stream], [], [], left)[0]:
                self.proc.kill()
                raise AssertionError(f"{self.argv} printed nothing within {timeout}s")
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                rest_out, rest_err = self.proc.communicate()
                raise AssertionError(f"{self.argv} exited ({self.proc.returncode}) before tracing: "
                                     f"{(buf + rest_out + rest_err).decode(errors='replace')}")
            buf += chunk
        if ready_on_stderr:
            self._err = buf
        else:
            self._out = buf

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> Finished:
        """Send ``sig`` and wait for the tool to print its summary and exit."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout: float = 60.0) -> Finished:
        """Wait for the tool to exit by itself (``-d``, a count)."""
        out, err = self.proc.communicate(timeout=timeout)
        return Finished(self.proc.returncode, (self._out + out).decode(errors="replace"),
                        (self._err + err).decode(errors="replace"))

    def __enter__(self) -> "Tool":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def run(argv: Sequence[str], timeout: float = 60.0, input: Optional[str] = None) -> Finished:
    """Run a tool to completion (``-d``, ``--once``, an interval count)."""
    p = subprocess.run([*BPFKIT, *argv], capture_output=True, text=True, timeout=timeout, input=input)
    return Finished(p.returncode, p.stdout, p.stderr)


@contextlib.contextmanager
def cgroup(tag: str) -> Iterator[Path]:
    """A fresh cgroup v2 directory with a unique name, removed afterwards (once empty)."""
    from bpfkit.tools.common import cgroup2_root

    path = Path(cgroup2_root()) / f"bpfkit-test-{tag}-{os.getpid()}-{time.monotonic_ns()}"
    path.mkdir()
    try:
        yield path
    finally:
        for _ in range(100):  # processes placed in it must have exited (and been reaped)
            try:
                path.rmdir()
                break
            except OSError:
                time.sleep(0.05)
