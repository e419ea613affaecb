"""Array maps; with ``BPF_F_MMAPABLE``, a live zero-copy numpy view of the kernel memory.

Example::

    m = Map.create("array", "u4", "u8", 1 << 20, flags=BPF_F_MMAPABLE)
    a = m.array              # numpy view of the map: no syscall to read or write
    a[7] += 1; total = a.sum()
"""
from __future__ import annotations

import mmap
from typing import Any, Optional

import numpy as np

from .. import _sys as sc
from ..errors import BpfError, MapError
from .map import Map

__all__ = ["ArrayMap"]


class ArrayMap(Map, map_types=(sc.BPF_MAP_TYPE_ARRAY, sc.BPF_MAP_TYPE_PERCPU_ARRAY)):
    """``BPF_MAP_TYPE_ARRAY`` / ``PERCPU_ARRAY``: keys 0..max_entries-1 always exist."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mm: Optional[mmap.mmap] = None
        self._view: Optional[np.ndarray] = None

    @property
    def mmapable(self) -> bool:
        """True when the map was created with BPF_F_MMAPABLE (so :attr:`array` works)."""
        return bool(self.flags & sc.BPF_F_MMAPABLE) and not self.percpu

    @property
    def array(self) -> np.ndarray:
        """The whole map as a live numpy array over the kernel memory (BPF_F_MMAPABLE maps).
        Reads and writes are plain memory accesses; a frozen or read-only map gives a read-only view."""
        if self._view is None:
            self._view = self._map_view()
        return self._view

    def _map_view(self) -> np.ndarray:
        if not self.mmapable:
            hint = ("per-CPU arrays cannot be mmap'd; use to_numpy()" if self.percpu else
                    "create it with flags=BPF_F_MMAPABLE (in C: __uint(map_flags, BPF_F_MMAPABLE)), "
                    "or read it with to_numpy() (one batch syscall)")
            raise MapError(f"{self._what()} is not mmapable; {hint}")
        assert self.value_dtype is not None
        stride = (self.value_size + 7) & ~7  # the kernel rounds array elements up to 8 bytes
        length = max(stride * self.max_entries, 1)
        length = (length + mmap.PAGESIZE - 1) & ~(mmap.PAGESIZE - 1)
        writable = not (self.flags & sc.BPF_F_RDONLY)
        try:
            mm = mmap.mmap(self.fd, length, mmap.MAP_SHARED,
                           mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0))
        except PermissionError:  # frozen: only read-only mappings are allowed
            writable = False
            mm = mmap.mmap(self.fd, length, mmap.MAP_SHARED, mmap.PROT_READ)
        except OSError as e:
            raise BpfError.from_errno(e.errno or 0, f"mmap of {self._what()}") from None
        self._mm = mm
        view = np.ndarray((self.max_entries,) + self.value_dtype.shape, dtype=self.value_dtype.base,
                          buffer=mm, strides=(stride,) + _inner_strides(self.value_dtype))
        if not writable:
            view.flags.writeable = False
        return view

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        """``(keys, values)``: a copy of the mmap'd memory when mmapable, else one batch read."""
        if self.mmapable:
            assert self.key_dtype is not None
            return np.arange(self.max_entries, dtype=self.key_dtype), self.array.copy()
        return super().to_numpy()

    def pop_all(self) -> tuple[np.ndarray, np.ndarray]:
        """Read every value, then zero it. Array elements cannot be deleted, so unlike hash maps
        this is not atomic per element: increments between the read and the zeroing are lost."""
        keys, values = self.to_numpy()
        self.clear()
        return keys, values

    def clear(self) -> None:
        """Zero every element (a memset on mmapable maps, one batch update otherwise)."""
        if self.mmapable and self.array.flags.writeable:
            self.array[...] = 0
            return
        super().clear()

    def close(self) -> None:
        """Unmap and release the fd (if owned)."""
        self._view = None
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:  # a numpy view is still alive: unmapped when it is freed
                pass
            self._mm = None
        super().close()


def _inner_strides(dt: np.dtype) -> tuple[int, ...]:
    if not dt.shape:
        return ()
    strides = []
    acc = dt.base.itemsize
    for n in reversed(dt.shape):
        strides.append(acc)
        acc *= n
    return tuple(reversed(strides))
