"""A BPF map as a dict-like object with numpy keys and values.

Keys and values are converted through numpy dtypes taken from the map's BTF
(or given explicitly); scalars come back as Python ints, structs as numpy
records, per-CPU values as an array with one row per possible CPU.

Example::

    counts = obj.maps.counts          # BPF_MAP_TYPE_HASH, u32 -> u64
    counts[1234]                      # -> 7
    for pid, n in counts.items(): ...
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Optional

import numpy as np

from .. import syscall as sc
from ..errors import ClosedError, MapError, MapKeyError

PERCPU_TYPES = {sc.BPF_MAP_TYPE_PERCPU_HASH, sc.BPF_MAP_TYPE_PERCPU_ARRAY,
                sc.BPF_MAP_TYPE_LRU_PERCPU_HASH, sc.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE}
ARRAY_TYPES = {sc.BPF_MAP_TYPE_ARRAY, sc.BPF_MAP_TYPE_PERCPU_ARRAY, sc.BPF_MAP_TYPE_PROG_ARRAY,
               sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY, sc.BPF_MAP_TYPE_CGROUP_ARRAY,
               sc.BPF_MAP_TYPE_ARRAY_OF_MAPS}


def default_dtype(size: int) -> np.dtype:
    """dtype for a key/value without BTF: a native unsigned int when the size fits, else raw bytes."""
    if size in (1, 2, 4, 8):
        return np.dtype(f"u{size}")
    return np.dtype(f"V{size}")


class Map:
    """A live BPF map. Owned by an :class:`~bpfkit.Object` (which closes it), or standalone."""

    def __init__(self, fd: int, name: str, map_type: int, key_size: int, value_size: int,
                 max_entries: int, flags: int = 0, key_dtype: Optional[np.dtype] = None,
                 value_dtype: Optional[np.dtype] = None, owns_fd: bool = False) -> None:
        self._fd = fd
        self.name = name
        self.type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.flags = flags
        self._owns_fd = owns_fd
        self.key_dtype = _checked(key_dtype, key_size, "key", name) if key_size else None
        self.value_dtype = _checked(value_dtype, value_size, "value", name) if value_size else None
        self.percpu = map_type in PERCPU_TYPES
        self.ncpus = sc.possible_cpus() if self.percpu else 1
        # per-CPU values are laid out with each CPU's slot rounded up to 8 bytes
        self._slot = (value_size + 7) & ~7 if self.percpu else value_size

    # -- identity -----------------------------------------------------------
    @property
    def fd(self) -> int:
        """The map's file descriptor (raises ClosedError once closed)."""
        if self._fd < 0:
            raise ClosedError(f"map {self.name!r} is closed")
        return self._fd

    @property
    def type_name(self) -> str:
        """e.g. 'hash', 'percpu_array', 'ringbuf'."""
        return sc.MAP_TYPE_NAMES.get(self.type, str(self.type))

    @property
    def id(self) -> int:
        """The kernel's id of this map."""
        return int(sc.map_info(self.fd).id)

    def _what(self) -> str:
        return f"map {self.name!r}"

    def __repr__(self) -> str:
        return (f"<Map {self.name!r} {self.type_name} key={self.key_dtype} value={self.value_dtype} "
                f"max_entries={self.max_entries}>")

    def close(self) -> None:
        """Release the fd if this Map owns it; further use raises ClosedError."""
        if self._fd >= 0 and self._owns_fd:
            os.close(self._fd)
        self._fd = -1

    def __enter__(self) -> "Map":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- conversion ---------------------------------------------------------
    def key_bytes(self, key: Any) -> np.ndarray:
        """``key`` as a 1-element array of the key dtype (its buffer is what the kernel reads)."""
        if self.key_dtype is None:
            raise MapError(f"{self._what()} ({self.type_name}) has no keys")
        return _as_array(key, self.key_dtype, f"{self._what()} key")

    def value_buffer(self) -> np.ndarray:
        """A zeroed buffer for one value (all CPUs for per-CPU maps)."""
        if self.percpu:
            return np.zeros(self.ncpus, dtype=_slot_dtype(self.value_dtype, self._slot))
        return np.zeros(1, dtype=self.value_dtype)

    def _decode_value(self, buf: np.ndarray) -> Any:
        if self.percpu:
            return buf["v"].copy() if buf.dtype.names == ("v",) else buf.copy()
        return _scalar(buf[0])

    def _encode_value(self, value: Any) -> np.ndarray:
        if self.percpu:
            buf = self.value_buffer()
            vals = np.asarray(value)
            if vals.ndim == 0 or vals.shape[0] != self.ncpus:
                buf["v"] = value  # broadcast one value to every CPU
            else:
                buf["v"] = vals
            return buf
        return _as_array(value, self.value_dtype, f"{self._what()} value")

    # -- dict protocol --------------------------------------------------------
    def lookup(self, key: Any, default: Any = None) -> Any:
        """The value for ``key``, or ``default`` when absent."""
        k = self.key_bytes(key)
        v = self.value_buffer()
        if not sc.map_lookup(self.fd, k, v, what=self._what()):
            return default
        return self._decode_value(v)

    get = lookup

    def __getitem__(self, key: Any) -> Any:
        k = self.key_bytes(key)
        v = self.value_buffer()
        if not sc.map_lookup(self.fd, k, v, what=self._what()):
            raise MapKeyError(f"key {key!r} not in {self._what()}")
        return self._decode_value(v)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.update_elem(key, value)

    def update_elem(self, key: Any, value: Any, flags: int = sc.BPF_ANY) -> None:
        """Insert or replace one element; ``flags`` BPF_NOEXIST / BPF_EXIST."""
        k = self.key_bytes(key)
        v = self._encode_value(value)
        try:
            sc.map_update(self.fd, k, v, flags, what=self._what())
        except MapError as e:
            if e.errno == 7:  # E2BIG
                raise type(e)(f"{self._what()} is full (max_entries={self.max_entries}); "
                              "raise the limit on the spec before load", e.errno) from None
            raise

    def __delitem__(self, key: Any) -> None:
        if not sc.map_delete(self.fd, self.key_bytes(key), what=self._what()):
            raise MapKeyError(f"key {key!r} not in {self._what()}")

    def __contains__(self, key: Any) -> bool:
        v = self.value_buffer()
        return sc.map_lookup(self.fd, self.key_bytes(key), v, what=self._what())

    def keys(self) -> Iterator[Any]:
        """Iterate keys with BPF_MAP_GET_NEXT_KEY (a snapshot that may race with the program)."""
        if self.key_dtype is None:
            return
        cur = np.zeros(1, self.key_dtype)
        nxt = np.zeros(1, self.key_dtype)
        if not sc.map_get_next_key(self.fd, None, nxt, what=self._what()):
            return
        while True:
            yield _scalar(nxt[0].copy())
            cur[:] = nxt
            if not sc.map_get_next_key(self.fd, cur, nxt, what=self._what()):
                return

    __iter__ = keys

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Iterate (key, value) pairs; keys deleted while iterating are skipped."""
        for k in self.keys():
            v = self.lookup(k, _MISSING)
            if v is not _MISSING:
                yield k, v

    def values(self) -> Iterator[Any]:
        """Iterate values."""
        for _, v in self.items():
            yield v

    def __len__(self) -> int:
        if self.type in ARRAY_TYPES:
            return self.max_entries
        return sum(1 for _ in self.keys())


_MISSING = object()


def _slot_dtype(value_dtype: Optional[np.dtype], slot: int) -> np.dtype:
    assert value_dtype is not None
    return np.dtype({"names": ["v"], "formats": [value_dtype], "offsets": [0], "itemsize": slot})


def _checked(dt: Optional[np.dtype], size: int, what: str, name: str) -> np.dtype:
    if dt is None:
        return default_dtype(size)
    dt = np.dtype(dt)
    if dt.itemsize != size:
        raise MapError(f"map {name!r}: {what} dtype {dt} is {dt.itemsize} bytes but the map's {what} "
                       f"size is {size}")
    return dt


def _as_array(obj: Any, dt: Optional[np.dtype], what: str) -> np.ndarray:
    assert dt is not None
    if isinstance(obj, np.ndarray) and obj.dtype == dt and obj.size == 1:
        return np.ascontiguousarray(obj.reshape(1))
    if isinstance(obj, (bytes, bytearray)) and dt.kind not in "S":
        if len(obj) != dt.itemsize:
            raise MapError(f"{what}: {len(obj)} bytes given, {dt.itemsize} expected")
        return np.frombuffer(bytes(obj), dtype=dt).copy()
    try:
        arr = np.zeros(1, dtype=dt)
        if dt.names and isinstance(obj, dict):
            for k, v in obj.items():
                arr[k] = v
        else:
            arr[0] = obj
        return arr
    except (ValueError, TypeError, OverflowError) as exc:
        raise MapError(f"{what}: cannot convert {obj!r} to {dt}: {exc}") from None


def _scalar(x: Any) -> Any:
    """Plain ints/floats for scalar dtypes; records and bytes stay numpy."""
    if isinstance(x, np.generic) and x.dtype.names is None and x.dtype.kind in "iufb":
        return x.item()
    return x
