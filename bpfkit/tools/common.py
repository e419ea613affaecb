"""What every tool shares, so each behaves like bcc's: options checked before anything is loaded,
scoping to a process / thread / command / cgroup (applied on the BPF side by
``c/include/bpfkit_filter.h``), running until Ctrl-C or SIGTERM (also under ``nohup`` or in the
background, where SIGINT is ignored), interval output, tables and ``--json``, errors as one line.

Example::

    def main(argv=None):
        p = parser("opensnoop", "Trace open() syscalls.")
        add_scope(p, tid=True)
        add_json(p)
        return run_tool("opensnoop", p, argv, body)

    def body(args):
        scope = Scope.from_args(args)
        spec = open_object("tools/opensnoop"); scope.apply(spec)
        with spec.load() as obj, obj.attach():
            with stop_signals():
                ...                       # until Ctrl-C / SIGTERM / -d
            print(summary)
"""
from __future__ import annotations

import argparse
import contextlib
import errno as _errno
import json
import os
import select
import signal
import sys
import time
from dataclasses import dataclass
from typing import IO, Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .. import cgroups
from ..cgroups import cgroup2_mount
from ..errors import BpfError, BpfNotFoundError, BpfUsageError

__all__ = ["parser", "positive_int", "nonnegative_int", "positive_float", "add_scope", "add_json", "add_duration",
           "add_interval", "Scope", "cgroup_id", "cgroup2_root", "process_exists", "comm_of", "Stop", "stop_signals",
           "StopFlag", "stop_flag",
           "wait", "sleep_until_stopped",
           "ticks", "Table", "to_jsonable", "print_json", "run_tool", "ToolError"]


class ToolError(BpfUsageError):
    """A tool's user-facing mistake (a missing process, a bad cgroup path): printed as one line."""


# -- option types (argparse calls them; a ValueError/ArgumentTypeError becomes "invalid value") --------

def positive_int(text: str) -> int:
    """An integer > 0, as ``-p``, counts and sizes take."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
    if value >= 1 << 32:
        raise argparse.ArgumentTypeError(f"{text} is too large (at most {(1 << 32) - 1})")
    return value


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (thresholds, minimum sizes)."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must not be negative")
    if value >= 1 << 64:
        raise argparse.ArgumentTypeError(f"{text} is too large")
    return value


def positive_float(text: str) -> float:
    """A number of seconds > 0 (durations, intervals)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number of seconds")
    return value


def parser(name: str, description: str, epilog: str = "") -> argparse.ArgumentParser:
    """An ArgumentParser for ``bpfkit NAME`` with bcc's help layout (examples in the epilog)."""
    return argparse.ArgumentParser(prog=f"bpfkit {name}", description=description, epilog=epilog,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)


def add_scope(p: argparse.ArgumentParser, *, pid: bool = True, tid: bool = False, comm: str = "",
              cgroup: bool = True) -> None:
    """The scoping options: ``-p PID``, ``-t TID``, a command-name option (``comm`` is its flag,
    e.g. ``"-n"`` for execsnoop or ``"-c"`` for syscount; '' for none) and ``--cgroup PATH``."""
    if pid:
        p.add_argument("-p", "--pid", type=positive_int, help="trace this process only")
    if tid:
        p.add_argument("-t", "--tid", type=positive_int, help="trace this thread only")
    if comm:
        # the long alias only where the tool has not taken it already (bcc's -n/--name means a
        # pattern in execsnoop and opensnoop; there the exact BPF-side filter is --comm alone)
        alias = "--comm" if comm != "--comm" else "--name"
        flags = [comm] + ([alias] if alias not in p._option_string_actions else [])
        p.add_argument(*flags, dest="comm", metavar="COMM",
                       help="trace processes with this command name only (exact, as in /proc/PID/comm)")
    if cgroup:
        p.add_argument("--cgroup", metavar="PATH",
                       help="trace this cgroup v2 only (its directory, e.g. a container's; relative: under the cgroup2 mount)")


def add_json(p: argparse.ArgumentParser) -> None:
    """``--json``: one JSON object per line (event tools) or one document (summaries)."""
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_duration(p: argparse.ArgumentParser, short: bool = True) -> None:
    """``-d SECONDS``: stop after that long (default: run until Ctrl-C). ``short=False`` for tools
    whose bcc original uses ``-d`` for something else (softirqs' ``-d`` is ``--dist``): only
    ``--duration`` then."""
    flags = ["-d", "--duration"] if short else ["--duration"]
    p.add_argument(*flags, type=positive_float, metavar="SECONDS",
                   help="trace for this many seconds, then print the summary (default: until Ctrl-C)")


def add_interval(p: argparse.ArgumentParser) -> None:
    """bcc's positional ``[interval] [count]``: print every ``interval`` seconds, ``count`` times."""
    p.add_argument("interval", nargs="?", type=positive_float, help="output interval, in seconds")
    p.add_argument("count", nargs="?", type=positive_int, help="number of outputs")


# -- scope -----------------------------------------------------------------------------------

def process_exists(pid: int) -> bool:
    """Whether process ``pid`` exists (it may belong to another user)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def comm_of(pid: int) -> str:
    """``/proc/PID/comm`` ('' once the process is gone)."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def cgroup2_root() -> str:
    """Where the cgroup v2 hierarchy is mounted (ToolError when none is)."""
    mount = cgroup2_mount()
    if mount is None:
        raise ToolError("no cgroup v2 hierarchy is mounted (mount -t cgroup2 none /sys/fs/cgroup)", _errno.ENOENT)
    return mount


def cgroup_id(path: str) -> int:
    """The id the BPF side sees for cgroup v2 directory ``path`` (relative: below the cgroup2
    mount), with the error said as the ``--cgroup`` option's."""
    try:
        return cgroups.cgroup_id(path)
    except BpfError as e:
        raise ToolError(f"--cgroup {path}: {e}".replace(f"cgroup {path}: ", "", 1), e.errno) from None


@dataclass(frozen=True)
class Scope:
    """Which tasks a tool traces: a process, a thread, a command name, a cgroup (None: any).

    Example::

        scope = Scope.from_args(args)       # checked: the process and the cgroup exist
        scope.apply(spec)                   # sets bpfkit_filter.h's rodata
    """

    pid: Optional[int] = None
    tid: Optional[int] = None
    comm: Optional[str] = None
    cgroup: Optional[str] = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Scope":
        """The scope the options of :func:`add_scope` give, checked (:meth:`check`)."""
        scope = cls(getattr(args, "pid", None), getattr(args, "tid", None), getattr(args, "comm", None),
                    getattr(args, "cgroup", None))
        scope.check()
        return scope

    def check(self) -> None:
        """Raise ToolError for a process or thread that does not exist, a command name longer than
        the kernel keeps (15 bytes), or a path that is not a cgroup v2 directory."""
        if self.pid is not None and not process_exists(self.pid):
            raise ToolError(f"-p {self.pid}: no such process", _errno.ESRCH)
        if self.tid is not None and not os.path.exists(f"/proc/{self.tid}"):
            raise ToolError(f"-t {self.tid}: no such thread", _errno.ESRCH)
        if self.comm is not None and not 0 < len(self.comm.encode()) <= 15:
            raise ToolError(f"command name {self.comm!r}: the kernel keeps 1 to 15 bytes of a command name",
                            _errno.EINVAL)
        if self.cgroup is not None:
            cgroup_id(self.cgroup)

    @property
    def any(self) -> bool:
        """True when nothing restricts the scope."""
        return self.pid is None and self.tid is None and self.comm is None and self.cgroup is None

    def apply(self, spec: Any) -> None:
        """Set ``bpfkit_filter_*`` in ``spec.rodata`` (the object must include bpfkit_filter.h when
        the scope is not empty: BpfUsageError otherwise)."""
        if self.any:
            return
        names = spec.rodata.dtype.names if ".rodata" in spec.sections else ()
        if "bpfkit_filter_tgid" not in (names or ()):
            raise BpfUsageError(f"object {spec.name!r} cannot be scoped: its BPF side does not include "
                                "bpfkit_filter.h")
        ro = spec.rodata
        if self.pid is not None:
            ro.bpfkit_filter_tgid = self.pid
        if self.tid is not None:
            ro.bpfkit_filter_tid = self.tid
        if self.cgroup is not None:
            ro.bpfkit_filter_cgroup = cgroup_id(self.cgroup)
        if self.comm is not None:
            ro.bpfkit_filter_has_comm = 1
            ro.bpfkit_filter_comm = self.comm.encode()


# -- running until stopped -----------------------------------------------------------------------

def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class Stop:
    """What ended a :func:`stop_signals` block: ``signaled`` is True after Ctrl-C or SIGTERM."""

    signaled = False


@contextlib.contextmanager
def stop_signals() -> Iterator[Stop]:
    """A block that Ctrl-C (SIGINT) or SIGTERM ends, wherever it lands inside, also when the tool
    was started with SIGINT ignored (``nohup``, a background job of a non-interactive shell); the
    code after the block runs (print the summary there) and ``stop.signaled`` says why it ended.
    The previous handlers come back on exit.

    Example::

        with stop_signals() as stop:
            wait(args.duration)          # until -d seconds passed or Ctrl-C
        print(summary)
    """
    stop = Stop()
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in old:
        signal.signal(s, _interrupt)
    try:
        yield stop
    except KeyboardInterrupt:
        stop.signaled = True
    finally:
        for s, h in old.items():
            signal.signal(s, h)


class StopFlag:
    """Set by Ctrl-C or SIGTERM inside :func:`stop_flag` (``bool(flag)`` is True once set);
    :meth:`sleep` returns early when it is."""

    def __init__(self, wake_fd: int = -1) -> None:
        self.signaled = False
        self._wake_fd = wake_fd

    def set(self, *_: Any) -> None:
        self.signaled = True

    def __bool__(self) -> bool:
        return self.signaled

    def sleep(self, seconds: Optional[float]) -> bool:
        """Sleep ``seconds`` (None: until a signal); True if a signal came (now or before)."""
        deadline = None if seconds is None else time.monotonic() + seconds
        while not self.signaled:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            if self._wake_fd < 0:
                time.sleep(min(left, 0.1) if left is not None else 0.1)
                continue
            if select.select([self._wake_fd], [], [], left)[0]:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_fd, 512)
        return self.signaled


@contextlib.contextmanager
def stop_flag() -> Iterator[StopFlag]:
    """Like :func:`stop_signals`, but Ctrl-C and SIGTERM only set the flag instead of raising:
    for loops that check it between steps (an event tool printing records must not be cut off
    after it took a batch from the ring buffer and before it printed it; a histogram must not be
    cut off half printed). ``flag.sleep(t)`` wakes on the signal (through ``signal.set_wakeup_fd``);
    other waits must use a timeout (the handler runs, the interrupted wait resumes).

    Example::

        with stop_flag() as stop:
            while not stop.sleep(1.0):
                print(histogram(clear=True))
            print(histogram())
    """
    r, w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    flag = StopFlag(r)
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    old_wake = signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    try:
        for s in old:
            signal.signal(s, flag.set)
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        signal.set_wakeup_fd(old_wake)
        os.close(r)
        os.close(w)


def wait(duration: Optional[float] = None) -> None:
    """Sleep ``duration`` seconds, or forever (None): inside :func:`stop_signals`, until Ctrl-C."""
    if duration is None:
        while True:
            time.sleep(3600)
    time.sleep(duration)


def sleep_until_stopped(duration: Optional[float] = None) -> bool:
    """Sleep for ``duration`` seconds (None: until Ctrl-C/SIGTERM); True if it ended on a signal.
    Use inside :func:`stop_signals`."""
    try:
        wait(duration)
        return False
    except KeyboardInterrupt:
        return True


def ticks(interval: Optional[float], count: Optional[int] = None,
          duration: Optional[float] = None, stop: Optional[StopFlag] = None) -> Iterator[bool]:
    """The moments an interval tool prints: every ``interval`` seconds (``count`` times at most),
    or once at the end (``interval`` None: after ``duration``, or on Ctrl-C). Yields True for the
    last one. Use inside :func:`stop_signals`, or pass the flag of :func:`stop_flag` as ``stop``
    (then a signal never lands inside the caller's printing).

    Example::

        for last in ticks(args.interval, args.count, args.duration):
            print(histogram(clear=not last))
    """
    deadline = None if duration is None else time.monotonic() + duration
    n = 0
    while True:
        wait = interval
        if deadline is not None:
            left = max(0.0, deadline - time.monotonic())
            wait = left if wait is None else min(wait, left)
        stopped = stop.sleep(wait) if stop is not None else sleep_until_stopped(wait)
        n += 1
        last = stopped or (count is not None and n >= count) or (
            deadline is not None and time.monotonic() >= deadline) or interval is None
        yield last
        if last:
            return


# -- output --------------------------------------------------------------------------------------

class Table:
    """Fixed-width columns as bcc prints them: ``Table([("PID", 7), ("COMM", -16)])`` (a negative
    width left-aligns); :meth:`header` and :meth:`row` return lines.

    Example::

        t = Table([("PCOMM", -16), ("PID", 7), ("RET", 3)])
        print(t.header()); print(t.row(["bash", 1234, 0]))
    """

    def __init__(self, columns: Sequence[tuple[str, int]], sep: str = " ") -> None:
        self.columns = list(columns)
        self.sep = sep

    def _cells(self, values: Sequence[Any]) -> str:
        cells = []
        for (_, width), v in zip(self.columns, values):
            text = v.decode(errors="replace") if isinstance(v, bytes) else str(v)
            cells.append(f"{text:<{-width}}" if width < 0 else f"{text:>{width}}")
        return self.sep.join(cells).rstrip()

    def header(self) -> str:
        return self._cells([name for name, _ in self.columns])

    def row(self, values: Sequence[Any]) -> str:
        return self._cells(values)


def to_jsonable(value: Any) -> Any:
    """numpy scalars, records, arrays and C strings (``bytes`` up to the first NUL) as JSON values."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).split(b"\0", 1)[0].decode(errors="replace")
    if isinstance(value, np.void) and value.dtype.names:
        return {n: to_jsonable(value[n]) for n in value.dtype.names}
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def print_json(obj: Any, out: Optional[IO[str]] = None) -> None:
    """One JSON document on one line, flushed (so ``--json`` output can be piped record by record).
    ``out`` defaults to the ``sys.stdout`` of the moment (a default bound at import would miss a
    replaced stdout: pytest's capsys, redirect_stdout)."""
    out = out if out is not None else sys.stdout
    out.write(json.dumps(to_jsonable(obj), separators=(",", ":")) + "\n")
    out.flush()


def run_tool(name: str, p: argparse.ArgumentParser, argv: Optional[Sequence[str]],
             body: Callable[[argparse.Namespace], Optional[int]]) -> int:
    """Parse ``argv`` and run ``body(args)``; bpfkit errors print as ``bpfkit NAME: message`` with
    exit status 1, a usage error exits 2, a closed pipe (``| head``) ends quietly. Returns the status."""
    args = p.parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return int(body(args) or 0)
    except BpfUsageError as e:
        print(f"bpfkit {name}: {e}", file=sys.stderr)
        return 2
    except BpfError as e:
        print(f"bpfkit {name}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # stdout went away (| head): say nothing more, and let the interpreter not complain either
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def no_such_process(pid: int) -> BpfNotFoundError:
    """The error for a process that went away while a tool ran."""
    return BpfNotFoundError(f"process {pid} exited", _errno.ESRCH)
