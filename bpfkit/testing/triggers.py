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

    with triggers.syscalls("dup", 5, args=(12345,)) as t:   # any syscall, integer arguments
        ...
        assert t.run().values == {"done": 5, "ret": -1, "errno": 9}   # EBADF
"""
from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Optional, Sequence

from ..errors import BpfError, BpfNotFoundError, BpfUsageError
from . import fixtures

__all__ = ["SYSCALL_KINDS", "Trigger", "TriggerResult", "calls", "syscall_number", "syscall_numbers",
           "syscalls", "usdt"]

#: Kinds with their own fixture mode (read/write get a buffer of ``size`` bytes); any other
#: syscall name is accepted too, with integer ``args``.
SYSCALL_KINDS = ("getpid", "read", "write")
# Calls after which the fixture cannot report back (or would report twice).
_UNTRIGGERABLE = {"exit", "exit_group", "fork", "vfork", "clone", "clone3", "execve", "execveat",
                  "pause", "rt_sigreturn", "rt_sigsuspend", "kill", "tkill", "tgkill"}
_HEADER = "#include <sys/syscall.h>\n"


@lru_cache(maxsize=1)
def syscall_numbers() -> dict[str, int]:
    """This machine's system call numbers by name (``{"read": 0, "getpid": 39, ...}`` on x86_64).

    Read from the C library's ``<sys/syscall.h>`` (Debian: linux-libc-dev) through the compiler
    that builds the fixtures, so they match the architecture the fixture runs on.
    """
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BpfNotFoundError("gcc is needed to read the syscall numbers (and build the fixtures); "
                               "install it (Debian: apt-get install gcc)")
    out = subprocess.run([gcc, "-dM", "-E", "-x", "c", "-"], input=_HEADER, capture_output=True, text=True)
    if out.returncode != 0:
        raise BpfNotFoundError(f"cannot read <sys/syscall.h> (Debian: apt-get install linux-libc-dev): "
                               f"{out.stderr.strip()}")
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^#define __NR_(\w+) (\d+)$", out.stdout, re.M)}


def syscall_number(name: str) -> int:
    """The number of system call ``name`` on this machine (``syscall_number("getpid") == 39``)."""
    numbers = syscall_numbers()
    if name not in numbers:
        close = sorted(n for n in numbers if name in n or n in name)[:8]
        raise BpfUsageError(f"unknown system call {name!r}" + (f"; similar: {', '.join(close)}" if close else ""))
    return numbers[name]


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
    executable, for uprobes/USDT), and per kind ``kind``/``size``/``nr``/``args`` (syscalls),
    ``symbol``/``args`` (calls), or ``library``/``probes`` (usdt).
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
        self.nr = -1  # the syscall number of a syscalls() trigger
        self.args: tuple[int, ...] = ()
        self.library: Optional[Path] = None
        self.probes: dict[tuple[str, str], int] = {}

    def run(self) -> TriggerResult:
        """Let the program do its work, wait for it, and check it reports what was asked."""
        if self.result is not None:
            raise BpfUsageError(f"trigger {self!r} already ran; start a new one")
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


def syscalls(kind: str = "getpid", n: int = 1, *, size: int = 0, args: Sequence[int] = (),
             timeout: float = 10.0) -> Trigger:
    """A child that makes exactly ``n`` system calls ``kind`` through syscall(2).

    ``getpid``, ``read`` (of ``size`` bytes from /dev/zero) and ``write`` (of ``size`` bytes to
    /dev/null) are ready-made. Any other system call is named as in ``<sys/syscall.h>``
    (``"dup"``, ``"getppid"``, ``"umask"``...) and made with up to six integer ``args`` (0 for
    the rest; pass 0 where a pointer is expected). ``run().values`` then also holds the last
    call's ``ret`` and ``errno``. The child makes no other call a probe on ``kind`` could count.

    Example::

        with syscalls("getpid", 100) as t:
            ...attach...
            t.run()

        with syscalls("dup", 5, args=(12345,)) as t:   # t.nr is dup's number
            ...attach to syscalls:sys_enter_dup...
            assert t.run().values["errno"] == 9       # EBADF, 5 times
    """
    if n < 0 or size < 0:
        raise BpfUsageError("syscalls(): n and size must be >= 0")
    if size > 1 << 20:
        raise BpfUsageError("syscalls(): size is at most 1 MiB (the fixture's buffer)")
    if len(args) > 6:
        raise BpfUsageError(f"syscalls(): a system call takes at most 6 arguments, got {len(args)}")
    for a in args:
        if not isinstance(a, int) or not -(1 << 63) <= a < 1 << 64:
            raise BpfUsageError(f"syscalls(): arguments are 64-bit integers, got {a!r}")
    if kind in _UNTRIGGERABLE:
        raise BpfUsageError(f"syscalls(): {kind!r} does not return to the fixture normally (it exits, "
                            "forks, execs, signals or blocks), so it cannot be counted this way")
    nr = syscall_number(kind)
    if kind in SYSCALL_KINDS and not args:
        argv = [kind, str(n), str(size)]
    else:
        if size:
            raise BpfUsageError(f"syscalls(): size is for read/write without args; give {kind!r} its args")
        # as signed 64-bit values: the fixture parses them with strtol
        argv = ["nr", str(n), str(nr), *(str(a - (1 << 64) if a >= 1 << 63 else a) for a in args)]
    t = Trigger(fixtures.syscall_target(), argv, n, timeout=timeout, expect={"done": n})
    t.kind, t.size, t.nr, t.args = kind, size, nr, tuple(args)
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
        raise BpfUsageError("calls(): n must be >= 0")
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
        raise BpfUsageError("usdt(): n must be >= 0")
    t = Trigger(fixtures.usdt_target(), [str(n)], n, timeout=timeout)
    t.kind, t.library = "usdt", fixtures.usdt_lib()
    t.probes = {("bpfkit", "tick"): n, ("bpfkit_lib", "libtick"): n, ("bpfkit", "consts"): 1}
    return t
