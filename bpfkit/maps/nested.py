"""Array-of-maps and hash-of-maps: the values are maps. Writes take a map (or its fd), reads
return the inner map as a bpfkit Map opened by id (close it, or use ``with``).

Example::

    inner = Map.create("array", "u4", "u8", 4)
    outer = Map.create("hash_of_maps", "u4", None, 16, inner_map=inner)
    outer[1] = inner
    with outer[1] as m:
        m[0] = 42
"""
from __future__ import annotations

from typing import Any, Iterator, Optional

import numpy as np

from .. import _sys as sc
from ..errors import MapError, MapKeyError
from .codec import DTypeLike, dtype_arg
from .map import Map

__all__ = ["MapOfMaps"]


class MapOfMaps(Map, map_types=(sc.BPF_MAP_TYPE_ARRAY_OF_MAPS, sc.BPF_MAP_TYPE_HASH_OF_MAPS)):
    """``BPF_MAP_TYPE_ARRAY_OF_MAPS`` / ``HASH_OF_MAPS``. ``to_numpy()`` gives the inner maps' ids."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.value_dtype = np.dtype("u4")  # an fd when written, an id when read
        self.inner_key_dtype: Optional[np.dtype] = None
        self.inner_value_dtype: Optional[np.dtype] = None

    def set_inner_dtypes(self, key_dtype: DTypeLike = None, value_dtype: DTypeLike = None) -> "MapOfMaps":
        """dtypes for the inner maps returned by ``[key]`` (default: their own BTF, else plain ints)."""
        self.inner_key_dtype = dtype_arg(key_dtype)
        self.inner_value_dtype = dtype_arg(value_dtype)
        return self

    def _encode_value(self, value: Any) -> np.ndarray:
        if isinstance(value, Map):
            value = value.fd
        if not isinstance(value, (int, np.integer)):
            raise MapError(f"{self._what()}: values are maps; assign a Map or a map fd, not {value!r}")
        return np.array([int(value)], np.uint32)

    def _values_array(self, values: Any, n: int) -> np.ndarray:
        fds = [v.fd if isinstance(v, Map) else int(v) for v in values]
        if len(fds) != n:
            raise MapError(f"{self._what()}: {n} keys but {len(fds)} maps")
        return np.array(fds, np.uint32)

    def inner_id(self, key: Any) -> int:
        """Id of the map stored at ``key`` (MapKeyError if none)."""
        v = np.zeros(1, np.uint32)
        if not sc.map_lookup(self.fd, self.key_bytes(key), v, what=self._what()):
            raise self._missing(key)
        return int(v[0])

    def __getitem__(self, key: Any) -> Map:
        return Map.from_id(self.inner_id(key), key_dtype=self.inner_key_dtype,
                           value_dtype=self.inner_value_dtype)

    def lookup(self, key: Any, default: Any = None) -> Any:
        """The inner map at ``key`` (a new Map you close), or ``default``."""
        try:
            return self[key]
        except MapKeyError:
            return default

    get = lookup

    def items(self) -> Iterator[tuple[Any, Any]]:
        """(key, inner map id) pairs; open a map with ``Map.from_id(id)``."""
        return super().items()
