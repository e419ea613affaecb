"""Waiting for events: one epoll over any number of ring buffers and perf buffers.

Every event buffer (:class:`~bpfkit.maps.ringbuf.RingBuffer`,
:class:`~bpfkit.maps.perfbuf.PerfBuffer`) is an :class:`EventSource`: it can be iterated, read
until idle, driven by a callback or consumed with ``async for``. A :class:`Poller` does the same
for several buffers at once and yields ``(buffer, batch)`` pairs.

Ctrl-C ends iterations, ``read()``, ``run()`` and ``aiter()`` cleanly wherever it lands -- while
waiting or while records are being copied out (``poller.interrupted`` tells you it happened).
No record is lost or delivered twice: records whose space was already handed back to the producer
when the interrupt came are kept by their buffer and come first from the next drain; the others
are still in the kernel buffer. A bare ``drain()``/``poll()`` lets KeyboardInterrupt through, with
the same guarantee.

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
from typing import TYPE_CHECKING, Any, AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Optional

import numpy as np

from ..errors import BpfUsageError, ClosedError
from .records import Batch, convert, join, split

if TYPE_CHECKING:
    from ..btf import Btf

Callback = Callable[[Batch], Any]
Pair = tuple["EventSource", Batch]


DROPS_PREFIX = "__bpfkit_drops__"


class Held:
    """Records copied out of a kernel ring but not yet handed to the caller.

    ``ring.committed()`` is that ring's consumer position; ``end`` the position just after these
    records. An entry is stored *before* its commit, so an interrupt between the two leaves an
    entry whose ``end`` is past the commit: it is dropped and the records are read again.
    ``counted`` entries were handed out once and given back (a Poller interrupted before it could
    deliver them): always valid, not counted again."""

    __slots__ = ("batch", "ring", "end", "skipped", "other", "counted")

    def __init__(self, batch: Optional[Batch], ring: Any, end: int, skipped: int = 0, other: int = 0,
                 counted: bool = False) -> None:
        self.batch = batch      # None: the span held only skipped records
        self.ring = ring
        self.end = end
        self.skipped = skipped  # discarded (ring buffer) / reported lost (perf buffer) on the way
        self.other = other      # perf records of other types
        self.counted = counted

    def __len__(self) -> int:
        return 0 if self.batch is None else len(self.batch)


class EventSource:
    """Mixin for event buffers. Subclasses provide :meth:`poll_fds`, :meth:`pending` and
    :meth:`drain`; waiting, iteration, callbacks and asyncio come from here."""

    name: str
    dtype: Optional[np.dtype]
    fd_generation = 0  # bumped when poll_fds() changes, so pollers re-register
    _poller: Optional["Poller"] = None
    _drops: Optional[Any] = None  # 1-element view of __bpfkit_drops__<name> in the object's globals

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._held: list[Held] = []
        self._btf: Optional["Btf"] = None
        self._named: dict[str, np.dtype] = {}

    # -- hooks the Object calls after load ----------------------------------------
    def bind_globals(self, sections: dict[str, Any]) -> None:
        """Hook called by the Object after load: find this buffer's drop counter
        (``__bpfkit_drops__<name>`` in ``.bss``/``.data``, declared by ``bpfkit.h``)."""
        var = DROPS_PREFIX + self.name
        for sec in (".bss", ".data"):
            gv = sections.get(sec)
            if gv is not None and gv.dtype.names and var in gv.dtype.names:
                self._drops = gv.array[var]
                return

    def bind_btf(self, btf: Optional["Btf"]) -> None:
        """Hook called by the Object after load with the object's BTF, so that a C type name
        works as a dtype (``rb.drain(dtype="event")``)."""
        self._btf = btf
        self._named.clear()

    # -- the BPF-side drop counter (bpfkit.h) ------------------------------------
    @property
    def dropped(self) -> int:
        """Records the BPF side failed to submit (full buffer, or no reader on that CPU), counted by
        ``bpfkit.h``'s reserve/output helpers; 0 if the program does not use them."""
        return int(self._drops[0]) if self._drops is not None else 0

    @property
    def has_drop_counter(self) -> bool:
        """Whether the object declares ``__bpfkit_drops__<name>`` (BPFKIT_RINGBUF / BPFKIT_PERFBUF)."""
        return self._drops is not None

    # -- dtypes --------------------------------------------------------------------
    def resolve_dtype(self, dtype: Any = None) -> Optional[np.dtype]:
        """The record dtype ``drain(dtype)`` uses: the buffer's own for None (None again when it
        has none: variable-size records); anything ``np.dtype`` accepts; or the name of a C struct,
        union or typedef in the object's BTF (``"event"``, ``"struct event"``). A string numpy
        understands (``"u8"``) means numpy's type; write ``"struct NAME"`` to force the C one.

        Example::

            rb.drain(dtype="event")   # a ring buffer declared without BPFKIT_RINGBUF
        """
        if dtype is None:
            return self.dtype
        if not isinstance(dtype, str):
            return np.dtype(dtype)
        name = dtype.strip()
        if name in self._named:
            return self._named[name]
        c_name = name.startswith(("struct ", "union "))
        if not c_name:
            try:
                return np.dtype(name)
            except TypeError:
                pass
        dt = self._btf_dtype(name.split(None, 1)[1] if c_name else name, dtype)
        self._named[name] = dt
        return dt

    def _btf_dtype(self, name: str, asked: str) -> np.dtype:
        from ..btf import Kind  # the BTF parser loads only for those who name C types

        if self._btf is None:
            raise BpfUsageError(f"{self.name!r}: dtype {asked!r} is not a numpy dtype, and C type names need "
                                "the object's BTF, which this buffer was not given; load the object with "
                                "bpfkit.load()/spec.load() (or call bind_btf(obj.spec.btf)), or pass a numpy "
                                "dtype")
        for kind in (Kind.STRUCT, Kind.UNION, Kind.TYPEDEF):
            try:
                t = self._btf.find(name, kind)
            except LookupError:
                continue
            return self._btf.dtype(t.id)
        raise BpfUsageError(f"{self.name!r}: dtype {asked!r} is neither a numpy dtype nor a struct/union/"
                            "typedef in the object's BTF (a type only appears there if the program uses it)")

    # -- records read but not handed out yet -------------------------------------------
    def _hold(self, batch: Optional[Batch], ring: Any, end: int, skipped: int = 0, other: int = 0) -> None:
        # called before the commit of `end`: from here on the records belong to this object
        self._held.append(Held(batch, ring, end, skipped, other))

    def _forget_uncommitted(self) -> None:
        """Drop held records whose commit never happened (an interrupt came between ``_hold`` and
        the commit): they are still in the kernel buffer and are read again. Call before reading."""
        # only the newest entry can be stale: nothing is read after an interrupted commit
        if self._held:
            h = self._held[-1]
            if not h.counted and h.end > h.ring.committed():
                self._held.pop()

    def _unget(self, batch: Batch) -> None:
        """Take back a batch the last drain() handed out (a Poller could not deliver it): the next
        drain hands it out first, without counting it again."""
        self._held.insert(0, Held(batch, self, 0, counted=True))

    def _held_records(self) -> int:
        return sum(len(h) for h in self._held)

    def _split_held(self, max_records: Optional[int]) -> tuple[list[Held], list[Held]]:
        """(entries to hand out now, entries to keep), at most ``max_records`` records handed out."""
        held = self._held
        if max_records is None:
            return held, []
        out: list[Held] = []
        left = max_records
        for i, h in enumerate(held):
            if len(h) <= left:
                out.append(h)
                left -= len(h)
                continue
            keep = held[i:]
            if left > 0:
                assert h.batch is not None
                head, tail = split(h.batch, left)
                out.append(Held(head, h.ring, h.end, h.skipped, h.other, h.counted))
                keep = [Held(tail, h.ring, h.end, counted=h.counted)] + held[i + 1:]
            return out, keep
        return out, []

    def _join_held(self, entries: list[Held], dt: Optional[np.dtype]) -> Batch:
        """One batch of ``dt`` (RawBatch for None) from held entries, converting entries read with
        another dtype by an earlier, interrupted drain."""
        return join([convert(h.batch, dt, self.name) for h in entries if h.batch is not None], dt)

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

    def wake_per_record(self) -> None:
        """Make :meth:`poll_fds` readable as soon as one record is there (for loops that wait on
        :meth:`Poller.fileno` and cannot look periodically). Buffers that already do: no-op."""

    def drain(self, dtype: Any = None, max_records: Optional[int] = None) -> Batch:
        """Everything available now, without waiting."""
        raise NotImplementedError

    # -- built on top ---------------------------------------------------------
    @property
    def interrupted(self) -> bool:
        """Whether the last iteration, read(), run() or aiter() of this buffer ended on Ctrl-C."""
        return self._poller is not None and self._poller.interrupted

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
        """Wait up to ``timeout`` seconds for data, then return one batch (maybe empty). ``dtype``
        as in :meth:`resolve_dtype`."""
        self.wait(timeout)
        return self.drain(dtype)

    def read(self, timeout: float = 1.0, dtype: Any = None) -> Iterator[Batch]:
        """Yield non-empty batches until nothing arrives for ``timeout`` seconds (or Ctrl-C).
        ``dtype`` as in :meth:`resolve_dtype`."""
        p = self._own_poller()
        pairs = p.read(timeout, dtype=dtype)
        try:
            for _, batch in pairs:
                yield batch
        except KeyboardInterrupt:  # raised here as this generator resumed: end as Poller.read does
            p.interrupted = True
        finally:
            pairs.close()  # now, so a batch the caller did not take goes back to its buffer

    def __iter__(self) -> Iterator[Batch]:
        """Yield batches as they arrive, forever; Ctrl-C (or ``break``) ends the loop
        (:attr:`interrupted` is then True)."""
        p = self._own_poller()
        pairs = iter(p)
        try:
            for _, batch in pairs:
                yield batch
        except KeyboardInterrupt:
            p.interrupted = True
        finally:
            pairs.close()

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
        p = self._own_poller()
        pairs = p.aiter(timeout)
        try:
            async for _, batch in pairs:
                yield batch
        except KeyboardInterrupt:
            p.interrupted = True
        finally:
            await pairs.aclose()


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
        self._fds: dict[int, list[int]] = {}  # id(source) -> its fds registered in the epoll
        self._gens: dict[int, int] = {}       # id(source) -> its fd_generation when registered
        self._callbacks: dict[int, Optional[Callback]] = {}
        self._max_events = max_events
        self._external = False  # fileno() was asked for: sources must wake per record
        self.interrupted = False  # the last iteration/read/run/aiter ended on Ctrl-C
        for s in sources:
            self.add(s)

    # -- membership -------------------------------------------------------------
    def add(self, source: EventSource, callback: Optional[Callback] = None) -> None:
        """Watch ``source``; ``callback(batch)`` is used by :meth:`run`."""
        self._epoll()
        if self._external:
            source.wake_per_record()
        self._sync(source)
        self._sources.append(source)
        self._callbacks[id(source)] = callback

    def remove(self, source: EventSource) -> None:
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

    def _sync(self, source: EventSource) -> None:
        """Register the source's current fds: a perf buffer replaces its rings when it switches to
        per-record wakeups (``fd_generation`` tells; a closed fd number may have been reused)."""
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

    def set_callback(self, source: EventSource, callback: Optional[Callback]) -> None:
        """Set (or clear with None) the callback :meth:`run` calls for ``source``'s batches."""
        self._callbacks[id(source)] = callback

    @property
    def sources(self) -> list[EventSource]:
        """The watched buffers."""
        return list(self._sources)

    def fileno(self) -> int:
        """The epoll fd, for select/selectors/asyncio loops: it reads ready when a watched buffer's
        kernel wakeup came; then call :meth:`drain` on this poller (it also takes the wakeups it
        serves, so the fd reads ready again only for later records). Records already waiting when
        you first ask for fileno() do not make it ready: drain() once before waiting.

        A ring buffer wakes on every submit (unless the program passes ``BPF_RB_NO_WAKEUP``). A
        perf buffer opened with the default batched wakeups wakes only every ``watermark`` bytes
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
            while sel.select():
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

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until a buffer has data or ``timeout`` seconds pass; True if data is there."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ep = self._epoll()
        for s in self._sources:
            self._sync(s)
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
        cap = None
        for s in self._sources:
            c = s.max_latency()
            if c is not None and (cap is None or c < cap):
                cap = c
        return cap

    def drain(self, dtype: Any = None) -> list[Pair]:
        """One non-empty batch per buffer that has records, without waiting. ``dtype`` as in
        :meth:`EventSource.resolve_dtype`, for every buffer.

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
                got = self.drain(dtype)
                if got:
                    return got
                # wait() saw data, but a drain can still come back empty (only loss notices,
                # records an interrupted drain had not committed): wait again
                if not self.wait(timeout):
                    # one last look: wakeups may be batched (watermark), data can sit without one
                    return self.drain(dtype)
        except KeyboardInterrupt:
            self.interrupted = True
            return None

    # Ctrl-C can land anywhere in these loops, also in the generator's own frame as it resumes
    # after a yield (the pair it yielded was taken): the pairs not yet yielded go back to the
    # buffers they came from (_give_back) and the loop ends as after a wait. Between taking a
    # batch from a drain and recording it in `got`/`i` there is no call, where CPython could raise.

    def __iter__(self) -> Generator[Pair, None, None]:
        """``(buffer, batch)`` pairs as they arrive; ends on Ctrl-C."""
        return self._loop(None, None)

    def read(self, timeout: float = 1.0, dtype: Any = None) -> Generator[Pair, None, None]:
        """``(buffer, batch)`` pairs until nothing arrives for ``timeout`` seconds (or Ctrl-C)."""
        return self._loop(timeout, dtype)

    def _loop(self, timeout: Optional[float], dtype: Any) -> Generator[Pair, None, None]:
        self.interrupted = False
        got: list[Pair] = []
        i = 0
        try:
            while True:
                fresh = self._next(timeout, dtype)
                if not fresh:
                    return
                got, i = fresh, 0
                while i < len(got):
                    pair = got[i]
                    i += 1
                    yield pair
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            if i < len(got):  # the consumer left the loop, or Ctrl-C
                _give_back(got[i:])

    def run(self, timeout: Optional[float] = None, duration: Optional[float] = None) -> int:
        """Deliver batches to the callbacks until idle for ``timeout`` s, ``duration`` s elapsed, or
        Ctrl-C. Buffers without a callback are drained and their batches dropped. Returns the
        number of records delivered (a batch counts once its callback was called: Ctrl-C inside a
        callback interrupts *it*; batches not given to a callback yet stay for the next read)."""
        self.interrupted = False
        deadline = None if duration is None else time.monotonic() + duration
        total = 0
        got: list[Pair] = []
        i = 0
        try:
            while True:
                wait_for = timeout
                if deadline is not None:
                    left = max(0.0, deadline - time.monotonic())
                    wait_for = left if wait_for is None else min(wait_for, left)
                fresh = self._next(wait_for, None)
                if fresh is None:
                    return total
                got, i = fresh, 0
                while i < len(got):
                    src, batch = got[i]
                    cb = self._callbacks.get(id(src))
                    i += 1
                    total += len(batch)
                    if cb is not None:
                        cb(batch)
                if deadline is not None and time.monotonic() >= deadline:
                    return total
                if not got and timeout is not None and (deadline is None or wait_for == timeout):
                    return total  # idle for `timeout`
        except KeyboardInterrupt:
            self.interrupted = True
            return total
        finally:
            if i < len(got):
                _give_back(got[i:])

    async def aiter(self, timeout: Optional[float] = None) -> AsyncGenerator[Pair, None]:
        """``async for buf, batch in poller.aiter()``: waits on the event loop, not in a thread;
        ends after ``timeout`` seconds without records when given, or on a KeyboardInterrupt
        raised in it (under ``asyncio.run`` Ctrl-C cancels the task instead, as usual)."""
        import asyncio  # only async users pay for it (~25 ms with ssl)

        self.interrupted = False
        loop = asyncio.get_running_loop()
        fd = self._epoll().fileno()  # not fileno(): this loop looks every max_latency() itself
        idle_since = time.monotonic()
        while True:
            try:
                got = self.drain()
            except KeyboardInterrupt:
                self.interrupted = True
                return
            if got:
                i = 0
                try:
                    while i < len(got):
                        pair = got[i]
                        i += 1
                        yield pair
                except KeyboardInterrupt:
                    self.interrupted = True
                    return
                finally:
                    if i < len(got):
                        _give_back(got[i:])
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
            for s in self._sources:
                self._sync(s)
            ready = asyncio.Event()
            loop.add_reader(fd, ready.set)
            try:
                if not self.pending():
                    try:
                        await asyncio.wait_for(ready.wait(), wait_for)
                    except asyncio.TimeoutError:
                        pass
            except KeyboardInterrupt:
                self.interrupted = True
                return
            finally:
                loop.remove_reader(fd)

    def __aiter__(self) -> AsyncIterator[Pair]:
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


def _give_back(pairs: list[Pair]) -> None:
    """Return batches a poller drained but could not deliver to their buffers, in order."""
    for src, batch in reversed(pairs):
        if len(batch):
            src._unget(batch)
