"""Waiting for events: one epoll over any number of ring buffers and perf buffers.

Every event reader (:class:`~bpfkit.events.RingBuffer`, :class:`~bpfkit.events.PerfBuffer`) can
be iterated, read until idle, driven by a callback or consumed with ``async for``, through a
Poller of its own. A :class:`Poller` does the same for several readers at once and yields
``(reader, batch)`` pairs.

Ctrl-C ends iterations, ``read()``, ``run()`` and ``aiter()`` cleanly wherever it lands -- while
waiting or while records are being copied out (``poller.interrupted`` tells you it happened).
No record is lost or delivered twice: records whose space was already handed back to the producer
when the interrupt came are kept by their buffer and come first from the next drain; the others
are still in the kernel buffer. A bare ``drain()``/``poll()`` lets KeyboardInterrupt through, with
the same guarantee.

Example::

    with Poller(obj.reader("events"), obj.reader("pevents")) as p:
        for buf, batch in p:                 # until Ctrl-C
            print(buf.name, len(batch))

    async for batch in obj.reader("events").aiter(timeout=1.0):   # asyncio
        ...
"""
from __future__ import annotations

import select
import time
from typing import Any, AsyncGenerator, AsyncIterator, Callable, Generator, Optional, Protocol

from .._sys import Resource
from ..errors import ClosedError
from .batch import Batch

__all__ = ["Poller", "Source", "Callback", "Pair"]

Callback = Callable[[Batch], Any]


class Source(Protocol):
    """What a Poller needs of a buffer (every :class:`~bpfkit.events.EventReader` is one).

    ``settle()`` says when to read: 0 now; None nothing is there (sleep until a kernel wakeup);
    ``x`` seconds: look again after ``x`` (a few records are gathering, or a dense stream is
    expected to go on). A poller naps for ``x`` rather than sleep in epoll: a reader asleep in
    epoll makes the traced process pay a task wakeup for every record that wakes it."""

    coalesce: float

    name: str
    fd_generation: int

    def poll_fds(self) -> list[int]: ...
    def pending(self) -> bool: ...
    def settle(self) -> Optional[float]: ...
    def max_latency(self) -> Optional[float]: ...
    def wake_per_record(self) -> None: ...
    def drain(self, dtype: Any = None, max_records: Optional[int] = None) -> Batch: ...
    def give_back(self, batch: Batch) -> None: ...


Pair = tuple[Source, Batch]


class _HandOut:
    """Pairs drained but not yet delivered. Every consuming loop (iteration, run(), aiter()) takes
    pairs from here one at a time and calls :meth:`give_back` in its ``finally``: whatever the
    consumer did not take (it left the loop, or Ctrl-C landed) goes back to its buffer, first in
    line for the next drain. Between taking a pair and advancing ``i`` there is no call, where
    CPython could raise."""

    __slots__ = ("pairs", "i")

    def __init__(self) -> None:
        self.pairs: list[Pair] = []
        self.i = 0

    def refill(self, pairs: list[Pair]) -> None:
        self.pairs, self.i = pairs, 0

    def __bool__(self) -> bool:
        return self.i < len(self.pairs)

    def take(self) -> Pair:
        pair = self.pairs[self.i]
        self.i += 1
        return pair

    def give_back(self) -> None:
        if self.i < len(self.pairs):
            _give_back(self.pairs[self.i:])
            self.pairs, self.i = [], 0


class Poller(Resource):
    """One epoll over several event buffers. Iterating yields ``(buffer, batch)`` pairs.

    Example::

        p = Poller(rb, pb)
        p.set_callback(rb, lambda batch: print(batch["pid"]))
        p.run(duration=5.0)
    """

    def __init__(self, *sources: Source, max_events: int = 64) -> None:
        self._ep: Optional[select.epoll] = select.epoll()
        self._sources: list[Source] = []
        self._fds: dict[int, list[int]] = {}  # id(source) -> its fds registered in the epoll
        self._gens: dict[int, int] = {}       # id(source) -> its fd_generation when registered
        self._callbacks: dict[int, Optional[Callback]] = {}
        self._max_events = max_events
        self._external = False  # fileno() was asked for: sources must wake per record
        self.interrupted = False  # the last iteration/read/run/aiter ended on Ctrl-C
        for s in sources:
            self.add(s)

    # -- membership -------------------------------------------------------------
    def add(self, source: Source, callback: Optional[Callback] = None) -> None:
        """Watch ``source``; ``callback(batch)`` is used by :meth:`run`."""
        self._epoll()
        if self._external:
            source.wake_per_record()
        self._sync(source)
        self._sources.append(source)
        self._callbacks[id(source)] = callback

    def remove(self, source: Source) -> None:
        """Stop watching ``source``."""
        ep = self._epoll()
        self._gens.pop(id(source), None)
        for fd in self._fds.pop(id(source), []):
            try:
                ep.unregister(fd)
            except (OSError, ValueError):
                pass
        self._sources.remove(source)
        self._callbacks.pop(id(source), None)

    def _sync(self, source: Source) -> None:
        """Register the source's current fds: a perf buffer replaces its rings when it switches to
        per-record wakeups (``fd_generation`` tells; a closed fd number may have been reused).
        """
        ep = self._epoll()
        key = id(source)
        gen = source.fd_generation
        if self._gens.get(key) == gen:
            return
        for fd in self._fds.get(key, []):
            try:
                ep.unregister(fd)
            except (OSError, ValueError):
                pass  # closed fds have left the epoll by themselves
        fds = source.poll_fds()
        for fd in fds:
            try:
                ep.register(fd, select.EPOLLIN)
            except FileExistsError:
                pass  # registered by a _sync that Ctrl-C cut short
        self._fds[key] = list(fds)
        self._gens[key] = source.fd_generation

    def set_callback(self, source: Source, callback: Optional[Callback]) -> None:
        """Set (or clear with None) the callback :meth:`run` calls for ``source``'s batches."""
        self._callbacks[id(source)] = callback

    @property
    def sources(self) -> list[Source]:
        """The watched buffers."""
        return list(self._sources)

    def fileno(self) -> int:
        """The epoll fd, for select/selectors/asyncio loops: it reads ready when a watched buffer's
        kernel wakeup came; then call :meth:`drain` on this poller (it also takes the wakeups it
        serves, so the fd reads ready again only for later records). Records already waiting when
        you first ask for fileno() do not make it ready: drain() once before waiting.

        A ring buffer wakes on a submit when its reader has caught up, unless the program passes
        ``BPF_RB_NO_WAKEUP`` or submits with ``bpfkit.h``'s adaptive ``BPFKIT_SUBMIT``, which
        skips wakeups for a few milliseconds after one: such records reach an outside loop only if
        it also looks every :meth:`max_latency` seconds (its select timeout). A perf buffer opened with the default batched wakeups wakes only every ``watermark`` bytes
        (a quarter of its ring, at most 1 MiB), so a trickle of events would never reach an outside
        loop: asking for fileno() therefore switches every watched perf buffer (and any added
        later) to a wakeup per sample, as ``open(wakeup_events=1)`` does. Records in the old rings
        are kept; the producer pays an irq_work per sample from then on. To keep batched wakeups,
        don't use fileno(): :meth:`wait`, iteration, :meth:`run` and :meth:`aiter` look every
        ``flush_interval`` instead.

        Example::

            sel = selectors.DefaultSelector()
            sel.register(poller.fileno(), selectors.EVENT_READ)
            handle(poller.drain())
            while True:
                sel.select(poller.max_latency())
                handle(poller.drain())         # [(buffer, batch), ...]
        """
        self._epoll()
        if not self._external:
            self._external = True
            for s in self._sources:
                s.wake_per_record()
                self._sync(s)
        return self._epoll().fileno()

    def _epoll(self) -> select.epoll:
        if self._ep is None:
            raise ClosedError("poller is closed")
        return self._ep

    # -- waiting --------------------------------------------------------------------
    def pending(self) -> bool:
        """True if any watched buffer has records now."""
        for s in self._sources:
            if s.pending():
                return True
        return False

    def settle(self) -> Optional[float]:
        """When to read, over every buffer: 0 now, None nothing is there, ``x``: look again in
        ``x`` seconds (see :class:`Source`)."""
        out: Optional[float] = None
        for s in self._sources:
            d = s.settle()
            if d is not None and (out is None or d < out):
                out = d
        return out

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until a buffer has data to read now or ``timeout`` seconds pass; True if data
        is there (or, at the timeout, a look is due). In a dense stream records gather for up to
        each buffer's ``coalesce`` time (1 ms) while the poller naps; a light one is read as
        soon as the kernel's wakeup comes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ep = self._epoll()
        for s in self._sources:
            self._sync(s)
        while True:
            # the buffers are the truth: a wakeup can be stale (its records were already drained),
            # so returning on any epoll event would look like an idle timeout to callers
            due = self.settle()
            if due is not None and due <= 0:
                return True
            cap = self._latency_cap()  # after settle(): a look may end a buffer's need for more
            t = cap if due is None else due if cap is None else min(cap, due)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return due is not None
                t = left if t is None else min(t, left)
            if due is not None:
                time.sleep(t if t is not None else due)  # gathering: a nap, which no record wakes
                continue
            ep.poll(-1 if t is None else t, self._max_events)

    def max_latency(self) -> Optional[float]:
        """How long a loop waiting on :meth:`fileno` may go without calling :meth:`drain` (None:
        the kernel's wakeups suffice): some buffer's records can come without a wakeup.

        Example::

            sel.select(poller.max_latency())
        """
        return self._latency_cap()

    def _latency_cap(self) -> Optional[float]:
        cap = None
        for s in self._sources:
            c = s.max_latency()
            if c is not None and (cap is None or c < cap):
                cap = c
        return cap

    def drain(self, dtype: Any = None) -> list[Pair]:
        """One non-empty batch per buffer that has records, without waiting. ``dtype`` as in
        :meth:`Source.resolve_dtype`, for every buffer.

        If a buffer raises (KeyboardInterrupt, a dtype mismatch), the batches already taken from
        the others go back to their buffers, which hand them out first next time."""
        if self._external and self._ep is not None:
            # take the wakeups we are about to serve, so that fileno() reads ready again only for
            # records that come after this drain (after it, a wakeup for new records could be lost)
            self._ep.poll(0, self._max_events)
        out: list[Pair] = []
        try:
            for s in self._sources:
                out.append((s, s.drain(dtype)))  # stored before any check for Ctrl-C
            return [pair for pair in out if len(pair[1])]
        except BaseException:
            _give_back(out)
            raise

    def poll(self, timeout: Optional[float] = None, dtype: Any = None) -> list[Pair]:
        """Wait up to ``timeout`` seconds, then drain every buffer."""
        self.wait(timeout)
        return self.drain(dtype)

    def _next(self, timeout: Optional[float], dtype: Any) -> Optional[list[Pair]]:
        """Drain, waiting up to ``timeout`` (None: forever) when nothing is there: the pairs (empty
        after an idle timeout), or None on Ctrl-C, which may land in the wait or in a drain."""
        try:
            while True:
                due = self.settle()  # a look without a syscall spares the empty drain before a wait
                if (due is None or due > 0) and not self.wait(timeout):
                    # one last look: wakeups may be batched (watermark), data can sit without one
                    return self.drain(dtype)
                got = self.drain(dtype)
                if got:
                    return got
                # a drain can come back empty (only loss notices, busy records, records an
                # interrupted drain had not committed): wait again
        except KeyboardInterrupt:
            self.interrupted = True
            return None

    # Ctrl-C can land anywhere in these loops, also in the generator's own frame as it resumes
    # after a yield (the pair it yielded was taken): the pairs not yet yielded go back to the
    # buffers they came from (_HandOut.give_back) and the loop ends as after a wait.

    def __iter__(self) -> Generator[Pair, None, None]:
        """``(buffer, batch)`` pairs as they arrive; ends on Ctrl-C."""
        return self._loop(None, None)

    def read(self, timeout: float = 1.0, dtype: Any = None) -> Generator[Pair, None, None]:
        """``(buffer, batch)`` pairs until nothing arrives for ``timeout`` seconds (or Ctrl-C)."""
        return self._loop(timeout, dtype)

    def _loop(self, timeout: Optional[float], dtype: Any,
              deadline: Optional[float] = None) -> Generator[Pair, None, None]:
        """Pairs until idle for ``timeout`` (None: never), the monotonic ``deadline``, or Ctrl-C."""
        self.interrupted = False
        out = _HandOut()
        try:
            while True:
                wait_for = timeout
                if deadline is not None:
                    left = max(0.0, deadline - time.monotonic())
                    wait_for = left if wait_for is None else min(wait_for, left)
                fresh = self._next(wait_for, dtype)
                if not fresh:  # Ctrl-C, idle for `timeout`, or the deadline came while waiting
                    return
                out.refill(fresh)
                while out:
                    yield out.take()
                if deadline is not None and time.monotonic() >= deadline:
                    return
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            out.give_back()  # the consumer left the loop, or Ctrl-C

    def run(self, timeout: Optional[float] = None, duration: Optional[float] = None) -> int:
        """Deliver batches to the callbacks until idle for ``timeout`` s, ``duration`` s elapsed, or
        Ctrl-C. Buffers without a callback are drained and their batches dropped. Returns the
        number of records delivered (a batch counts once its callback was called: Ctrl-C inside a
        callback interrupts *it*; batches not given to a callback yet stay for the next read)."""
        deadline = None if duration is None else time.monotonic() + duration
        total = 0
        pairs = self._loop(timeout, None, deadline)
        try:
            for src, batch in pairs:
                total += len(batch)
                cb = self._callbacks.get(id(src))
                if cb is not None:
                    cb(batch)
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            pairs.close()
        return total

    async def aiter(self, timeout: Optional[float] = None) -> AsyncGenerator[Pair, None]:
        """``async for buf, batch in poller.aiter()``: waits on the event loop, not in a thread;
        ends after ``timeout`` seconds without records when given, or on a KeyboardInterrupt
        raised in it (under ``asyncio.run`` Ctrl-C cancels the task instead, as usual)."""
        import asyncio  # only async users pay for it (~25 ms with ssl)

        self.interrupted = False
        loop = asyncio.get_running_loop()
        fd = self._epoll().fileno()  # not fileno(): this loop looks every max_latency() itself
        idle_since = time.monotonic()
        out = _HandOut()
        try:
            while True:
                due = self.settle()
                if due is not None and due <= 0:
                    got = self.drain()
                    if got:
                        out.refill(got)
                        while out:
                            yield out.take()
                        idle_since = time.monotonic()
                        continue
                    if due <= 0:  # e.g. a record still being written: look again, as wait() does
                        await asyncio.sleep(0)
                        continue
                wait_for = None
                if timeout is not None:
                    wait_for = timeout - (time.monotonic() - idle_since)
                    if wait_for <= 0:
                        if due is not None:  # a last look, as read() does
                            got = self.drain()
                            out.refill(got)
                            while out:
                                yield out.take()
                        return
                cap = self._latency_cap()
                if cap is not None:
                    wait_for = cap if wait_for is None else min(wait_for, cap)
                if due is not None and due > 0:
                    # gathering: a nap, as wait() does
                    await asyncio.sleep(due if wait_for is None else min(wait_for, due))
                    continue
                for s in self._sources:
                    self._sync(s)
                ready = asyncio.Event()
                loop.add_reader(fd, ready.set)
                try:
                    try:
                        await asyncio.wait_for(ready.wait(), wait_for)
                    except asyncio.TimeoutError:
                        pass
                finally:
                    loop.remove_reader(fd)
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            out.give_back()

    def __aiter__(self) -> AsyncIterator[Pair]:
        return self.aiter()

    # -- lifetime ---------------------------------------------------------------------
    def close(self) -> None:
        """Close the epoll fd (the buffers stay open)."""
        if self._ep is not None:
            self._ep.close()
            self._ep = None

    def __repr__(self) -> str:
        return f"<Poller {[getattr(s, 'name', s) for s in self._sources]}>"


def _give_back(pairs: list[Pair]) -> None:
    """Return batches a poller drained but could not deliver to their buffers, in order."""
    for src, batch in reversed(pairs):
        if len(batch):
            src.give_back(batch)
