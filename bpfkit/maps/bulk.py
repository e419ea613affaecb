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
import os
from typing import Any, Optional

import numpy as np

from .. import _sys as sc
from ..errors import ENOTSUPP, BpfError, BpfPermissionError, MapError, MapFullError, MapKeyError

__all__ = [
    "MIN_CHUNK", "BATCH_TYPES", "CMD_NAMES", "refused", "call", "lookup_batch", "update_batch", "update_error",
    "delete_batch",
]

log = logging.getLogger("bpfkit.maps")

MIN_CHUNK = 256

_HASHES = {sc.BPF_MAP_TYPE_HASH, sc.BPF_MAP_TYPE_PERCPU_HASH, sc.BPF_MAP_TYPE_LRU_HASH,
           sc.BPF_MAP_TYPE_LRU_PERCPU_HASH, sc.BPF_MAP_TYPE_HASH_OF_MAPS}
_ARRAYS = {sc.BPF_MAP_TYPE_ARRAY, sc.BPF_MAP_TYPE_PERCPU_ARRAY, sc.BPF_MAP_TYPE_ARRAY_OF_MAPS}
# Which map types implement each batch command (bpf_map_ops in kernel/bpf/hashtab.c, arraymap.c,
# lpm_trie.c, 6.x). For these, EINVAL is the kernel refusing the request (flags, a stale batch
# token), not a missing op, and is raised; a missing op answers ENOTSUPP. LPM tries got their
# batch ops late (6.x), so on older kernels they answer ENOTSUPP and fall back.
BATCH_TYPES: dict[int, frozenset[int]] = {
    sc.BPF_MAP_LOOKUP_BATCH: frozenset(_HASHES | _ARRAYS | {sc.BPF_MAP_TYPE_LPM_TRIE}),
    sc.BPF_MAP_LOOKUP_AND_DELETE_BATCH: frozenset(_HASHES),
    sc.BPF_MAP_UPDATE_BATCH: frozenset(_HASHES | _ARRAYS | {sc.BPF_MAP_TYPE_LPM_TRIE}),
    sc.BPF_MAP_DELETE_BATCH: frozenset(_HASHES | {sc.BPF_MAP_TYPE_LPM_TRIE}),
}
CMD_NAMES = {sc.BPF_MAP_LOOKUP_BATCH: "LOOKUP_BATCH", sc.BPF_MAP_LOOKUP_AND_DELETE_BATCH: "LOOKUP_AND_DELETE_BATCH",
             sc.BPF_MAP_UPDATE_BATCH: "UPDATE_BATCH", sc.BPF_MAP_DELETE_BATCH: "DELETE_BATCH"}


def _has_batch_commands() -> bool:
    # the BPF_MAP_*_BATCH commands appeared in 5.6; before that every one of them is EINVAL
    try:
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) >= (5, 6)


def refused(err: int, cmd: int, map_type: Optional[int], what: str) -> bool:
    """True when ``err`` from batch command ``cmd`` means "no batch op for this map type" (then
    the caller falls back to per-element calls, and logs it at debug level). Raises MapError
    for an EINVAL from a map type that has the op: that is a refused request, and switching
    batches off for it would hide the error and make every later read per-key."""
    if err in (ENOTSUPP, _errno.EOPNOTSUPP):
        return True
    if err != _errno.EINVAL:
        return False
    if not _has_batch_commands() or (map_type is not None and map_type not in BATCH_TYPES[cmd]):
        return True
    kind = sc.MAP_TYPE_NAMES.get(map_type, str(map_type)) if map_type is not None else "this"
    raise MapError(f"{CMD_NAMES[cmd]} on {what}: the kernel refused the request (EINVAL) although {kind} maps "
                   "support it; check the flags (BPF_F_LOCK needs a bpf_spin_lock in the value) and that the "
                   "map was not replaced while reading", err)


def _log_refusal(what: str, cmd: int, err: int, fallback: str) -> None:
    log.debug("%s: %s refused by the kernel (%s); falling back to %s", what, CMD_NAMES[cmd],
              _errno.errorcode.get(err, "ENOTSUPP" if err == ENOTSUPP else str(err)), fallback)


def call(cmd: int, fd: int, in_batch: Any, out_batch: Any, keys: Any, values: Any, count: int,
         elem_flags: int = 0) -> tuple[int, int]:
    """One batch call: ``(elements done, errno)`` — never raises, so partial progress is visible."""
    attr = sc.MapBatchAttr(in_batch=sc.buf_addr(in_batch), out_batch=sc.buf_addr(out_batch),
                           keys=sc.buf_addr(keys), values=sc.buf_addr(values), count=count, map_fd=fd,
                           elem_flags=elem_flags)
    ret, err = sc.bpf_errno(cmd, attr)
    return int(attr.count), (err if ret < 0 else 0)


def _call_elems(cmd: int, fd: int, keys: np.ndarray, values: Optional[np.ndarray], count: int,
                elem_flags: int = 0) -> tuple[int, int]:
    """:func:`call` for UPDATE/DELETE_BATCH. The kernel writes the count back only once it has
    worked on the elements; refusing up front (no such op, bad flags) leaves our request in it,
    so an error with the count untouched means no element was done."""
    done, err = call(cmd, fd, None, None, keys, values, count, elem_flags)
    return (0 if err and done >= count else done), err


def _grow(arr: np.ndarray, n: int) -> np.ndarray:
    out = np.empty((n,) + arr.shape[1:], dtype=arr.dtype)
    out[: len(arr)] = arr
    return out


def lookup_batch(fd: int, key_dtype: np.dtype, value_dtype: np.dtype, capacity: int, *,
                 value_shape: tuple[int, ...] = (), delete: bool = False, what: str = "",
                 map_type: Optional[int] = None, elem_flags: int = 0) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """Read every element with BPF_MAP_LOOKUP_BATCH (or LOOKUP_AND_DELETE_BATCH when ``delete``).

    ``capacity`` is the expected element count (max_entries); the buffers grow if the map
    holds more (entries added while reading). Returns ``(keys, values)`` or ``None`` when
    the map type has no such batch op (``map_type`` tells an EINVAL that means that from one
    that is a real error; see :func:`refused`).
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
        n, err = call(cmd, fd, None if first else tin, tout, keys[total:], values[total:], room, elem_flags)
        if err == _errno.ENOSPC and n == 0:
            # a hash bucket holds more elements than `room`: retry with a larger buffer
            cap = cap * 2 + MIN_CHUNK
            keys, values = _grow(keys, cap), _grow(values, cap)
            continue
        if err and err != _errno.ENOENT:
            if first and total == 0 and refused(err, cmd, map_type, what):
                _log_refusal(what, cmd, err, "per-key iteration")
                return None
            raise BpfError.from_errno(err, f"{'lookup-and-delete' if delete else 'lookup'} batch on {what}")
        total += n
        if err == _errno.ENOENT:
            return keys[:total], values[:total]
        tin[:] = tout
        first = False


def update_batch(fd: int, keys: np.ndarray, values: np.ndarray, flags: int, max_entries: int,
                 what: str = "", *, indexed: bool = False, map_type: Optional[int] = None) -> Optional[int]:
    """BPF_MAP_UPDATE_BATCH of all ``keys``/``values``; returns the count, None if unsupported.
    ``indexed``: the keys are array indices (E2BIG then means out of range, not full)."""
    n = len(keys)
    if n == 0:
        return 0
    done, err = _call_elems(sc.BPF_MAP_UPDATE_BATCH, fd, keys, values, n, flags)
    if not err:
        return done
    if done == 0 and refused(err, sc.BPF_MAP_UPDATE_BATCH, map_type, what):
        _log_refusal(what, sc.BPF_MAP_UPDATE_BATCH, err, "per-key updates")
        return None
    raise update_error(err, what, max_entries, done, n, keys[done] if done < n else None, flags, indexed=indexed)


# what a slot of an fd-holding map takes: the reason for its EINVAL/EBADF on update
_FD_SLOTS = {
    sc.BPF_MAP_TYPE_PROG_ARRAY: "the fd of a loaded BPF program (tail calls: every program in one array must have "
                                "the same type, e.g. m[0] = obj.progs.handler.fd)",
    sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY: "a perf event fd opened for that CPU (bpfkit.events.PerfBuffer opens them)",
    sc.BPF_MAP_TYPE_CGROUP_ARRAY: "the fd of a cgroup v2 directory (os.open('/sys/fs/cgroup/...', os.O_RDONLY))",
    sc.BPF_MAP_TYPE_ARRAY_OF_MAPS: "the fd of a map shaped like the inner map it was created with (same type, key "
                                   "and value size, max_entries and flags)",
    sc.BPF_MAP_TYPE_HASH_OF_MAPS: "the fd of a map shaped like the inner map it was created with (same type, key "
                                  "and value size, max_entries and flags)",
}


def update_error(err: int, what: str, max_entries: int, done: int, n: int, key: Any, flags: int, *,
                 indexed: bool = False, map_type: Optional[int] = None) -> BpfError:
    """A typed error for a failed update at element ``done`` of ``n``. For ``indexed`` maps (arrays)
    the kernel's E2BIG means the index is past the end, not that the map is full."""
    where = f" after {done} of {n} elements" if n > 1 else ""
    if err in (_errno.EINVAL, _errno.EBADF) and map_type in _FD_SLOTS:
        return MapError(f"{what}: the value for key {_show(key)} was refused "
                        f"({_errno.errorcode.get(err, err)}){where}: a slot takes {_FD_SLOTS[map_type]}", err)
    if err == _errno.EINVAL and flags & sc.BPF_F_LOCK:
        return MapError(f"{what}: BPF_F_LOCK was refused (EINVAL){where}: it needs a struct bpf_spin_lock in the "
                        "map's value, declared in its BTF", err)
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
    if err == _errno.EPERM and os.geteuid() == 0:
        # root is refused only when the map is frozen or read-only for user space: say so
        return BpfPermissionError(f"{what} is read-only for user space (frozen with BPF_MAP_FREEZE, or "
                                  f"created with BPF_F_RDONLY){where}", err)
    return BpfError.from_errno(err, f"update of {what}{where}")


def delete_batch(fd: int, keys: np.ndarray, missing_ok: bool, what: str = "", *,
                 map_type: Optional[int] = None) -> Optional[int]:
    """BPF_MAP_DELETE_BATCH; returns how many were deleted, None if unsupported. A missing key
    raises MapKeyError unless ``missing_ok`` (then it is skipped)."""
    n, pos, deleted = len(keys), 0, 0
    while pos < n:
        done, err = _call_elems(sc.BPF_MAP_DELETE_BATCH, fd, keys[pos:], None, n - pos)
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
        if deleted == 0 and pos == 0 and refused(err, sc.BPF_MAP_DELETE_BATCH, map_type, what):
            _log_refusal(what, sc.BPF_MAP_DELETE_BATCH, err, "per-key deletes")
            return None
        raise BpfError.from_errno(err, f"delete batch on {what}")
    return deleted


def _show(key: Any) -> str:
    if isinstance(key, np.generic) and key.dtype.names is None and key.dtype.kind in "iub":
        return repr(key.item())
    return repr(key)
