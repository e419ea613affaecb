"""BPF maps as numpy-friendly Python objects.

:func:`map_class` picks the class for a map type; event buffers (ring buffer, perf
buffer) have their own readers.
"""
from __future__ import annotations

from typing import Callable

from .. import _sys as sc
from .globals import GlobalVars
from .map import Map

# map type -> factory with Map's constructor signature; readers register themselves here
MAP_CLASSES: dict[int, Callable[..., Map]] = {}


def map_class(map_type: int) -> Callable[..., Map]:
    """The Python class used for a map of ``map_type``."""
    if map_type == sc.BPF_MAP_TYPE_RINGBUF and map_type not in MAP_CLASSES:
        from .ringbuf import RingBuffer

        MAP_CLASSES[map_type] = RingBuffer
    if map_type == sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY and map_type not in MAP_CLASSES:
        from .perfbuf import PerfBuffer

        MAP_CLASSES[map_type] = PerfBuffer
    if not _registered:
        _register_types()
    return MAP_CLASSES.get(map_type, Map)


_registered = False


def _register_types() -> None:
    # lazily: the per-type classes (array/lpm/queue/...) live in bpfkit.maps.types
    global _registered
    from .types import register

    register(MAP_CLASSES)
    _registered = True


__all__ = ["Map", "GlobalVars", "map_class", "MAP_CLASSES"]
