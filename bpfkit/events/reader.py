"""What every event buffer reader shares: the record dtype, the BPF-side drop counter, the hold-back
ledger, and the ways to consume (iterate, ``read()`` until idle, ``run()`` with a callback,
``async for``), all built on a one-buffer :class:`~bpfkit.events.poller.Poller`.

A reader takes a map (as cilium/ebpf's ``ringbuf.NewReader(m)`` does) and owns what reading needs
(mmaps, perf event fds); the map itself stays its owner's. The usual way to get one is
``obj.reader("events")``, which also binds the object's BTF and drop counter.

Example::

    rb = obj.reader("events")
    for batch in rb.read(timeout=1.0):        # Ctrl-C ends the loop; rb.interrupted tells
        print(batch["pid"], rb.dropped)
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, AsyncIterator, Iterator, Optional

import numpy as np

from .._sys import Resource
from ..btf import Btf, Kind
from ..errors import BpfUsageError, ClosedError
from .batch import Batch
from .ledger import Ledger
from .poller import Callback, Poller

if TYPE_CHECKING:
    from ..maps import Map

__all__ = ["EventReader", "COALESCE"]

# How long a few records that came during a drain may wait for more before a poller reads them
# (EventReader.coalesce): a Python reader that chased a fast producer would pay its fixed cost per
# read for a handful of records each time.
COALESCE = 0.001


class EventReader(Resource):
    """Base of :class:`~bpfkit.events.RingBuffer` and :class:`~bpfkit.events.PerfBuffer`.
    Subclasses provide :meth:`poll_fds`, :meth:`pending`, :meth:`drain` and :meth:`give_back`.

    ``dtype`` is the record dtype (default: the map's ``record_dtype``, from ``BPFKIT_RINGBUF`` /
    ``BPFKIT_PERFBUF``; None means variable-size records, read as RawBatch). ``btf`` lets C type
    names serve as dtypes; ``drops`` is a 1-element view of the object's ``__bpfkit_drops__<map>``
    global (``bpfkit.h``), read by :attr:`dropped`.
    """

    fd_generation = 0  # bumped when poll_fds() changes, so pollers re-register
    coalesce = COALESCE  # seconds; see settle() of each reader. 0: read whatever is there at once
    _drained_at = 0.0  # time.monotonic() when the last drain started
    _found_at = 0.0    # ... the last drain that found records started
    _gap = 1e9         # seconds between the last two drains that found records

    def __init__(self, map: "Map", dtype: Any = None, *, btf: Optional[Btf] = None,
                 drops: Optional[np.ndarray] = None) -> None:
        self._map = map
        self.name = map.name
        if dtype is None:
            dtype = map.record_dtype
        self.dtype: Optional[np.dtype] = np.dtype(dtype) if dtype is not None else None
        self._ledger = Ledger(map.name)
        self._btf = btf
        self._named: dict[str, np.dtype] = {}
        self._drops = drops
        self._poller: Optional[Poller] = None
        self._closed = False

    @property
    def map(self) -> "Map":
        """The map this reader reads."""
        return self._map

    @property
    def fd(self) -> int:
        """The map's fd (ClosedError once the map or this reader is closed)."""
        if self._closed:
            raise ClosedError(f"the reader of {self.name!r} is closed")
        return self._map.fd

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
        """The record dtype ``drain(dtype)`` uses: the reader's own for None (None again when it
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
        if self._btf is None:
            raise BpfUsageError(f"{self.name!r}: dtype {asked!r} is not a numpy dtype, and C type names need "
                                "the object's BTF, which this reader was not given; get the reader with "
                                "obj.reader(name) (or pass btf=obj.btf), or pass a numpy dtype")
        for kind in (Kind.STRUCT, Kind.UNION, Kind.TYPEDEF):
            try:
                t = self._btf.find(name, kind)
            except LookupError:
                continue
            return self._btf.dtype(t.id)
        raise BpfUsageError(f"{self.name!r}: dtype {asked!r} is neither a numpy dtype nor a struct/union/"
                            "typedef in the object's BTF (a type only appears there if the program uses it)")

    # -- what subclasses implement -------------------------------------------
    def poll_fds(self) -> list[int]:
        """File descriptors that become readable when records arrive."""
        raise NotImplementedError

    def pending(self) -> bool:
        """True if records (or loss notices) are waiting, without a syscall."""
        raise NotImplementedError

    def settle(self) -> Optional[float]:
        """When a poller should read: 0 now, None nothing is there (sleep until a wakeup), ``x``
        seconds: look again then (records gathering, or a dense stream going on)."""
        return 0.0 if self.pending() else None

    def _found(self) -> None:
        """Note that the drain started at ``_drained_at`` found records."""
        self._gap = self._drained_at - self._found_at
        self._found_at = self._drained_at

    def _dense_nap(self) -> Optional[float]:
        """Nothing is there: while records have been coming closer together than ``coalesce``,
        how long to nap before the next look (None: sleep until the kernel's wakeup). A reader
        that slept in epoll through a dense stream would be woken, at the traced process's
        expense, for nearly every record; napping, it reads them in ``coalesce``-sized batches."""
        if self._gap < self.coalesce:
            left = self._found_at + self.coalesce - time.monotonic()
            if left > 0:
                return left
        return None

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

    def give_back(self, batch: Batch) -> None:
        """Take back a batch the last drain() handed out (a Poller could not deliver it): the next
        drain hands it out first, without counting it again."""
        raise NotImplementedError

    # -- built on top ---------------------------------------------------------
    @property
    def interrupted(self) -> bool:
        """Whether the last iteration, read(), run() or aiter() of this buffer ended on Ctrl-C."""
        return self._poller is not None and self._poller.interrupted

    def _own_poller(self) -> Poller:
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
        ``dtype`` as in :meth:`resolve_dtype`.

        Example::

            for batch in rb.read(timeout=1.0): print(len(batch))
        """
        return self._batches(self._own_poller().read(timeout, dtype=dtype))

    def __iter__(self) -> Iterator[Batch]:
        """Yield batches as they arrive, forever; Ctrl-C (or ``break``) ends the loop
        (:attr:`interrupted` is then True)."""
        return self._batches(iter(self._own_poller()))

    def _batches(self, pairs: Any) -> Iterator[Batch]:
        p = self._own_poller()
        try:
            for _, batch in pairs:
                yield batch
        except KeyboardInterrupt:  # raised here as this generator resumed: end as Poller.read does
            p.interrupted = True
        finally:
            pairs.close()  # now, so a batch the caller did not take goes back to its buffer

    def run(self, callback: Callback, timeout: Optional[float] = None,
            duration: Optional[float] = None) -> int:
        """Call ``callback(batch)`` for every batch until idle for ``timeout`` seconds, ``duration``
        seconds have passed, or Ctrl-C. Returns the number of records delivered.

        Example::

            n = rb.run(lambda b: print(len(b)), duration=5.0)
        """
        p = self._own_poller()
        p.set_callback(self, callback)
        try:
            return p.run(timeout=timeout, duration=duration)
        finally:
            p.set_callback(self, None)

    def __aiter__(self) -> AsyncIterator[Batch]:
        return self.aiter()

    async def aiter(self, timeout: Optional[float] = None) -> AsyncIterator[Batch]:
        """``async for batch in buf.aiter(timeout)``: batches as they arrive; the loop ends after
        ``timeout`` seconds without records when given (otherwise it runs until cancelled).

        Example::

            async for batch in rb.aiter(timeout=1.0): ...
        """
        p = self._own_poller()
        pairs = p.aiter(timeout)
        try:
            async for _, batch in pairs:
                yield batch
        except KeyboardInterrupt:
            p.interrupted = True
        finally:
            await pairs.aclose()

    def close(self) -> None:
        """Stop polling and release what reading holds (subclasses: mmaps, perf events). The map
        stays open: it belongs to its object. Idempotent."""
        self._close_poller()
        self._closed = True
