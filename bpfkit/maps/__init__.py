"""BPF maps as numpy-friendly Python objects.

:class:`Map` is a dict-like map with numpy keys and values and bulk numpy operations; map types
with behaviour of their own subclass it (arrays with an mmap'd view, LPM tries, queues, stacks,
bloom filters, maps of maps, stack traces, local storage). ``Map.class_for(type)`` picks the class.
Event buffers (ring buffer, perf buffer) are plain maps: their records are read through
:mod:`bpfkit.events` readers.

Example::

    from bpfkit.maps import Map
    m = Map.create("hash", "u4", "u8", 1024)
"""
from .._sys.args import NameTruncatedWarning
from .array import ArrayMap
from .kinds import MapInfo, map_info, map_type_id
from .lpm import LpmTrie
from .map import Map
from .nested import MapOfMaps
from .queue import BloomFilter, QueueMap, StackMap
from .stacktrace import StackTraceMap
from .storage import LocalStorage

__all__ = ["Map", "MapInfo", "map_info", "map_type_id", "ArrayMap", "LpmTrie", "MapOfMaps", "QueueMap", "StackMap",
           "BloomFilter", "StackTraceMap", "LocalStorage", "NameTruncatedWarning"]
