"""The BPF_MAP_*_BATCH commands over numpy buffers.

One lookup-batch call copies a whole hash map (or array) into preallocated numpy
arrays; the kernel walks it bucket by bucket, so the cost is one syscall and one
copy per element, as in C. These functions return ``None`` where the kernel or the
map type has no batch support, and the caller falls back to per-element calls.

Example::

    got = lookup_batch(fd, key_dtype, value_dtype, capacity=1024)
    if got is not None:
        keys, values = got
"""
from __future__ import annotations

import errno as _errno
import logging
from typing import Any, Optional

import numpy as np

from .. import syscall as sc
from ..errors import BpfError, MapError, MapFullError, MapKeyError

log = logging.getLogger("bpfkit.maps")

ENOTSUPP = 524  # kernel-internal "no such op", leaks to user space for maps without batch ops
UNSUPPORTED = (ENOTSUPP, _errno.EOPNOTSUPP, _errno.EINVAL)
MIN_CHUNK = 256


def call(cmd: int, fd: int, in_batch: Any, out_batch: Any, keys: Any, values: Any, count: int,
         elem_flags: int = 0) -> tuple[int, int]:
    """One batch call: ``(elements done, errno)`` — never raises, so partial progress is visible."""
    attr = sc.MapBatchAttr(in_batch=sc.buf_addr(in_batch), out_batch=sc.buf_addr(out_batch),
                           keys=sc.buf_addr(keys), values=sc.buf_addr(values), count=count, map_fd=fd,
                           elem_flags=elem_flags)
    ret, err = sc.bpf_errno(cmd, attr)
    return int(attr.count), (err if ret < 0 else 0)


def _grow(arr: np.ndarray, n: int) -> np.ndarray:
    out = np.empty((n,) + arr.shape[1:], dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


def lookup_batch(fd: int, key_dtype: np.dtype, value_dtype: np.dtype, capacity: int, *,
                 value_shape: tuple[int, ...] = (), delete: bool = False,
                 what: str = "") -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Read every element with BPF_MAP_LOOKUP_BATCH (or LOOKUP_AND_DELETE_BATCH when ``delete``).

    ``capacity`` is the expected element count (max_entries); the buffers grow if the map
    holds more (entries added while reading). Returns ``(keys, values)`` or ``None`` when
    the map type refuses batches.
    """
    cmd = sc.BPF_MAP_LOOKUP_AND_DELETE_BATCH if delete else sc.BPF_MAP_LOOKUP_BATCH
    cap = max(int(capacity), 1)
    # np.empty does not touch the pages: a sparse map costs only what it returns
    keys = np.empty(cap, dtype=key_dtype)
    values = np.empty((cap,) + value_shape, dtype=value_dtype)
    token = max(key_dtype.itemsize, 8)
    tin = np.zeros(token, np.uint8)
    tout = np.zeros(token, np.uint8)
    total, first = 0, True
    while True:
        room = cap - total
        if room < MIN_CHUNK and room < cap // 4 + 1:
            cap = cap * 2 + MIN_CHUNK
            keys, values = _grow(keys, cap), _grow(values, cap)
            room = cap - total
        n, err = call(cmd, fd, None if first else tin, tout, keys[total:], values[total:], room)
        if err == _errno.ENOSPC and n == 0:
            # a hash bucket holds more elements than `room`: retry with a larger buffer
            cap = cap * 2 + MIN_CHUNK
            keys, values = _grow(keys, cap), _grow(values, cap)
            continue
        if err and err != _errno.ENOENT:
            if first and total == 0 and err in UNSUPPORTED:
                log.debug("%s: %s refused by the kernel (%s); falling back to per-key iteration", what,
                          "LOOKUP_AND_DELETE_BATCH" if delete else "LOOKUP_BATCH", _errno.errorcode.get(err, err))
                return None
            raise BpfError.from_errno(err, f"{'lookup-and-delete' if delete else 'lookup'} batch on {what}")
        total += n
        if err == _errno.ENOENT:
            return keys[:total], values[:total]
        tin[:] = tout
        first = False


def update_batch(fd: int, keys: np.ndarray, values: np.ndarray, flags: int, max_entries: int,
                 what: str = "", *, indexed: bool = False) -> Optional[int]:
    """BPF_MAP_UPDATE_BATCH of all ``keys``/``values``; returns the count, None if unsupported.
    ``indexed``: the keys are array indices (E2BIG then means out of range, not full)."""
    n = len(keys)
    if n == 0:
        return 0
    done, err = call(sc.BPF_MAP_UPDATE_BATCH, fd, None, None, keys, values, n, flags)
    if not err:
        return done
    if done == 0 and err in UNSUPPORTED and not _is_flag_error(err, flags):
        log.debug("%s: UPDATE_BATCH refused (%s); falling back to per-key updates", what,
                  _errno.errorcode.get(err, err))
        return None
    raise update_error(err, what, max_entries, done, n, keys[done] if done < n else None, flags, indexed=indexed)


def _is_flag_error(err: int, flags: int) -> bool:
    return False


def update_error(err: int, what: str, max_entries: int, done: int, n: int, key: Any, flags: int, *,
                 indexed: bool = False) -> BpfError:
    """A typed error for a failed update at element ``done`` of ``n``. For ``indexed`` maps (arrays)
    the kernel's E2BIG means the index is past the end, not that the map is full."""
    where = f" after {done} of {n} elements" if n > 1 else ""
    if err == _errno.E2BIG and indexed:
        return MapKeyError(f"index {_show(key)} outside 0..{max_entries - 1} of {what}{where}; array maps "
                           "have exactly max_entries elements", err)
    if err == _errno.E2BIG:
        return MapFullError(f"{what} is full (max_entries={max_entries}){where}; raise max_entries "
                            "(on the spec before load, or in Map.create) or delete entries first", err)
    if err == _errno.EEXIST:
        return MapError(f"{what}: key {_show(key)} already exists and BPF_NOEXIST was given{where}", err)
    if err == _errno.ENOENT:
        return MapKeyError(f"key {_show(key)} not in {what} and BPF_EXIST was given{where}", err)
    return BpfError.from_errno(err, f"update of {what}{where}")


def delete_batch(fd: int, keys: np.ndarray, missing_ok: bool, what: str = "") -> Optional[int]:
    """BPF_MAP_DELETE_BATCH; returns how many were deleted, None if unsupported. A missing key
    raises MapKeyError unless ``missing_ok`` (then it is skipped)."""
    n, pos, deleted = len(keys), 0, 0
    while pos < n:
        done, err = call(sc.BPF_MAP_DELETE_BATCH, fd, None, None, keys[pos:], None, n - pos)
        deleted += done
        pos += done
        if not err:
            break
        if err == _errno.ENOENT:
            if not missing_ok:
                raise MapKeyError(f"key {_show(keys[pos])} not in {what} ({deleted} keys before it were "
                                  "deleted)", err)
            pos += 1
            continue
        if deleted == 0 and pos == 0 and err in UNSUPPORTED:
            log.debug("%s: DELETE_BATCH refused (%s); falling back to per-key deletes", what,
                      _errno.errorcode.get(err, err))
            return None
        raise BpfError.from_errno(err, f"delete batch on {what}")
    return deleted


def _show(key: Any) -> str:
    if isinstance(key, np.generic) and key.dtype.names is None and key.dtype.kind in "iub":
        return repr(key.item())
    return repr(key)
