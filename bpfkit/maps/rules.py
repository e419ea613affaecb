"""What the kernel accepts when it creates a map, per map type: the reason behind its bare EINVAL
(or E2BIG) to BPF_MAP_CREATE, in words. :class:`~bpfkit.maps.Map` uses it when a create is refused,
and the loaders when a map of an object is (both backends call :func:`map_create_problem`).

One table (``RULES``): each map type lists the checks its ``*_alloc_check`` in the kernel makes,
in the kernel's order, each a predicate and the message for the map that fails it.

Example::

    map_create_problem(MapShape(sc.BPF_MAP_TYPE_RINGBUF, 0, 0, 12345, 0))
    # 'max_entries 12345 is not a power of 2 multiple of the page size (4096): ...'
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass
from typing import Callable

from .. import _sys as sc

__all__ = ["MapShape", "RULES", "map_create_problem"]

_PAGE = mmap.PAGESIZE
_MAX_BPF_STACK = 512           # the largest hash key (a key lives on the BPF stack)
_PCPU_MIN_UNIT_SIZE = 32 << 10  # the largest per-CPU value
_LPM_DATA_MAX = 256            # an LPM trie key: u32 prefixlen + up to 256 bytes of data
_KNOWN_FLAGS = (1 << 19) - 1   # BPF_F_NO_PREALLOC .. BPF_F_NO_USER_CONV (6.x)
_STORAGE = (sc.BPF_MAP_TYPE_TASK_STORAGE, sc.BPF_MAP_TYPE_INODE_STORAGE, sc.BPF_MAP_TYPE_SK_STORAGE,
            sc.BPF_MAP_TYPE_CGRP_STORAGE)


@dataclass(frozen=True)
class MapShape:
    """What a BPF_MAP_CREATE asks for.

    Example::

        MapShape(sc.BPF_MAP_TYPE_HASH, key_size=4, value_size=8, max_entries=0, flags=0)
    """

    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    map_extra: int = 0
    has_btf: bool = False


Rule = tuple[Callable[[MapShape], bool], Callable[[MapShape], str]]


def _pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def _key(size: int, why: str = "") -> Rule:
    return (lambda m: m.key_size != size,
            lambda m: f"key_size is {m.key_size}; this map type takes a {size}-byte key" + (f" ({why})" if why else ""))


def _value(size: int, why: str = "") -> Rule:
    return (lambda m: m.value_size != size,
            lambda m: f"value_size is {m.value_size}; this map type takes a {size}-byte value" +
            (f" ({why})" if why else ""))


_NONZERO_ENTRIES: Rule = (lambda m: m.max_entries == 0,
                          lambda m: "max_entries is 0: give the number of elements it holds (at least 1)")
_NONZERO_KEY: Rule = (lambda m: m.key_size == 0, lambda m: "key_size is 0: give a key dtype (e.g. 'u4')")
_NONZERO_VALUE: Rule = (lambda m: m.value_size == 0, lambda m: "value_size is 0: give a value dtype (e.g. 'u8')")
_NO_PREALLOC_REFUSED: Rule = (lambda m: bool(m.flags & sc.BPF_F_NO_PREALLOC),
                              lambda m: "BPF_F_NO_PREALLOC is not allowed: this map type is always preallocated")
_NO_PREALLOC_NEEDED: Rule = (lambda m: not m.flags & sc.BPF_F_NO_PREALLOC,
                             lambda m: "BPF_F_NO_PREALLOC is required for this map type")
_NO_MMAPABLE: Rule = (lambda m: bool(m.flags & sc.BPF_F_MMAPABLE),
                      lambda m: "BPF_F_MMAPABLE is only for plain arrays (BPF_MAP_TYPE_ARRAY)")
_PERCPU_VALUE: Rule = (lambda m: m.value_size > _PCPU_MIN_UNIT_SIZE,
                       lambda m: f"value_size {m.value_size} is over the per-CPU limit of {_PCPU_MIN_UNIT_SIZE} bytes")

_HASH: list[Rule] = [
    _NONZERO_ENTRIES, _NONZERO_KEY, _NONZERO_VALUE, _NO_MMAPABLE,
    (lambda m: m.key_size > _MAX_BPF_STACK,
     lambda m: f"key_size {m.key_size} is over {_MAX_BPF_STACK} bytes (a key must fit on the BPF stack)"),
    (lambda m: bool(m.flags & sc.BPF_F_NO_COMMON_LRU),
     lambda m: "BPF_F_NO_COMMON_LRU is only for LRU hashes"),
]
_LRU: list[Rule] = _HASH[:-1] + [  # all but the NO_COMMON_LRU refusal
    (lambda m: bool(m.flags & sc.BPF_F_NO_PREALLOC),
     lambda m: "BPF_F_NO_PREALLOC is not allowed for LRU hashes (they are always preallocated)"),
]
_ARRAY: list[Rule] = [_NONZERO_ENTRIES, _key(4, "the index, a u32"), _NONZERO_VALUE, _NO_PREALLOC_REFUSED]
_FD_ARRAY: list[Rule] = _ARRAY + [_value(4, "an fd going in, an id coming out"), _NO_MMAPABLE]
_QUEUE: list[Rule] = [_NONZERO_ENTRIES, _key(0, "queues and stacks have no key: pass key=None"), _NONZERO_VALUE,
                      _NO_MMAPABLE]
_RINGBUF: list[Rule] = [
    _key(0, "ring buffers have no key"), _value(0, "ring buffers have no value"),
    (lambda m: not _pow2(m.max_entries) or m.max_entries % _PAGE != 0,
     lambda m: f"max_entries {m.max_entries} is not a power of 2 multiple of the page size ({_PAGE}): it is the "
               f"ring's size in bytes, e.g. {max(_PAGE, 1 << max(m.max_entries - 1, 1).bit_length())}"),
]
_STORAGE_RULES: list[Rule] = [
    _key(4, "an fd or pid"), _NONZERO_VALUE, _NO_PREALLOC_NEEDED,
    (lambda m: m.max_entries != 0, lambda m: f"max_entries is {m.max_entries}; local storage maps take 0"),
    (lambda m: not m.has_btf, lambda m: "local storage maps need BTF for their key and value"),
]

RULES: dict[int, list[Rule]] = {
    sc.BPF_MAP_TYPE_HASH: _HASH,
    sc.BPF_MAP_TYPE_PERCPU_HASH: _HASH + [_PERCPU_VALUE],
    sc.BPF_MAP_TYPE_LRU_HASH: _LRU,
    sc.BPF_MAP_TYPE_LRU_PERCPU_HASH: _LRU + [_PERCPU_VALUE],
    sc.BPF_MAP_TYPE_ARRAY: _ARRAY,
    sc.BPF_MAP_TYPE_PERCPU_ARRAY: _ARRAY + [_NO_MMAPABLE, _PERCPU_VALUE],
    sc.BPF_MAP_TYPE_PROG_ARRAY: _FD_ARRAY,
    sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY: _FD_ARRAY,
    sc.BPF_MAP_TYPE_CGROUP_ARRAY: _FD_ARRAY,
    sc.BPF_MAP_TYPE_ARRAY_OF_MAPS: _FD_ARRAY,
    sc.BPF_MAP_TYPE_HASH_OF_MAPS: _HASH + [_value(4, "an inner map's fd going in, its id coming out")],
    sc.BPF_MAP_TYPE_STACK_TRACE: [
        _NONZERO_ENTRIES, _key(4, "the stack id, a u32"),
        (lambda m: m.value_size < 8 or m.value_size % 8 != 0,
         lambda m: f"value_size {m.value_size} is not a multiple of 8: it holds u64 addresses (e.g. 127 * 8)"),
        _NO_MMAPABLE,
    ],
    sc.BPF_MAP_TYPE_LPM_TRIE: [
        _NONZERO_ENTRIES, _NO_PREALLOC_NEEDED,
        (lambda m: not 5 <= m.key_size <= 4 + _LPM_DATA_MAX,
         lambda m: f"key_size {m.key_size} is not 5..{4 + _LPM_DATA_MAX}: an LPM key is a u32 prefix length and "
                   "1 to 256 bytes of data"),
        _NONZERO_VALUE,
    ],
    sc.BPF_MAP_TYPE_QUEUE: _QUEUE,
    sc.BPF_MAP_TYPE_STACK: _QUEUE,
    sc.BPF_MAP_TYPE_RINGBUF: _RINGBUF,
    sc.BPF_MAP_TYPE_USER_RINGBUF: _RINGBUF,
    sc.BPF_MAP_TYPE_BLOOM_FILTER: [
        _NONZERO_ENTRIES, _key(0, "a bloom filter has no key: pass key=None"), _NONZERO_VALUE,
        (lambda m: m.map_extra > 15,
         lambda m: f"map_extra {m.map_extra} is not 0..15: it is the number of hash functions (0 means 5)"),
    ],
    **{t: _STORAGE_RULES for t in _STORAGE},
}

_COMMON: list[Rule] = [
    (lambda m: bool(m.flags & ~_KNOWN_FLAGS), lambda m: f"flags {m.flags:#x} has bits no kernel defines"),
    (lambda m: bool(m.flags & sc.BPF_F_RDONLY_PROG and m.flags & sc.BPF_F_WRONLY_PROG),
     lambda m: "BPF_F_RDONLY_PROG and BPF_F_WRONLY_PROG together leave programs no access"),
    (lambda m: bool(m.flags & sc.BPF_F_RDONLY and m.flags & sc.BPF_F_WRONLY),
     lambda m: "BPF_F_RDONLY and BPF_F_WRONLY together leave user space no access"),
    (lambda m: m.map_extra != 0 and m.map_type != sc.BPF_MAP_TYPE_BLOOM_FILTER,
     lambda m: f"map_extra is {m.map_extra}; only bloom filters take it"),
]


def map_create_problem(m: MapShape) -> str:
    """Why the kernel refuses to create map ``m`` (the first rule it fails), or "" when no rule
    here explains it.

    Example::

        map_create_problem(MapShape(sc.BPF_MAP_TYPE_HASH, 4, 8, 0, 0))   # 'max_entries is 0: ...'
    """
    for check, say in _COMMON + RULES.get(m.map_type, []):
        if check(m):
            return say(m)
    return ""
