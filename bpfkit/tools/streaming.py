"""What event tools (execsnoop, opensnoop, killsnoop, ...) share: a loaded and attached tool object
whose ring buffer arrives as numpy batches (:class:`EventStream`), the CLI loop that prints them
until Ctrl-C / SIGTERM / ``-d`` and then says how many were lost (:func:`follow`), and the clocks
that turn the BPF side's ``bpf_ktime_get_ns()`` into wall-clock time.

Example::

    with EventStream(spec) as s:          # tracing is on once this returns
        for batch in s:                   # numpy structured arrays, until s.close() or Ctrl-C
            print(batch["pid"])
        print(s.dropped)
"""
from __future__ import annotations

import os
import sys
import time
from typing import IO, Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .._sys import Resource
from ..errors import BpfError, BpfNotFoundError, FeatureNotSupported
from ..loader import Object, ObjectSpec
from ..loader import open as open_object
from ..tracefs import tracefs_root
from .common import Scope, stop_flag

__all__ = ["EventStream", "follow", "has_tracepoint", "need_tracepoint", "tool_object", "configure",
           "recursion_misses", "cstrings", "Clock", "POLL_SECONDS"]

#: Longest a stream sleeps between looks at the clock (for ``duration`` and ``close()``).
POLL_SECONDS = 0.2


def has_tracepoint(category: str, name: str) -> bool:
    """Whether this kernel has tracepoint ``category:name`` (e.g. ``syscalls:sys_enter_open`` is
    x86-only, ``capability:cap_capable`` is 6.14+)."""
    try:
        return os.path.isdir(os.path.join(tracefs_root(), "events", category, name))
    except FeatureNotSupported:
        return False


def need_tracepoint(category: str, name: str, what: str) -> None:
    """FeatureNotSupported naming the tracepoint when it is missing."""
    if not has_tracepoint(category, name):
        raise FeatureNotSupported(f"{what} needs tracepoint {category}:{name}, which this kernel does not have",
                                  feature=f"tracepoint {category}:{name}")


def recursion_misses(obj: Object) -> int:
    """Runs the kernel skipped because the program would have interrupted itself (or, for
    kprobe and plain tracepoint programs, any other such program) on the same CPU: events lost
    before the BPF side saw them, counted by the kernel per program (5.12+; 0 before)."""
    total = 0
    for prog in obj.progs.values():
        try:
            total += int(prog.info().recursion_misses)
        except (BpfError, OSError):
            pass
    return total


class Clock:
    """Turns ``bpf_ktime_get_ns()`` values (CLOCK_MONOTONIC) into seconds since the tool started
    and into wall-clock epoch seconds.

    Example::

        clock = Clock()
        clock.since_start(ev["ts"]), clock.wall(ev["ts"])
    """

    def __init__(self) -> None:
        self.start_ns = time.monotonic_ns()
        self.offset_ns = time.time_ns() - self.start_ns

    def since_start(self, ts_ns: Any) -> Any:
        """Seconds from the tool's start to ``ts_ns`` (int or array)."""
        if isinstance(ts_ns, int):
            return (ts_ns - self.start_ns) / 1e9
        return (np.asarray(ts_ns, np.int64) - self.start_ns) / 1e9

    def wall(self, ts_ns: Any) -> Any:
        """Epoch seconds of ``ts_ns`` (int or array)."""
        if isinstance(ts_ns, int):
            return (ts_ns + self.offset_ns) / 1e9
        return (np.asarray(ts_ns, np.int64) + self.offset_ns) / 1e9

    def hms(self, ts_ns: int) -> str:
        """Local ``HH:MM:SS`` of ``ts_ns``, as bcc's TIME column."""
        return time.strftime("%H:%M:%S", time.localtime(float(self.wall(ts_ns))))


def cstrings(col: np.ndarray) -> list[bytes]:
    """A fixed-size char column as bytes up to each value's first NUL. A BPF ``bpf_probe_read_*_str()``
    into a ring-buffer record stops at the NUL and leaves whatever the reused ring memory held after
    it; numpy's ``S`` values strip only trailing NULs, so that would show.

    Example::

        cstrings(batch["name"])   # [b'/etc/hostname', ...]
    """
    return [b.split(b"\0", 1)[0] for b in col.tolist()]


def _records(batch: Any) -> np.ndarray:
    """Tool buffers carry fixed-size records (BPFKIT_RINGBUF): a structured array."""
    if not isinstance(batch, np.ndarray):
        raise BpfError(f"expected fixed-size records, got {type(batch).__name__}: the tool's ring buffer "
                       "must be declared with BPFKIT_RINGBUF")
    return batch


class EventStream(Resource):
    """A tool's BPF object, loaded and attached, whose ring buffer ``buffer`` is read as numpy
    batches. Tracing is on once the constructor returns; iterating yields non-empty batches until
    ``duration`` seconds after the start, :meth:`close`, or Ctrl-C (then :attr:`interrupted`).

    ``attach(obj)`` attaches what the tool needs (default: ``obj.attach()``, every program with a
    target in its SEC()). ``counters`` names ``.bss`` globals the BPF side counts losses in that the
    ring buffer's own drop counter does not see (a full scratch map, a missed entry...): they are
    added into :attr:`lost`.

    Example::

        s = EventStream(spec, duration=5)
        batches = list(s)                 # 5 seconds of events
        s.close(); print(s.dropped, s.lost)
    """

    def __init__(self, spec: ObjectSpec, buffer: str = "events", *, duration: Optional[float] = None,
                 attach: Optional[Callable[[Object], Any]] = None, counters: Sequence[str] = (),
                 clock: Optional[Clock] = None) -> None:
        self.clock = clock or Clock()
        self.duration = duration
        self.interrupted = False
        self.counters = tuple(counters)
        self._closed = False
        self._links: Any = None
        self.obj = spec.load()
        try:
            self._links = attach(self.obj) if attach is not None else self.obj.attach()
            self.reader = self.obj.reader(buffer)
        except BaseException:
            self.close()
            raise
        self.started = time.monotonic()
        self._final: dict[str, int] = {}
        #: checked between batches: iteration ends once it returns True (follow() sets it to a
        #: stop_flag, so a signal never lands between taking a batch and showing it)
        self.should_stop: Callable[[], bool] = lambda: False

    @property
    def deadline(self) -> Optional[float]:
        """``time.monotonic()`` at which iteration ends (None: never)."""
        return None if self.duration is None else self.started + self.duration

    def __iter__(self) -> Iterator[np.ndarray]:
        deadline = self.deadline
        try:
            while not self._closed and not self.should_stop():
                wait = POLL_SECONDS
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                batch = _records(self.reader.poll(wait))
                if len(batch):
                    yield batch
        except KeyboardInterrupt:
            self.interrupted = True
        if not self._closed:
            rest = _records(self.reader.drain())
            if len(rest):
                yield rest

    def drain(self) -> np.ndarray:
        """Whatever arrived and was not handed out yet, without waiting."""
        return _records(self.reader.drain())

    def _counter(self, name: str) -> int:
        if name in self._final:
            return self._final[name]
        if name == "dropped":
            return self.reader.dropped
        return int(getattr(self.obj.bss, name))

    @property
    def dropped(self) -> int:
        """Records the BPF side could not put in the ring buffer (it was full)."""
        return self._counter("dropped")

    @property
    def lost(self) -> int:
        """Events lost before reaching the ring buffer: the tool's ``counters`` (a full map...)
        and the runs the kernel skipped (:func:`recursion_misses`)."""
        if "misses" in self._final:
            return sum(self._final[n] for n in self.counters) + self._final["misses"]
        return sum(self._counter(n) for n in self.counters) + recursion_misses(self.obj)

    def close(self) -> None:
        """Detach and unload; the loss counters stay readable. Idempotent."""
        if self._closed:
            return
        self._closed = True
        obj = getattr(self, "obj", None)
        if obj is not None:
            try:
                self._final = {"dropped": self.reader.dropped, "misses": recursion_misses(obj),
                               **{n: int(getattr(obj.bss, n)) for n in self.counters}}
            except (AttributeError, BpfError):
                pass  # failed before the reader existed: nothing was counted
        links, self._links = self._links, None
        if links is not None:
            links.close()
        if obj is not None:
            obj.close()


def follow(name: str, stream: EventStream, show: Callable[[np.ndarray], Optional[int]], *,
           header: str = "", json_mode: bool = False, tracing: str = "", out: IO[str] = sys.stdout,
           err: IO[str] = sys.stderr,
           summary: Optional[Callable[[int], Optional[str]]] = None) -> int:
    """The CLI loop of an event tool. Once Ctrl-C and SIGTERM are caught, it prints ``header`` (the
    column titles, after ``tracing``'s line if given; under ``json_mode`` only the ``tracing`` line,
    on stderr, so stdout stays JSON), then ``show(batch)`` for every batch until ``-d`` passes or a signal comes (noticed
    between batches, within POLL_SECONDS: a batch taken from the buffer is always shown), then
    the events still in the buffer; on stderr what was lost (never silent) and
    ``summary(n_shown)``'s line. ``show`` returns how many it printed (None: all of them).
    Returns the number of events shown.

    Example::

        return follow("execsnoop", stream, show, header="PCOMM  PID ...")
    """
    n = 0
    with stream, stop_flag() as stop:
        stream.should_stop = stop.__bool__
        if json_mode:
            print(tracing or f"Tracing {name}... Hit Ctrl-C to end.", file=err, flush=True)
        else:
            if tracing:
                print(tracing, file=out)
            if header:
                print(header, file=out, flush=True)
        for batch in stream:
            shown = show(batch)
            n += len(batch) if shown is None else shown
            out.flush()
    if stream.dropped or stream.lost:
        print(f"{name}: {stream.dropped + stream.lost} events lost ({stream.dropped} with the ring buffer "
              f"full, {stream.lost} before it)", file=err)
    extra = summary(n) if summary is not None else None
    if extra:
        print(extra, file=err)
    return n


def configure(name: str, scope: Optional[Scope] = None, *, drop_missing: bool = True,
              **rodata: Any) -> ObjectSpec:
    """The spec of tool ``name`` with ``rodata`` constants set (None values are left alone), the
    scope applied (checked first), and with ``drop_missing`` the programs whose tracepoint this
    kernel lacks not loaded (``sys_enter_open`` exists on x86-64 only, for instance).

    Example::

        spec = configure("opensnoop", Scope(pid=42), failed_only=1)
    """
    if scope is not None:
        scope.check()
    spec = tool_object(name)
    for key, value in rodata.items():
        if value is not None:
            setattr(spec.rodata, key, int(value))
    if scope is not None:
        scope.apply(spec)
    if drop_missing:
        for prog in spec.programs.values():
            kind, _, target = prog.section.partition("/")
            category, _, event = target.partition("/")
            if kind in ("tracepoint", "tp") and event and not has_tracepoint(category, event):
                prog.autoload = False
    return spec


def tool_object(name: str) -> ObjectSpec:
    """The spec of shipped tool object ``tools/NAME`` (BpfNotFoundError if the package was built
    without it)."""
    try:
        return open_object(f"tools/{name}")
    except BpfNotFoundError:
        raise BpfNotFoundError(f"the BPF side of {name} (tools/{name}.bpf.o) is not in this installation; "
                               "rebuild bpfkit (make setup)") from None
