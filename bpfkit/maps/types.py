"""Which Map subclass serves which map type (merged into ``bpfkit.maps.MAP_CLASSES``)."""
from __future__ import annotations

from typing import Callable

from .. import _sys as sc
from .array import ArrayMap
from .lpm import LpmTrie
from .map import Map
from .nested import MapOfMaps
from .queue import BloomFilter, QueueMap, StackMap
from .stacktrace import StackTraceMap
from .storage import LocalStorage

TYPE_CLASSES: dict[int, Callable[..., Map]] = {
    sc.BPF_MAP_TYPE_ARRAY: ArrayMap,
    sc.BPF_MAP_TYPE_PERCPU_ARRAY: ArrayMap,
    sc.BPF_MAP_TYPE_LPM_TRIE: LpmTrie,
    sc.BPF_MAP_TYPE_QUEUE: QueueMap,
    sc.BPF_MAP_TYPE_STACK: StackMap,
    sc.BPF_MAP_TYPE_BLOOM_FILTER: BloomFilter,
    sc.BPF_MAP_TYPE_ARRAY_OF_MAPS: MapOfMaps,
    sc.BPF_MAP_TYPE_HASH_OF_MAPS: MapOfMaps,
    sc.BPF_MAP_TYPE_STACK_TRACE: StackTraceMap,
    sc.BPF_MAP_TYPE_TASK_STORAGE: LocalStorage,
    sc.BPF_MAP_TYPE_INODE_STORAGE: LocalStorage,
    sc.BPF_MAP_TYPE_SK_STORAGE: LocalStorage,
    sc.BPF_MAP_TYPE_CGRP_STORAGE: LocalStorage,
}


def register(registry: dict[int, Callable[..., Map]]) -> None:
    """Add the classes above without replacing ones registered by others."""
    for t, cls in TYPE_CLASSES.items():
        registry.setdefault(t, cls)
