"""A loaded object's ring or perf buffer map, which also reads: ``obj.maps.events.read()`` is
``obj.reader("events").read()``.

Why: scripts written against bpfkit's first API (among them the peer benchmark kit's bpfkit peer)
read through the map. The reader stays its own object, made and owned by the :class:`Object`;
the map only forwards to it, through a weak reference so the map does not keep its object alive.
"""
from __future__ import annotations

import weakref
from typing import Any, AsyncIterator, Callable, Iterator, Optional

from ..errors import ClosedError
from ..events import Batch, EventReader
from ..maps import Map

__all__ = ["BufferMap"]


class BufferMap(Map):
    """A ring or perf buffer map of an :class:`Object`; the reading methods are its reader's
    (``obj.reader(name)``, the one way documented first).

    Example::

        for batch in obj.maps.events.read(timeout=1.0):   # same as obj.reader("events").read(...)
            print(len(batch))
    """

    _reader_ref: Optional[weakref.WeakMethod[Callable[[str], EventReader]]] = None

    def bind_reader(self, reader_of: Callable[[str], EventReader]) -> None:
        """Forward reading to ``reader_of(name)`` (a bound method of the owning object)."""
        self._reader_ref = weakref.WeakMethod(reader_of)

    @property
    def reader(self) -> EventReader:
        """The object's reader of this buffer."""
        method = self._reader_ref() if self._reader_ref is not None else None
        if method is None:
            raise ClosedError(f"map {self.name!r}: its object is gone; read through obj.reader({self.name!r})")
        reader: EventReader = method(self.name)
        return reader

    def read(self, timeout: float = 1.0, dtype: Any = None) -> Iterator[Batch]:
        """:meth:`EventReader.read` of this buffer."""
        return self.reader.read(timeout, dtype)

    def run(self, callback: Callable[[Batch], Any], timeout: Optional[float] = None,
            duration: Optional[float] = None) -> int:
        """:meth:`EventReader.run` of this buffer."""
        return self.reader.run(callback, timeout=timeout, duration=duration)

    def aiter(self, timeout: Optional[float] = None) -> AsyncIterator[Batch]:
        """:meth:`EventReader.aiter` of this buffer."""
        return self.reader.aiter(timeout)

    def drain(self, dtype: Any = None, max_records: Optional[int] = None) -> Batch:
        """:meth:`EventReader.drain` of this buffer."""
        return self.reader.drain(dtype, max_records)

    def poll(self, timeout: Optional[float] = None, dtype: Any = None) -> Batch:
        """:meth:`EventReader.poll` of this buffer."""
        return self.reader.poll(timeout, dtype)

    @property
    def interrupted(self) -> bool:
        """Whether the last read of this buffer ended on Ctrl-C."""
        return self.reader.interrupted

    @property
    def dropped(self) -> int:
        """Records the BPF side could not submit (bpfkit.h's counter)."""
        return self.reader.dropped

    @property
    def lost(self) -> int:
        """Records the kernel lost to a full buffer (perf buffers; 0 for a ring buffer)."""
        return int(getattr(self.reader, "lost", 0))
