"""Running a ``bpfkit`` tool as users do: a subprocess, ready once it printed its "Tracing" line
(stdout, or stderr under --json), stopped with SIGINT (or SIGTERM), its output collected.

Example::

    with ToolRun("biosnoop", "-d", "loop3") as run:
        ...                                  # make the events
        rc, out, err = run.stop()
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Optional

__all__ = ["ToolRun"]

READY = re.compile(r"Tracing|^\s*(PID|TIME|COMM|SKADDR|PCOMM)\b")


class ToolRun:
    """``bpfkit TOOL ARGS...`` started and waited for until ready (``ready`` regex, on either stream)."""

    def __init__(self, tool: str, *args: str, ready: re.Pattern[str] = READY, timeout: float = 30.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen([sys.executable, "-m", "bpfkit.cli", tool, *args], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.out: list[str] = []
        self.err: list[str] = []
        self._cv = threading.Condition()
        self._threads = [threading.Thread(target=self._pump, args=(s, lines), daemon=True)
                         for s, lines in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))]
        for t in self._threads:
            t.start()
        if not self.wait_for(ready, timeout):
            rc, out, err = self.stop()
            raise AssertionError(f"bpfkit {tool} did not get ready (exit {rc}): {out}\n{err}")

    def _pump(self, stream: Optional[IO[str]], lines: list[str]) -> None:
        assert stream is not None
        for line in stream:
            with self._cv:
                lines.append(line)
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 30.0) -> bool:
        """Until a line of either stream matches (False: timeout or exit)."""
        end = time.monotonic() + timeout
        with self._cv:
            while True:
                if any(pattern.search(line) for line in self.out + self.err):
                    return True
                if self.proc.poll() is not None and not any(t.is_alive() for t in self._threads):
                    return False
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.2))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30.0) -> tuple[int, str, str]:
        """Send ``sig`` (if still running), wait; (exit status, stdout, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        for t in self._threads:
            t.join(timeout=5)
        return rc, "".join(self.out), "".join(self.err)

    def __enter__(self) -> "ToolRun":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
