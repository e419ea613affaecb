"""Map types by family, and the kernel's description of a map.

Example::

    map_type_id("percpu_hash")     # 5
    info = map_info(fd)            # MapInfo(id=..., type_name='hash', ...)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from .. import _sys as sc
from ..errors import MapError

__all__ = ["PERCPU_TYPES", "ARRAY_TYPES", "FD_ARRAY_TYPES", "READABLE_FD_ARRAYS", "HASH_TYPES",
           "LOCAL_STORAGE_TYPES", "NO_BTF_TYPES", "EVENT_TYPES", "MapInfo", "map_info", "map_type_id"]

PERCPU_TYPES = {sc.BPF_MAP_TYPE_PERCPU_HASH, sc.BPF_MAP_TYPE_PERCPU_ARRAY,
                sc.BPF_MAP_TYPE_LRU_PERCPU_HASH, sc.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE}
ARRAY_TYPES = {sc.BPF_MAP_TYPE_ARRAY, sc.BPF_MAP_TYPE_PERCPU_ARRAY, sc.BPF_MAP_TYPE_PROG_ARRAY,
               sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY, sc.BPF_MAP_TYPE_CGROUP_ARRAY,
               sc.BPF_MAP_TYPE_ARRAY_OF_MAPS}
# arrays whose slots hold fds (programs, perf events, cgroups, maps): a slot is empty or set,
# never zero, so they are emptied by deleting and counted by their occupied slots
FD_ARRAY_TYPES = {sc.BPF_MAP_TYPE_PROG_ARRAY, sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY, sc.BPF_MAP_TYPE_CGROUP_ARRAY,
                  sc.BPF_MAP_TYPE_ARRAY_OF_MAPS}
# fd arrays user space can read back (as ids); perf event / cgroup arrays refuse lookups
READABLE_FD_ARRAYS = {sc.BPF_MAP_TYPE_PROG_ARRAY, sc.BPF_MAP_TYPE_ARRAY_OF_MAPS}
HASH_TYPES = {sc.BPF_MAP_TYPE_HASH, sc.BPF_MAP_TYPE_PERCPU_HASH, sc.BPF_MAP_TYPE_LRU_HASH,
              sc.BPF_MAP_TYPE_LRU_PERCPU_HASH, sc.BPF_MAP_TYPE_HASH_OF_MAPS}
LOCAL_STORAGE_TYPES = {sc.BPF_MAP_TYPE_TASK_STORAGE, sc.BPF_MAP_TYPE_INODE_STORAGE,
                       sc.BPF_MAP_TYPE_SK_STORAGE, sc.BPF_MAP_TYPE_CGRP_STORAGE}
# types whose kernel implementation rejects key/value BTF (map_check_btf)
NO_BTF_TYPES = {sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY, sc.BPF_MAP_TYPE_PROG_ARRAY, sc.BPF_MAP_TYPE_CGROUP_ARRAY,
                sc.BPF_MAP_TYPE_ARRAY_OF_MAPS, sc.BPF_MAP_TYPE_HASH_OF_MAPS, sc.BPF_MAP_TYPE_RINGBUF,
                sc.BPF_MAP_TYPE_STACK_TRACE, sc.BPF_MAP_TYPE_QUEUE, sc.BPF_MAP_TYPE_STACK,
                sc.BPF_MAP_TYPE_BLOOM_FILTER, sc.BPF_MAP_TYPE_USER_RINGBUF, sc.BPF_MAP_TYPE_DEVMAP,
                sc.BPF_MAP_TYPE_SOCKMAP, sc.BPF_MAP_TYPE_SOCKHASH, sc.BPF_MAP_TYPE_CPUMAP, sc.BPF_MAP_TYPE_XSKMAP}
# event buffers: read through a reader (bpfkit.events), not by key
EVENT_TYPES = {sc.BPF_MAP_TYPE_RINGBUF, sc.BPF_MAP_TYPE_USER_RINGBUF, sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY}


def map_type_id(map_type: Union[int, str]) -> int:
    """``"percpu_hash"`` / ``"BPF_MAP_TYPE_PERCPU_HASH"`` / 5 → 5."""
    if isinstance(map_type, int):
        return map_type
    name = map_type.lower().removeprefix("bpf_map_type_")
    for k, v in sc.MAP_TYPE_NAMES.items():
        if v == name:
            return k
    raise MapError(f"unknown map type {map_type!r}; known: {', '.join(sorted(sc.MAP_TYPE_NAMES.values()))}")


@dataclass(frozen=True)
class MapInfo:
    """The kernel's description of a map (BPF_OBJ_GET_INFO_BY_FD)."""

    id: int
    type: int
    type_name: str
    name: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_id: int
    btf_key_type_id: int
    btf_value_type_id: int
    map_extra: int


def map_info(fd: int) -> MapInfo:
    """:class:`MapInfo` of a map fd."""
    i = sc.map_info(fd)
    return MapInfo(id=int(i.id), type=int(i.type), type_name=sc.MAP_TYPE_NAMES.get(i.type, str(i.type)),
                   name=i.name.decode(errors="replace"), key_size=int(i.key_size),
                   value_size=int(i.value_size), max_entries=int(i.max_entries), flags=int(i.map_flags),
                   btf_id=int(i.btf_id), btf_key_type_id=int(i.btf_key_type_id),
                   btf_value_type_id=int(i.btf_value_type_id), map_extra=int(i.map_extra))
