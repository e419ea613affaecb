"""Local storage maps: a value attached to a task, inode, socket or cgroup.

From user space the kernel keys them by a file descriptor of the owner: a pidfd for tasks,
an open file for inodes, a socket, a cgroup directory. :class:`LocalStorage` accepts the
owner itself: a pid (task), a path or file object (inode, cgroup), a socket object — or a raw
fd through :meth:`get_by_fd`. There is no iteration from user space.

Example::

    m = obj.maps.task_counts                # BPF_MAP_TYPE_TASK_STORAGE
    m[os.getpid()]                          # value attached to this process
"""
from __future__ import annotations

import errno as _errno
import os
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np

from .. import _sys as sc
from .map import Map

__all__ = ["LocalStorage"]


class LocalStorage(Map, map_types=(sc.BPF_MAP_TYPE_TASK_STORAGE, sc.BPF_MAP_TYPE_INODE_STORAGE,
                                   sc.BPF_MAP_TYPE_SK_STORAGE, sc.BPF_MAP_TYPE_CGRP_STORAGE)):
    """``TASK_STORAGE`` / ``INODE_STORAGE`` / ``SK_STORAGE`` / ``CGRP_STORAGE``."""

    @contextmanager
    def _owner_fd(self, owner: Any) -> Iterator[int]:
        if hasattr(owner, "fileno"):
            yield owner.fileno()
            return
        if self.type == sc.BPF_MAP_TYPE_TASK_STORAGE and isinstance(owner, (int, np.integer)):
            try:
                fd = os.pidfd_open(int(owner))
            except ProcessLookupError:
                from ..errors import MapKeyError

                raise MapKeyError(f"no process {owner} (task storage lives only as long as its task)",
                                  _errno.ENOENT) from None
        elif isinstance(owner, (str, os.PathLike)):
            fd = os.open(owner, os.O_RDONLY | (os.O_DIRECTORY if self.type == sc.BPF_MAP_TYPE_CGRP_STORAGE else 0))
        elif isinstance(owner, (int, np.integer)):
            yield int(owner)  # already an fd (socket / file / cgroup)
            return
        else:
            raise self._unsupported(f"a key of type {type(owner).__name__}",
                                    "pass a pid (task), path or file (inode/cgroup) or socket")
        try:
            yield fd
        finally:
            os.close(fd)

    def key_bytes(self, key: Any) -> np.ndarray:
        raise self._unsupported("raw keys", "index with the owner (pid/path/socket)")

    def get_by_fd(self, fd: int, default: Any = None) -> Any:
        """Value for the owner behind ``fd`` (pidfd, file, socket, cgroup dir)."""
        v = self.value_buffer()
        if not sc.map_lookup(self.fd, np.array([fd], np.int32), v, what=self._what()):
            return default
        return self._decode_value(v)

    def lookup(self, key: Any, default: Any = None) -> Any:
        """Value attached to ``key``'s owner, or ``default``."""
        with self._owner_fd(key) as fd:
            return self.get_by_fd(fd, default)

    get = lookup

    def __getitem__(self, key: Any) -> Any:
        from ..errors import MapKeyError

        v = self.lookup(key, _MISSING)
        if v is _MISSING:
            raise MapKeyError(f"no value for {key!r} in {self._what()}", _errno.ENOENT)
        return v

    def __contains__(self, key: Any) -> bool:
        return self.lookup(key, _MISSING) is not _MISSING

    def update_elem(self, key: Any, value: Any, flags: int = sc.BPF_ANY) -> None:
        """Attach ``value`` to ``key``'s owner."""
        with self._owner_fd(key) as fd:
            sc.map_update(self.fd, np.array([fd], np.int32), self._encode_value(value), flags, what=self._what())

    def __delitem__(self, key: Any) -> None:
        from ..errors import MapKeyError

        with self._owner_fd(key) as fd:
            if not sc.map_delete(self.fd, np.array([fd], np.int32), what=self._what()):
                raise MapKeyError(f"no value for {key!r} in {self._what()}", _errno.ENOENT)

    def keys(self) -> Iterator[Any]:
        raise self._unsupported("iteration", "local storage is reached through its owner only")

    __iter__ = keys

    def to_numpy(self) -> tuple[np.ndarray, np.ndarray]:
        raise self._unsupported("to_numpy()", "local storage is reached through its owner only")

    def __len__(self) -> int:
        raise self._unsupported("len()", "local storage is reached through its owner only")

    def update(self, keys: Any, values: Any, flags: int = sc.BPF_ANY) -> int:
        n = 0
        for k, v in zip(keys, values):
            self.update_elem(k, v, flags)
            n += 1
        return n

    def delete(self, keys: Any, *, missing_ok: bool = False) -> int:
        n = 0
        for k in keys:
            try:
                del self[k]
                n += 1
            except KeyError:
                if not missing_ok:
                    raise
        return n


_MISSING = object()
