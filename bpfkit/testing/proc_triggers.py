"""Processes with known behaviour for testing the process and CPU tools: a fixture (``proc_target``)
that execs, exits, is killed, sends signals, opens and stats files, syncs, sleeps or opens raw
sockets an exact number of times, and reports what the kernel answered.

Like :mod:`bpfkit.testing.triggers`, each factory starts the program paused: attach first, then
``run()``. ``run()`` returns a :class:`ProcResult` whose ``lines`` are the ``key=value`` reports in
order.

Example::

    from bpfkit.testing import proc_triggers

    with proc_triggers.execs(3, "/bin/true", ["true", "a b"]) as t:
        ...attach, scoped by parent pid t.pid...
        res = t.run()
        assert res.value("ok") == 3
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Optional, Sequence

from ..errors import BpfError, BpfUsageError
from . import fixtures

__all__ = ["ProcTrigger", "ProcResult", "execs", "exits", "signals", "kills", "opens", "stats", "syncs",
           "sleeps", "spins", "raw_sockets", "schedstat", "wait_off_cpu"]


@dataclass(frozen=True)
class ProcResult:
    """What a finished fixture reported: ``lines`` as (key, value) pairs in order."""

    pid: int
    output: str
    lines: list[tuple[str, int]] = field(default_factory=list)

    def values(self, key: str) -> list[int]:
        """Every value reported under ``key``, in order."""
        return [v for k, v in self.lines if k == key]

    def value(self, key: str) -> int:
        """The one value reported under ``key`` (BpfError when there is not exactly one)."""
        vals = self.values(key)
        if len(vals) != 1:
            raise BpfError(f"fixture pid {self.pid} reported {key} {len(vals)} times: {self.output!r}")
        return vals[0]


class ProcTrigger:
    """A started ``proc_target``, paused before its work; owns the child (``close()`` kills it)."""

    def __init__(self, argv: Sequence[object], *, timeout: float = 20.0) -> None:
        self.argv = [str(a) for a in argv]
        self.binary: Path = fixtures.proc_target()
        self._proc = fixtures.spawn(self.binary, *self.argv, timeout=timeout)
        self.pid = self._proc.pid
        self.result: Optional[ProcResult] = None

    @property
    def comm(self) -> str:
        """The fixture's command name as the kernel keeps it."""
        return self.binary.name[:15]

    def release(self) -> None:
        """Let it do its work without waiting (for fixtures that report between phases)."""
        self._proc.release()

    def read_line(self, timeout: Optional[float] = None) -> str:
        """The next line it prints."""
        return self._proc.read_line(timeout)

    def run(self) -> ProcResult:
        """Let it work (or finish, after :meth:`release`), wait for it to exit, and parse its report."""
        if self.result is not None:
            raise BpfUsageError(f"{self!r} already ran; start a new one")
        out = self._proc.finish()
        pairs = [(k, int(v)) for k, v in re.findall(r"(\w+)=(-?\d+)", out)]
        if ("done", 1) not in pairs:
            raise BpfError(f"fixture proc_target {' '.join(self.argv)} (pid {self.pid}) did not finish: {out!r}")
        self.result = ProcResult(self.pid, out, pairs)
        return self.result

    def close(self) -> None:
        """Kill it if it has not finished. Idempotent."""
        self._proc.close()

    def __enter__(self) -> "ProcTrigger":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ProcTrigger {' '.join(self.argv[:3])} pid={self.pid}>"


def execs(n: int, path: str, argv: Sequence[str]) -> ProcTrigger:
    """``n`` times: fork, and the child ``execv(path, argv)``. Reports ``ok``, ``failed`` and the
    last failure's ``errno``; the children are the fixture's (their parent pid is ``t.pid``)."""
    if n < 0 or not argv:
        raise BpfUsageError("execs(): n >= 0 and a non-empty argv")
    return ProcTrigger(["exec", n, path, *argv])


def exits(codes: Sequence[int]) -> ProcTrigger:
    """Per code: fork a child that ``_exit(code)``. Reports ``child`` and ``status`` per child."""
    return ProcTrigger(["exit", *codes])


def signals(sigs: Sequence[int]) -> ProcTrigger:
    """Per signal: fork a child that waits in pause(), then kill it with that signal. Reports
    ``child`` and ``status`` (1000 + the signal) per child."""
    return ProcTrigger(["signal", *sigs])


def kills() -> ProcTrigger:
    """kill(2)/tgkill(2) with known results, reported in this order: ``kill0`` (kill(child, 0): 0),
    ``killusr1`` (kill(child, SIGUSR1): 0), ``killgone`` (kill(reaped, SIGTERM): -ESRCH), ``tgkill0``
    (tgkill(self, self, 0): 0), ``killkill`` (kill(child, SIGKILL): 0), then as uid 65534
    ``killinit`` (kill(1, 0): -EPERM). Also reports ``child`` and ``gone`` (the pids)."""
    return ProcTrigger(["kill"])


def opens(paths: Sequence[tuple[str, int]]) -> ProcTrigger:
    """``openat(AT_FDCWD, path, flags, 0600)`` per (path, flags); reports ``ret`` (fd or -errno)."""
    return ProcTrigger(["open", *(x for p, f in paths for x in (p, str(f)))])


def stats(paths: Sequence[str]) -> ProcTrigger:
    """Per path: newfstatat, newfstatat(AT_SYMLINK_NOFOLLOW), statx, statfs; reports each result."""
    return ProcTrigger(["stat", *paths])


def syncs(n: int) -> ProcTrigger:
    """``n`` sync(2) calls, then one fsync(2) and one fdatasync(2) of a temporary file."""
    return ProcTrigger(["sync", n])


def sleeps(n: int, usec: int) -> ProcTrigger:
    """``n`` nanosleeps of ``usec`` microseconds (n wakeups), then ``slept=n`` and a wait on stdin:
    ``release()``, ``read_line()`` (the ``slept`` line), :func:`wait_off_cpu`, read what you need,
    then ``run()``."""
    return ProcTrigger(["sleep", n, usec])


def spins(msec: int) -> ProcTrigger:
    """Busy on the CPU for ``msec`` milliseconds (preempted whenever the scheduler likes), then
    ``spun=1`` and a wait on stdin, like :func:`sleeps`."""
    return ProcTrigger(["spin", msec])


def raw_sockets() -> ProcTrigger:
    """A raw socket as root (``root=0``: CAP_NET_RAW granted), then as uid 65534 (``nobody=-1``,
    EPERM: denied)."""
    return ProcTrigger(["rawsock"])


def schedstat(pid: int) -> tuple[int, int, int]:
    """``/proc/PID/schedstat``: (ns on CPU, ns waiting on a run queue, times switched in)."""
    with open(f"/proc/{pid}/schedstat") as f:
        on_cpu, waited, slices = (int(x) for x in f.read().split()[:3])
    return on_cpu, waited, slices


def wait_off_cpu(pid: int, timeout: float = 10.0) -> None:
    """Return once thread ``pid`` is blocked and switched out: the kernel shows a wait channel
    only for a task that is not runnable and off its run queue; the switch that follows
    ``deactivate`` happens in the same critical section, and a short settle covers it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/wchan") as f:
                if f.read().strip() not in ("", "0"):
                    time.sleep(0.02)
                    return
        except FileNotFoundError:
            raise BpfError(f"process {pid} exited while waiting for it to block") from None
        time.sleep(0.005)
    raise BpfError(f"process {pid} did not block within {timeout}s")
