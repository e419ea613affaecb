"""The map commands of ``bpf(2)``: create, look up, update, delete, iterate, batch, freeze.

Example::

    fd = sc.map_create(sc.BPF_MAP_TYPE_HASH, 4, 8, 1024, name="counts")
    sc.map_update(fd, np.array([1], np.uint32), np.array([2], np.uint64))
"""
from __future__ import annotations

import io
from typing import Any

from .args import check_cstr
from .attrs import MapBatchAttr, MapCreateAttr, MapElemAttr, MapFreezeAttr
from .bpf import bpf, bpf_errno, bpf_owned, buf_addr, errno_error
from .consts import (BPF_ANY, BPF_MAP_CREATE, BPF_MAP_DELETE_ELEM, BPF_MAP_FREEZE, BPF_MAP_GET_NEXT_KEY,
                     BPF_MAP_LOOKUP_AND_DELETE_ELEM, BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_OBJ_NAME_LEN,
                     MAP_TYPE_NAMES)

__all__ = [
    "map_create", "map_create_owned", "map_lookup", "map_update", "map_delete", "map_lookup_and_delete", "map_get_next_key",
    "map_batch", "map_freeze",
]


def _map_create_attr(map_type: int, key_size: int, value_size: int, max_entries: int, flags: int, name: str,
                     inner_map_fd: int, btf_fd: int, btf_key_type_id: int, btf_value_type_id: int,
                     map_extra: int) -> tuple[MapCreateAttr, str]:
    attr = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                         max_entries=max_entries, map_flags=flags, inner_map_fd=inner_map_fd,
                         map_name=check_cstr("map name", name).encode()[: BPF_OBJ_NAME_LEN - 1], btf_fd=btf_fd,
                         btf_key_type_id=btf_key_type_id, btf_value_type_id=btf_value_type_id,
                         map_extra=map_extra)
    return attr, f"map '{name}' ({MAP_TYPE_NAMES.get(map_type, map_type)})"


def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, *, flags: int = 0,
               name: str = "", inner_map_fd: int = 0, btf_fd: int = 0, btf_key_type_id: int = 0,
               btf_value_type_id: int = 0, map_extra: int = 0) -> int:
    """BPF_MAP_CREATE; returns the new map's fd.

    Example::

        fd = sc.map_create(sc.BPF_MAP_TYPE_ARRAY, 4, 8, 16, name="counts")
    """
    attr, what = _map_create_attr(map_type, key_size, value_size, max_entries, flags, name, inner_map_fd, btf_fd,
                                  btf_key_type_id, btf_value_type_id, map_extra)
    return bpf(BPF_MAP_CREATE, attr, what)


def map_create_owned(map_type: int, key_size: int, value_size: int, max_entries: int, *, flags: int = 0,
                     name: str = "", inner_map_fd: int = 0, btf_fd: int = 0, btf_key_type_id: int = 0,
                     btf_value_type_id: int = 0, map_extra: int = 0) -> io.FileIO:
    """:func:`map_create` returning the fd inside an ``io.FileIO`` that closes it once, when
    closed or dropped (see :func:`bpf_owned`).

    Example::

        f = sc.map_create_owned(sc.BPF_MAP_TYPE_ARRAY, 4, 8, 16, name="counts")
    """
    attr, what = _map_create_attr(map_type, key_size, value_size, max_entries, flags, name, inner_map_fd, btf_fd,
                                  btf_key_type_id, btf_value_type_id, map_extra)
    return bpf_owned(BPF_MAP_CREATE, attr, what)


def map_lookup(fd: int, key: Any, value: Any, flags: int = 0, what: str = "") -> bool:
    """BPF_MAP_LOOKUP_ELEM into ``value``; False when the key is absent.

    Example::

        key, value = np.array([0], np.uint32), np.zeros(1, np.uint64)
        if sc.map_lookup(fd, key, value): print(value[0])
    """
    attr = MapElemAttr(map_fd=fd, key=buf_addr(key), value=buf_addr(value), flags=flags)
    ret, err = bpf_errno(BPF_MAP_LOOKUP_ELEM, attr)
    if ret == 0:
        return True
    if err == 2:  # ENOENT
        return False
    raise errno_error(BPF_MAP_LOOKUP_ELEM, what, err)


def map_update(fd: int, key: Any, value: Any, flags: int = BPF_ANY, what: str = "") -> None:
    """BPF_MAP_UPDATE_ELEM.

    Example::

        sc.map_update(fd, np.array([0], np.uint32), np.array([42], np.uint64))
    """
    attr = MapElemAttr(map_fd=fd, key=buf_addr(key), value=buf_addr(value), flags=flags)
    bpf(BPF_MAP_UPDATE_ELEM, attr, what)


def map_delete(fd: int, key: Any, what: str = "") -> bool:
    """BPF_MAP_DELETE_ELEM; False when the key was absent.

    Example::

        sc.map_delete(hash_fd, np.array([7], np.uint32))   # False if 7 was not there
    """
    attr = MapElemAttr(map_fd=fd, key=buf_addr(key))
    ret, err = bpf_errno(BPF_MAP_DELETE_ELEM, attr)
    if ret == 0:
        return True
    if err == 2:
        return False
    raise errno_error(BPF_MAP_DELETE_ELEM, what, err)


def map_lookup_and_delete(fd: int, key: Any, value: Any, flags: int = 0, what: str = "") -> bool:
    """BPF_MAP_LOOKUP_AND_DELETE_ELEM (pop for queue/stack with key=None); False when empty/absent.

    Example::

        value = np.zeros(1, np.uint64)
        if sc.map_lookup_and_delete(queue_fd, None, value): print(value[0])
    """
    attr = MapElemAttr(map_fd=fd, key=buf_addr(key), value=buf_addr(value), flags=flags)
    ret, err = bpf_errno(BPF_MAP_LOOKUP_AND_DELETE_ELEM, attr)
    if ret == 0:
        return True
    if err == 2:
        return False
    raise errno_error(BPF_MAP_LOOKUP_AND_DELETE_ELEM, what, err)


def map_get_next_key(fd: int, key: Any, next_key: Any, what: str = "") -> bool:
    """BPF_MAP_GET_NEXT_KEY; ``key=None`` gives the first key. False at the end.

    Example::

        key = np.zeros(1, np.uint32)
        ok = sc.map_get_next_key(fd, None, key)   # first key into `key`; False if empty
    """
    attr = MapElemAttr(map_fd=fd, key=buf_addr(key), value=buf_addr(next_key))
    ret, err = bpf_errno(BPF_MAP_GET_NEXT_KEY, attr)
    if ret == 0:
        return True
    if err == 2:
        return False
    raise errno_error(BPF_MAP_GET_NEXT_KEY, what, err)


def map_batch(cmd: int, fd: int, in_batch: Any, out_batch: Any, keys: Any, values: Any, count: int,
              elem_flags: int = 0, what: str = "") -> tuple[int, bool]:
    """One BPF_MAP_*_BATCH call. Returns ``(count done, finished)``; ``finished`` is True when the
    kernel reported ENOENT (no more elements).

    Example::

        keys, values, out = np.zeros(64, np.uint32), np.zeros(64, np.uint64), np.zeros(1, np.uint32)
        n, done = sc.map_batch(sc.BPF_MAP_LOOKUP_BATCH, fd, None, out, keys, values, 64)
    """
    attr = MapBatchAttr(in_batch=buf_addr(in_batch), out_batch=buf_addr(out_batch), keys=buf_addr(keys),
                        values=buf_addr(values), count=count, map_fd=fd, elem_flags=elem_flags)
    ret, err = bpf_errno(cmd, attr)
    if ret == 0:
        return int(attr.count), False
    if err == 2:
        return int(attr.count), True
    raise errno_error(cmd, what, err)


def map_freeze(fd: int, what: str = "") -> None:
    """BPF_MAP_FREEZE: user space can no longer write the map.

    Example::

        sc.map_freeze(fd)   # sc.map_update(fd, ...) now raises BpfPermissionError
    """
    bpf(BPF_MAP_FREEZE, MapFreezeAttr(map_fd=fd), what)
