"""Events at kernel speed: ring buffers and perf buffers read as numpy batches.

Everything here is also reachable from a loaded object (``obj.maps.events`` is a
:class:`RingBuffer`, a perf event array a :class:`PerfBuffer`); this module gathers the pieces.

Example::

    from bpfkit.events import Poller, to_dicts

    with bpfkit.load("tool.bpf.o") as obj, obj.attach():
        obj.maps.pevents.open()
        for buf, batch in Poller(obj.maps.events, obj.maps.pevents):   # Ctrl-C ends the loop
            print(buf.name, to_dicts(batch[:3]), buf.stats())
"""
from __future__ import annotations

from .maps.perfbuf import PerfBuffer
from .maps.poller import EventSource, Poller
from .maps.records import Batch, RawBatch, decode_strings, to_dicts, to_pandas
from .maps.ringbuf import RingBuffer

__all__ = ["RingBuffer", "PerfBuffer", "Poller", "EventSource", "Batch", "RawBatch", "decode_strings",
           "to_dicts", "to_pandas"]
