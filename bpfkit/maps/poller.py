"""Waiting for events: one epoll over any number of ring buffers and perf buffers.

Every event buffer (:class:`~bpfkit.maps.ringbuf.RingBuffer`,
:class:`~bpfkit.maps.perfbuf.PerfBuffer`) is an :class:`EventSource`: it can be iterated, read
until idle, driven by a callback or consumed with ``async for``. A :class:`Poller` does the same
for several buffers at once and yields ``(buffer, batch)`` pairs.

Ctrl-C while waiting ends iterations and :meth:`Poller.run` cleanly (``poller.interrupted`` tells
you it happened); records already in the buffers stay there for the next read.

Example::

    with Poller(obj.maps.events, obj.maps.pevents) as p:
        for buf, batch in p:                 # until Ctrl-C
            print(buf.name, len(batch))

    async for batch in obj.maps.events:      # asyncio
        ...
"""
from __future__ import annotations

import select
import time
from typing import Any, AsyncIterator, Callable, Iterator, Optional

from ..errors import ClosedError
from .records import Batch

Callback = Callable[[Batch], Any]


DROPS_PREFIX = "__bpfkit_drops__"


class EventSource:
    """Mixin for event buffers. Subclasses provide :meth:`poll_fds`, :meth:`pending` and
    :meth:`drain`; waiting, iteration, callbacks and asyncio come from here."""

    name: str
    _poller: Optional["Poller"] = None
    _drops: Optional[Any] = None  # 1-element view of __bpfkit_drops__<name> in the object's globals

    # -- the BPF-side drop counter (bpfkit.h) ------------------------------------
    def bind_globals(self, sections: dict[str, Any]) -> None:
        """Hook called by the Object after load: find this buffer's drop counter
        (``__bpfkit_drops__<name>`` in ``.bss``/``.data``, declared by ``bpfkit.h``)."""
        var = DROPS_PREFIX + self.name
        for sec in (".bss", ".data"):
            gv = sections.get(sec)
            if gv is not None and gv.dtype.names and var in gv.dtype.names:
                self._drops = gv.array[var]
                return

    @property
    def dropped(self) -> int:
        """Records the BPF side failed to submit (full buffer, or no reader on that CPU), counted by
        ``bpfkit.h``'s reserve/output helpers; 0 if the program does not use them."""
        return int(self._drops[0]) if self._drops is not None else 0

    @property
    def has_drop_counter(self) -> bool:
        """Whether the object declares ``__bpfkit_drops__<name>`` (BPFKIT_RINGBUF / BPFKIT_PERFBUF)."""
        return self._drops is not None

    # -- what subclasses implement -------------------------------------------
    def poll_fds(self) -> list[int]:
        """File descriptors that become readable when records arrive."""
        raise NotImplementedError

    def pending(self) -> bool:
        """True if records (or loss notices) are waiting, without a syscall."""
        raise NotImplementedError

    def max_latency(self) -> Optional[float]:
        """Longest a poller may sleep without checking this buffer (None: wakeups suffice).
        Buffers whose kernel wakeups are batched need a periodic look."""
        return None

    def drain(self, dtype: Any = None, max_records: Optional[int] = None) -> Batch:
        """Everything available now, without waiting."""
        raise NotImplementedError

    # -- built on top ---------------------------------------------------------
    def _own_poller(self) -> "Poller":
        if self._poller is None:
            self._poller = Poller(self)
        return self._poller

    def _close_poller(self) -> None:
        if self._poller is not None:
            self._poller.close()
            self._poller = None

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until records arrive or ``timeout`` seconds pass (None: forever); True if data is
        there. Ctrl-C raises KeyboardInterrupt as usual here."""
        return self._own_poller().wait(timeout)

    def poll(self, timeout: Optional[float] = None, dtype: Any = None) -> Batch:
        """Wait up to ``timeout`` seconds for data, then return one batch (maybe empty)."""
        self.wait(timeout)
        return self.drain(dtype)

    def read(self, timeout: float = 1.0, dtype: Any = None) -> Iterator[Batch]:
        """Yield non-empty batches until nothing arrives for ``timeout`` seconds (or Ctrl-C)."""
        p = self._own_poller()
        for _, batch in p.read(timeout, dtype=dtype):
            yield batch

    def __iter__(self) -> Iterator[Batch]:
        """Yield batches as they arrive, forever; Ctrl-C (or ``break``) ends the loop."""
        for _, batch in self._own_poller():
            yield batch

    def run(self, callback: Callback, timeout: Optional[float] = None,
            duration: Optional[float] = None) -> int:
        """Call ``callback(batch)`` for every batch until idle for ``timeout`` seconds, ``duration``
        seconds have passed, or Ctrl-C. Returns the number of records delivered."""
        p = self._own_poller()
        p.set_callback(self, callback)
        try:
            return p.run(timeout=timeout, duration=duration)
        finally:
            p.set_callback(self, None)

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self.aiter()

    async def aiter(self, timeout: Optional[float] = None) -> AsyncIterator[Batch]:
        """``async for batch in buf.aiter(timeout)``: batches as they arrive (until idle for
        ``timeout`` seconds when given)."""
        async for _, batch in self._own_poller().aiter(timeout):
            yield batch


class Poller:
    """One epoll over several event buffers. Iterating yields ``(buffer, batch)`` pairs.

    Example::

        p = Poller(rb, pb)
        p.set_callback(rb, lambda batch: print(batch["pid"]))
        p.run(duration=5.0)
    """

    def __init__(self, *sources: EventSource, max_events: int = 64) -> None:
        self._ep: Optional[select.epoll] = select.epoll()
        self._sources: list[EventSource] = []
        self._callbacks: dict[int, Optional[Callback]] = {}
        self._max_events = max_events
        self.interrupted = False
        for s in sources:
            self.add(s)

    # -- membership -------------------------------------------------------------
    def add(self, source: EventSource, callback: Optional[Callback] = None) -> None:
        """Watch ``source``; ``callback(batch)`` is used by :meth:`run`."""
        ep = self._epoll()
        for fd in source.poll_fds():
            ep.register(fd, select.EPOLLIN)
        self._sources.append(source)
        self._callbacks[id(source)] = callback

    def remove(self, source: EventSource) -> None:
        """Stop watching ``source``."""
        ep = self._epoll()
        for fd in source.poll_fds():
            try:
                ep.unregister(fd)
            except (OSError, ValueError):
                pass
        self._sources.remove(source)
        self._callbacks.pop(id(source), None)

    def set_callback(self, source: EventSource, callback: Optional[Callback]) -> None:
        """Set (or clear with None) the callback :meth:`run` calls for ``source``'s batches."""
        self._callbacks[id(source)] = callback

    @property
    def sources(self) -> list[EventSource]:
        """The watched buffers."""
        return list(self._sources)

    def fileno(self) -> int:
        """The epoll fd: readable when any watched buffer has data (for select/asyncio loops)."""
        return self._epoll().fileno()

    def _epoll(self) -> select.epoll:
        if self._ep is None:
            raise ClosedError("poller is closed")
        return self._ep

    # -- waiting --------------------------------------------------------------------
    def pending(self) -> bool:
        """True if any watched buffer has records now."""
        return any(s.pending() for s in self._sources)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until a buffer has data or ``timeout`` seconds pass; True if data is there."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ep = self._epoll()
        cap = self._latency_cap()
        while True:
            # the buffers are the truth: a wakeup can be stale (its records were already drained),
            # so returning on any epoll event would look like an idle timeout to callers
            if self.pending():
                return True
            if deadline is None:
                ep.poll(-1 if cap is None else cap, self._max_events)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            ep.poll(left if cap is None else min(left, cap), self._max_events)

    def _latency_cap(self) -> Optional[float]:
        caps = [c for c in (s.max_latency() for s in self._sources) if c is not None]
        return min(caps) if caps else None

    def drain(self, dtype: Any = None) -> list[tuple[EventSource, Batch]]:
        """One non-empty batch per buffer that has records, without waiting."""
        out = []
        for s in self._sources:
            batch = s.drain(dtype)
            if len(batch):
                out.append((s, batch))
        return out

    def poll(self, timeout: Optional[float] = None, dtype: Any = None) -> list[tuple[EventSource, Batch]]:
        """Wait up to ``timeout`` seconds, then drain every buffer."""
        self.wait(timeout)
        return self.drain(dtype)

    def _wait_or_stop(self, timeout: Optional[float]) -> Optional[bool]:
        """wait(), but Ctrl-C gives None (stop) instead of raising."""
        try:
            return self.wait(timeout)
        except KeyboardInterrupt:
            self.interrupted = True
            return None

    def __iter__(self) -> Iterator[tuple[EventSource, Batch]]:
        """``(buffer, batch)`` pairs as they arrive; ends on Ctrl-C."""
        while True:
            got = self.drain()
            yield from got
            if not got and self._wait_or_stop(None) is None:
                return

    def read(self, timeout: float = 1.0, dtype: Any = None) -> Iterator[tuple[EventSource, Batch]]:
        """``(buffer, batch)`` pairs until nothing arrives for ``timeout`` seconds (or Ctrl-C)."""
        while True:
            got = self.drain(dtype)
            if got:
                yield from got
                continue
            ready = self._wait_or_stop(timeout)
            if ready is None:
                return
            if not ready:
                # one last look: wakeups may be batched (watermark), data can sit without one
                got = self.drain(dtype)
                if not got:
                    return
                yield from got

    def run(self, timeout: Optional[float] = None, duration: Optional[float] = None) -> int:
        """Deliver batches to the callbacks until idle for ``timeout`` s, ``duration`` s elapsed, or
        Ctrl-C. Buffers without a callback are drained and their batches dropped. Returns the number
        of records delivered."""
        deadline = None if duration is None else time.monotonic() + duration
        total = 0
        while True:
            got = self.drain()
            for src, batch in got:
                cb = self._callbacks.get(id(src))
                if cb is not None:
                    cb(batch)
                total += len(batch)
            if deadline is not None and time.monotonic() >= deadline:
                return total
            if got:
                continue
            wait_for = timeout
            if deadline is not None:
                left = max(0.0, deadline - time.monotonic())
                wait_for = left if wait_for is None else min(wait_for, left)
            ready = self._wait_or_stop(wait_for)
            if ready is None:
                return total
            if not ready and (deadline is None or time.monotonic() < deadline) and timeout is not None:
                return total

    async def aiter(self, timeout: Optional[float] = None) -> AsyncIterator[tuple[EventSource, Batch]]:
        """``async for buf, batch in poller.aiter()``: waits on the event loop, not in a thread;
        ends after ``timeout`` seconds without records when given."""
        import asyncio  # only async users pay for it (~25 ms with ssl)

        loop = asyncio.get_running_loop()
        fd = self.fileno()
        idle_since = time.monotonic()
        while True:
            got = self.drain()
            if got:
                for pair in got:
                    yield pair
                idle_since = time.monotonic()
                continue
            wait_for = None
            if timeout is not None:
                wait_for = timeout - (time.monotonic() - idle_since)
                if wait_for <= 0:
                    return
            cap = self._latency_cap()
            if cap is not None:
                wait_for = cap if wait_for is None else min(wait_for, cap)
            ready = asyncio.Event()
            loop.add_reader(fd, ready.set)
            try:
                if not self.pending():
                    try:
                        await asyncio.wait_for(ready.wait(), wait_for)
                    except asyncio.TimeoutError:
                        pass
            finally:
                loop.remove_reader(fd)

    def __aiter__(self) -> AsyncIterator[tuple[EventSource, Batch]]:
        return self.aiter()

    # -- lifetime ---------------------------------------------------------------------
    def close(self) -> None:
        """Close the epoll fd (the buffers stay open)."""
        if self._ep is not None:
            self._ep.close()
            self._ep = None

    def __enter__(self) -> "Poller":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Poller {[getattr(s, 'name', s) for s in self._sources]}>"
