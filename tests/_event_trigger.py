"""A forked child that calls getpid() exactly when told to: the deterministic event source of the
ring/perf buffer tests (its pid goes into the BPF program's rodata filter before load), and the
helpers those tests share. The fixtures built on it are in conftest.py."""
from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Any, Optional

import pytest


EVENTS_SRC = Path(__file__).resolve().parent.parent / "c" / "tests" / "events_test.bpf.c"


class Trigger:
    """``t.run(n, cpu=None)`` makes the child do ``n`` getpid() calls (pinned to ``cpu``) and
    returns when it is done. Context manager; the child exits on close."""

    def __init__(self) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._ack_r, ack_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: no Python-level work between the calls, so no stray getpid()
            try:
                os.close(self._cmd_w)
                os.close(self._ack_r)
                while True:
                    msg = os.read(cmd_r, 16)
                    if len(msg) < 16:
                        break
                    n, cpu = struct.unpack("<qq", msg)
                    if cpu >= 0:
                        os.sched_setaffinity(0, {cpu})
                    getpid = os.getpid
                    for _ in range(n):
                        getpid()
                    os.write(ack_w, b"k")
            finally:
                os._exit(0)
        os.close(cmd_r)
        os.close(ack_w)
        self.pid = pid

    def start(self, n: int, cpu: Optional[int] = None) -> None:
        """Start ``n`` calls without waiting for them."""
        os.write(self._cmd_w, struct.pack("<qq", n, -1 if cpu is None else cpu))

    def done(self) -> None:
        """Wait for the calls started by :meth:`start`."""
        if os.read(self._ack_r, 1) != b"k":
            raise RuntimeError("trigger child died")

    def run(self, n: int, cpu: Optional[int] = None) -> None:
        """Make ``n`` getpid() calls and wait for them."""
        self.start(n, cpu)
        self.done()

    def close(self) -> None:
        if self.pid:
            os.close(self._cmd_w)
            os.close(self._ack_r)
            os.waitpid(self.pid, 0)
            self.pid = 0

    def __enter__(self) -> "Trigger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def ctrl_c_after_commits(monkeypatch: pytest.MonkeyPatch, buf: Any, at: set[int]) -> list[int]:
    """Make ``buf`` raise KeyboardInterrupt right after its commits number ``at`` (1-based): the
    moment the producer already has the space back but the records are not handed out yet.
    Returns a one-element list counting the commits."""
    real = buf._commit
    count = [0]

    def commit_then_ctrl_c(*args: Any) -> None:
        real(*args)
        count[0] += 1
        if count[0] in at:
            raise KeyboardInterrupt

    monkeypatch.setattr(buf, "_commit", commit_then_ctrl_c)
    return count


def drain_through_interrupts(buf: Any) -> tuple[list[Any], int]:
    """Drain ``buf`` until it is empty, carrying on after each KeyboardInterrupt a drain raises.
    Returns the non-empty batches and the number of interrupts."""
    got: list[Any] = []
    interrupts = 0
    while True:
        try:
            batch = buf.drain()
        except KeyboardInterrupt:
            interrupts += 1
            continue
        if not len(batch):
            return got, interrupts
        got.append(batch)


def comm_of(pid: int) -> bytes:
    """The task's comm as the kernel reports it (what bpf_get_current_comm returns)."""
    return Path(f"/proc/{pid}/comm").read_bytes().rstrip(b"\n")
