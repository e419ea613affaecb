"""Value-only maps: queue (FIFO), stack (LIFO) and bloom filter. They have no keys, so no
iteration, to_numpy() or len(); queues and stacks drain with :meth:`pop_all`.

Example::

    q = Map.create("queue", None, "u8", 128)
    q.push(1); q.push(2)
    q.pop()          # -> 1
    q.pop_all()      # -> array([2], dtype=uint64)
"""
from __future__ import annotations

import errno as _errno
from typing import Any, Iterator

import numpy as np

from .. import _sys as sc
from ..errors import BpfError, MapError, MapKeyError
from .codec import as_array, scalar
from .map import Map
from .bulk import update_error

__all__ = ["QueueMap", "StackMap", "BloomFilter"]

_EMPTY = object()


class _ValueOnly(Map):
    def _no_keys(self, op: str, hint: str) -> MapError:
        return self._unsupported(op, hint)

    def keys(self) -> Iterator[Any]:
        raise self._no_keys("iteration", "it has no keys")

    __iter__ = keys

    def items(self) -> Iterator[tuple[Any, Any]]:
        raise self._no_keys("iteration", "it has no keys")

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        raise self._no_keys("to_numpy()", "queues/stacks drain with pop_all(); bloom filters cannot be read")

    def __len__(self) -> int:
        raise self._no_keys("len()", "the kernel does not count its elements")

    def update(self, keys: Any, values: Any, flags: int = 0) -> int:
        raise self._no_keys("update(keys, values)", "use push(value)")

    def delete(self, keys: Any, *, missing_ok: bool = False) -> int:
        raise self._no_keys("delete(keys)", "use pop()" if self.type != sc.BPF_MAP_TYPE_BLOOM_FILTER else "")

    def __getitem__(self, key: Any) -> Any:
        raise self._no_keys("[key]", "use pop()/peek()")

    def __setitem__(self, key: Any, value: Any) -> None:
        raise self._no_keys("[key] = value", "use push(value)")

    def __delitem__(self, key: Any) -> None:
        raise self._no_keys("del [key]", "use pop()")

    def push(self, value: Any, flags: int = sc.BPF_ANY) -> None:
        """Add a value. On a full queue/stack, ``flags=BPF_EXIST`` drops the oldest instead of failing."""
        v = as_array(value, self.value_dtype, f"{self._what()} value")
        try:
            sc.map_update(self.fd, None, v, flags, what=self._what())
        except BpfError as e:
            if e.errno == _errno.E2BIG:
                raise update_error(e.errno, self._what(), self.max_entries, 0, 1, value, flags) from None
            raise


class QueueMap(_ValueOnly, map_types=(sc.BPF_MAP_TYPE_QUEUE,)):
    """``BPF_MAP_TYPE_QUEUE`` (FIFO); :class:`StackMap` is the LIFO twin."""

    def pop(self, default: Any = _EMPTY) -> Any:
        """Remove and return the next value; MapKeyError (or ``default``) when empty."""
        v = np.zeros(1, self.value_dtype)
        if sc.map_lookup_and_delete(self.fd, None, v, what=self._what()):
            return scalar(v[0])
        if default is _EMPTY:
            raise MapKeyError(f"{self._what()} is empty", _errno.ENOENT)
        return default

    def peek(self, default: Any = _EMPTY) -> Any:
        """The next value without removing it."""
        v = np.zeros(1, self.value_dtype)
        if sc.map_lookup(self.fd, None, v, what=self._what()):
            return scalar(v[0])
        if default is _EMPTY:
            raise MapKeyError(f"{self._what()} is empty", _errno.ENOENT)
        return default

    def pop_all(self) -> np.ndarray:  # type: ignore[override]
        """Every value, in pop order, as one numpy array (the map ends empty)."""
        out = np.zeros(self.max_entries, self.value_dtype)
        n = 0
        while n < len(out) and sc.map_lookup_and_delete(self.fd, None, out[n:n + 1], what=self._what()):
            n += 1
        return out[:n]

    def clear(self) -> None:
        """Pop until empty."""
        self.pop_all()


class StackMap(QueueMap, map_types=(sc.BPF_MAP_TYPE_STACK,)):
    """``BPF_MAP_TYPE_STACK`` (LIFO)."""


class BloomFilter(_ValueOnly, map_types=(sc.BPF_MAP_TYPE_BLOOM_FILTER,)):
    """``BPF_MAP_TYPE_BLOOM_FILTER``: ``push(v)`` adds, ``v in bf`` may give false positives,
    never false negatives. Create with ``map_extra=`` the number of hash functions (1-15, default 5)."""

    def __contains__(self, value: Any) -> bool:
        v = as_array(value, self.value_dtype, f"{self._what()} value")
        return sc.map_lookup(self.fd, None, v, what=self._what())

    def pop_all(self) -> tuple[np.ndarray, np.ndarray]:
        raise self._no_keys("pop_all()", "bloom filter contents cannot be read back")

    def clear(self) -> None:
        raise self._no_keys("clear()", "create a new filter")
