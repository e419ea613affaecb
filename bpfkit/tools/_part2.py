"""What the disk, file, network and memory tools share, kept small on purpose: a tool object
loaded and attached (:class:`Traced`), the CLI loop of an event tool (:func:`follow`) and of an
interval tool (:func:`every`), and bcc's histogram text (:func:`log2_text`).

(Stopping on signals and the interval loop's timing are tools/common.py's stop_flag and ticks.)

Example::

    spec = tool_spec("biosnoop", Scope(pid=42), queued=1)
    with Traced(spec, counters=("missed",)) as t:
        follow("biosnoop", t, show, header="TIME(s) COMM ...")
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import IO, Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .._sys import Resource
from ..errors import BpfError, BpfNotFoundError, ClosedError, FeatureNotSupported
from ..loader import Object, ObjectSpec
from ..loader import open as open_object
from ..tracefs import tracefs_root
from .common import Scope, StopFlag, stop_flag, ticks

__all__ = ["tool_spec", "has_tracepoint", "Traced", "follow", "every", "require_kprobes"]

POLL_SECONDS = 0.2


def has_tracepoint(category: str, name: str) -> bool:
    """Whether this kernel has tracepoint ``category:name``."""
    try:
        return os.path.isdir(os.path.join(tracefs_root(), "events", category, name))
    except FeatureNotSupported:
        return False


def tool_spec(name: str, scope: Optional[Scope] = None, **rodata: Any) -> ObjectSpec:
    """The spec of shipped object ``tools/NAME`` with ``rodata`` constants set (None: left alone)
    and ``scope`` checked and applied."""
    try:
        spec = open_object(f"tools/{name}")
    except BpfNotFoundError:
        raise BpfNotFoundError(f"the BPF side of {name} (tools/{name}.bpf.o) is not in this installation; "
                               "rebuild bpfkit (make setup)") from None
    for key, value in rodata.items():
        if value is not None:
            setattr(spec.rodata, key, value if isinstance(value, (bytes, str)) else int(value))
    if scope is not None:
        scope.check()
        scope.apply(spec)
    return spec


def require_kprobes(what: str) -> None:
    """FeatureNotSupported naming kprobes when this kernel cannot attach them (``what`` says which
    tool needs them and why)."""
    from .. import features  # kernel facts, probed once per process

    ok, reason = features.check("kprobes")
    if not ok:
        raise FeatureNotSupported(f"{what} needs kprobes: {reason}", feature="kprobes")


class Traced(Resource):
    """A tool's object loaded, with the programs ``progs`` attached (all that name a target when
    empty); tracing is on once the constructor returns. ``counters``: ``.bss`` globals in which
    the BPF side counts events it could not record (a full map); :attr:`lost` adds them up with
    the runs the kernel skipped (recursion misses).

    Example::

        with Traced(tool_spec("tcpstates")) as t:
            batch = t.obj.reader("events").poll(1.0)
    """

    def __init__(self, spec: ObjectSpec, progs: Sequence[str] = (), *, counters: Sequence[str] = (),
                 duration: Optional[float] = None, buffer: str = "events") -> None:
        self.counters = tuple(counters)
        self.duration, self.buffer = duration, buffer
        self._final: Optional[int] = None
        self._dropped = 0
        self._links: Any = None
        self._obj: Optional[Object] = spec.load()
        try:
            self._links = self._obj.attach(*progs)
        except BaseException:
            self.close()
            raise
        self.started = time.monotonic()

    @property
    def obj(self) -> Object:
        if self._obj is None:
            raise ClosedError("this tool has stopped tracing")
        return self._obj

    def __iter__(self) -> Iterator[np.ndarray]:
        """Batches (numpy records) of ring buffer ``buffer`` as they come, until ``duration``
        seconds after the start or :meth:`close`; then what is left in the buffer."""
        reader = self.obj.reader(self.buffer)
        end = None if self.duration is None else self.started + self.duration
        while self._obj is not None:
            wait = POLL_SECONDS if end is None else min(POLL_SECONDS, end - time.monotonic())
            if wait <= 0:
                break
            batch = _records(reader.poll(wait))
            if len(batch):
                yield batch
        if self._obj is not None:
            rest = _records(reader.drain())
            if len(rest):
                yield rest

    def drain(self) -> np.ndarray:
        """The records of ``buffer`` that have arrived, without waiting."""
        return _records(self.obj.reader(self.buffer).drain())

    @property
    def dropped(self) -> int:
        """Records lost with the ring buffer full."""
        if self._obj is None:
            return self._dropped
        return self._obj.reader(self.buffer).dropped if self.buffer in self._obj.maps else 0

    def detach(self) -> None:
        """Stop tracing; the maps stay readable until :meth:`close`."""
        links, self._links = self._links, None
        if links is not None:
            links.close()

    @property
    def lost(self) -> int:
        """Events the BPF side could not record, and runs the kernel skipped."""
        if self._obj is None:
            return self._final or 0
        obj = self._obj
        names = (obj.bss.dtype.names or ()) if ".bss" in obj.sections else ()
        total = sum(int(getattr(obj.bss, n)) for n in self.counters if n in names)
        for prog in obj.progs.values():
            with contextlib.suppress(BpfError, OSError):
                total += int(prog.info().recursion_misses)
        return total

    def close(self) -> None:
        """Detach and unload (:attr:`lost` stays readable). Idempotent."""
        obj = getattr(self, "_obj", None)
        if obj is None:
            return
        with contextlib.suppress(BpfError, AttributeError):
            self._final = self.lost
            self._dropped = self.dropped
        self.detach()
        self._obj = None
        obj.close()


def _records(batch: Any) -> np.ndarray:
    if not isinstance(batch, np.ndarray):  # the tools' buffers are BPFKIT_RINGBUF: fixed-size records
        raise BpfError(f"expected fixed-size records, got {type(batch).__name__}")
    return batch


def follow(name: str, traced: Traced, show: Callable[[np.ndarray], Optional[int]], *, header: str = "",
           tracing: str = "", json_mode: bool = False, duration: Optional[float] = None, buffer: str = "events",
           out: Optional[IO[str]] = None, err: Optional[IO[str]] = None) -> int:
    """The CLI loop of an event tool: print ``tracing`` and ``header`` (under ``json_mode`` the
    ``tracing`` line only, on stderr), then ``show(batch)`` for each batch of ring buffer
    ``buffer`` until ``duration`` passes or Ctrl-C/SIGTERM, then what is left in the buffer; on
    stderr, the events lost. ``show`` returns how many lines it printed (None: the batch's length).
    Returns the number shown."""
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    reader = traced.obj.reader(buffer)
    shown = 0
    with traced, stop_flag() as stop:
        if json_mode:
            print(tracing or f"Tracing {name}... Hit Ctrl-C to end.", file=err, flush=True)
        else:
            if tracing:
                print(tracing, file=out)
            if header:
                print(header, file=out)
            out.flush()
        end = None if duration is None else time.monotonic() + duration
        while not stop:
            wait = POLL_SECONDS if end is None else min(POLL_SECONDS, end - time.monotonic())
            if wait <= 0:
                break
            batch = _records(reader.poll(wait))
            if len(batch):
                n = show(batch)
                shown += len(batch) if n is None else n
                out.flush()
        rest = _records(reader.drain())
        if len(rest):
            n = show(rest)
            shown += len(rest) if n is None else n
            out.flush()
        dropped = reader.dropped
    lost = traced.lost
    if dropped or lost:
        print(f"{name}: {dropped + lost} events lost ({dropped} with the ring buffer full, {lost} before it)",
              file=err)
    return shown


def every(interval: Optional[float], count: Optional[int], duration: Optional[float],
          emit: Callable[[bool], None], stop: StopFlag) -> None:
    """Call ``emit(last)`` at each of :func:`~bpfkit.tools.common.ticks`' moments (every
    ``interval`` seconds, ``count`` times at most, or once after ``duration`` / on Ctrl-C when
    ``interval`` is None); ``last`` is True for the final call."""
    for last in ticks(interval, count, duration, stop):
        emit(last)
        sys.stdout.flush()
