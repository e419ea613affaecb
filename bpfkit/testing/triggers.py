"""Make the kernel do a known number of known things, from a child process with a known pid.

Each trigger starts a small C fixture program (built with gcc on first use, see
:mod:`bpfkit.testing.fixtures`) that prints its pid and waits: attach your probes (filtering on
``trigger.pid`` if you like), then call :meth:`Trigger.run`, which lets it do exactly its work
and checks, from its own output, that it did.

Example::

    from bpfkit.testing import triggers

    with triggers.syscalls("write", 10, size=100) as t:
        spec.rodata.target_pid = t.pid
        with spec.load() as obj, obj.attach():
            t.run()                      # exactly 10 write(2) calls of 100 bytes by pid t.pid
            assert obj.maps.bytes[t.pid] == 1000
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Optional

from ..errors import BpfError
from . import fixtures

__all__ = ["SYSCALL_KINDS", "Trigger", "TriggerResult", "calls", "syscalls", "usdt"]

SYSCALL_KINDS = ("getpid", "read", "write")


@dataclass(frozen=True)
class TriggerResult:
    """What a finished trigger did: its pid, its stdout and the values it reported
    (``done``, ``sum``, ``guarded``...) as integers."""

    pid: int
    output: str
    values: dict[str, int] = field(default_factory=dict)


class Trigger:
    """A started fixture program, paused before its work. Owns the child: ``close()`` kills it.

    Attributes describe what it will do: ``pid``, ``n`` (how many times), ``binary`` (the
    executable, for uprobes/USDT), and per kind ``kind``/``size``, ``symbol``/``args``, or
    ``library``/``probes``.
    """

    def __init__(self, binary: Path, argv: list[str], n: int, *, timeout: float = 10.0,
                 expect: Optional[dict[str, int]] = None) -> None:
        self.binary = binary
        self.n = n
        self._expect = expect or {}
        self._proc = fixtures.spawn(binary, *argv, timeout=timeout)
        self.pid = self._proc.pid
        self.result: Optional[TriggerResult] = None
        # What the fixture does, filled in by the factory that started it.
        self.kind = ""
        self.size = 0
        self.symbol = ""
        self.args: tuple[int, ...] = ()
        self.library: Optional[Path] = None
        self.probes: dict[tuple[str, str], int] = {}

    def run(self) -> TriggerResult:
        """Let the program do its work, wait for it, and check it reports what was asked."""
        if self.result is not None:
            raise BpfError(f"trigger {self!r} already ran; start a new one")
        out = self._proc.finish()
        values = {k: int(v) for k, v in re.findall(r"(\w+)[= ](-?\d+)", out)}
        for key, want in self._expect.items():
            if values.get(key) != want:
                raise BpfError(f"fixture {self.binary.name} (pid {self.pid}) reported {key}="
                               f"{values.get(key)}, expected {want}; its output was {out!r}")
        self.result = TriggerResult(self.pid, out, values)
        return self.result

    def close(self) -> None:
        """Kill the program if it has not finished. Idempotent."""
        self._proc.close()

    def __enter__(self) -> "Trigger":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "done" if self.result is not None else "paused"
        return f"<Trigger {self.binary.name} pid={self.pid} n={self.n} {state}>"


def syscalls(kind: str = "getpid", n: int = 1, *, size: int = 0, timeout: float = 10.0) -> Trigger:
    """A child that makes exactly ``n`` ``kind`` system calls (``getpid``, ``read`` of ``size``
    bytes from /dev/zero, ``write`` of ``size`` bytes to /dev/null) through syscall(2).

    Example::

        with syscalls("getpid", 100) as t:
            ...attach...
            t.run()
    """
    if kind not in SYSCALL_KINDS:
        raise BpfError(f"unknown syscall trigger {kind!r}; choose one of {', '.join(SYSCALL_KINDS)}")
    if n < 0 or size < 0:
        raise BpfError("syscalls(): n and size must be >= 0")
    if size > 1 << 20:
        raise BpfError("syscalls(): size is at most 1 MiB (the fixture's buffer)")
    t = Trigger(fixtures.syscall_target(), [kind, str(n), str(size)], n, timeout=timeout,
                expect={"done": n})
    t.kind, t.size = kind, size
    return t


def calls(n: int = 1, a: int = 1, b: int = 2, *, pie: bool = True, timeout: float = 10.0) -> Trigger:
    """A child that calls ``int bpfkit_add(int a, int b)`` exactly ``n`` times (and
    ``void bpfkit_void(void)`` once), in ``trigger.binary``: attach uprobes to
    ``(trigger.binary, trigger.symbol)``. ``run()`` checks the sum of the return values.

    Example::

        with calls(5, 3, 4) as t:
            prog.attach_uprobe(str(t.binary), t.symbol, pid=t.pid)
            t.run()                  # 5 calls of bpfkit_add(3, 4), each returning 7
    """
    if n < 0:
        raise BpfError("calls(): n must be >= 0")
    t = Trigger(fixtures.uprobe_target(pie=pie), [str(n), str(a), str(b)], n, timeout=timeout,
                expect={"sum": n * ((a + b + 2**31) % 2**32 - 2**31)})
    t.kind, t.symbol, t.args = "calls", "bpfkit_add", (a, b)
    return t


def usdt(n: int = 1, *, timeout: float = 10.0) -> Trigger:
    """A child that fires USDT probes: ``bpfkit:tick(i, i*10)`` in ``trigger.binary`` and
    ``bpfkit_lib:libtick(i)`` in ``trigger.library`` for i in 0..n-1, ``bpfkit:guarded(i)`` each
    time its semaphore is set, and ``bpfkit:consts(7, -9, 200)`` once.

    ``run().values["guarded"]`` says how often the semaphore-guarded probe fired (0 unless a
    USDT attachment raised the semaphore).

    Example::

        with usdt(10) as t:
            ...attach to ("bpfkit", "tick") in t.binary...
            t.run()
    """
    if n < 0:
        raise BpfError("usdt(): n must be >= 0")
    t = Trigger(fixtures.usdt_target(), [str(n)], n, timeout=timeout)
    t.kind, t.library = "usdt", fixtures.usdt_lib()
    t.probes = {("bpfkit", "tick"): n, ("bpfkit_lib", "libtick"): n, ("bpfkit", "consts"): 1}
    return t
