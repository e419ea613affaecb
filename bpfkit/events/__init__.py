"""Events at kernel speed: ring buffers and perf buffers read as numpy batches.

A reader takes an event-buffer map (``RingBuffer(m)``, ``PerfBuffer(m)``, as cilium/ebpf's
readers do); ``obj.reader(name)`` gives the one for an object's map with its BTF and drop counter
bound. A :class:`Poller` waits on several readers at once. Batches are numpy structured arrays
(fixed-size records) or :class:`RawBatch` (variable-size).

Example::

    from bpfkit.events import Poller, to_dicts

    with bpfkit.load("tool.bpf.o") as obj, obj.attach():
        for buf, batch in Poller(obj.reader("events"), obj.reader("pevents")):   # Ctrl-C ends the loop
            print(buf.name, to_dicts(batch[:3]))
"""
from .batch import Batch, RawBatch, batch_html, batch_text, decode_strings, to_arrow, to_dicts, to_pandas, to_polars
from .perfbuf import PerfBuffer
from .poller import Poller
from .reader import EventReader
from .ringbuf import RingBuffer

__all__ = ["RingBuffer", "PerfBuffer", "EventReader", "Poller", "Batch", "RawBatch", "decode_strings", "to_dicts",
           "to_pandas", "to_arrow", "to_polars", "batch_html", "batch_text"]
