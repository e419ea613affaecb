"""Creating an object's maps, as libbpf does: inner-map templates for map-in-maps, key/value BTF
where the map type takes it (retrying without if the kernel refuses), global data filled and
``.rodata``/``.kconfig`` frozen, ``__array(values, ...)`` slots filled, maps pinned by name reused
or pinned.

Example::

    fds, pinned = create_maps(model, specs, initial, btf_fd)
"""
from __future__ import annotations

import ctypes
import errno as _errno
import logging
import os
from typing import Optional

from ... import _sys as sc
from ...errors import BpfError, BpfPermissionError, LoadError
from .model import MAP_KCONFIG, MAP_RODATA, MapDef, Model

__all__ = ["MapParams", "create_maps", "close_all"]

_log = logging.getLogger("bpfkit.loader")
_BPF_FS_MAGIC = 0xCAFE4A11
# map types whose keys/values are fds or fixed kernel structs: created without key/value BTF
_NO_BTF = frozenset((sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY, sc.BPF_MAP_TYPE_CGROUP_ARRAY, sc.BPF_MAP_TYPE_STACK_TRACE,
                     sc.BPF_MAP_TYPE_ARRAY_OF_MAPS, sc.BPF_MAP_TYPE_HASH_OF_MAPS, sc.BPF_MAP_TYPE_DEVMAP,
                     sc.BPF_MAP_TYPE_DEVMAP_HASH, sc.BPF_MAP_TYPE_CPUMAP, sc.BPF_MAP_TYPE_XSKMAP,
                     sc.BPF_MAP_TYPE_SOCKMAP, sc.BPF_MAP_TYPE_SOCKHASH, sc.BPF_MAP_TYPE_QUEUE, sc.BPF_MAP_TYPE_STACK))


class MapParams:
    """One map's creation parameters after the spec's edits."""

    def __init__(self, d: MapDef, max_entries: int, flags: int, data: Optional[bytes]) -> None:
        self.d = d
        self.max_entries = max_entries
        self.flags = flags
        self.data = data


def _type_name(t: int) -> str:
    return sc.MAP_TYPE_NAMES.get(t, str(t))


def _describe(d: MapDef, max_entries: int, flags: int) -> str:
    return (f"map {d.real_name or d.name!r} ({_type_name(d.map_type)}, key {d.key_size} B, value {d.value_size} B, "
            f"max_entries {max_entries}, flags {flags:#x})")


def _hint(d: MapDef, max_entries: int, err: int) -> str:
    if err == _errno.EINVAL:
        if d.map_type in (sc.BPF_MAP_TYPE_RINGBUF, sc.BPF_MAP_TYPE_USER_RINGBUF):
            return "; a ring buffer's max_entries must be a power-of-2 multiple of the page size"
        if max_entries == 0:
            return "; max_entries must not be 0"
        return "; check the key/value sizes and flags this map type accepts"
    if err in (_errno.EPERM, _errno.EACCES):
        return "; run as root or with CAP_BPF (and CAP_SYS_ADMIN for some map types)"
    if err == _errno.ENOMEM:
        return "; lower max_entries or raise the memory limit (RLIMIT_MEMLOCK on kernels before 5.11)"
    return ""


def _attempt(d: MapDef, max_entries: int, flags: int, inner_fd: int, btf: tuple[int, int, int]) -> tuple[int, int]:
    """One BPF_MAP_CREATE; ``btf``: (fd, key type id, value type id), fd -1 for none."""
    attr = sc.MapCreateAttr(map_type=d.map_type, key_size=d.key_size, value_size=d.value_size,
                            max_entries=max_entries, map_flags=flags, inner_map_fd=max(inner_fd, 0),
                            numa_node=d.numa_node, map_name=d.name.encode()[: sc.BPF_OBJ_NAME_LEN - 1],
                            map_extra=d.map_extra)
    if btf[0] >= 0:
        attr.btf_fd, attr.btf_key_type_id, attr.btf_value_type_id = btf
    return sc.bpf_errno(sc.BPF_MAP_CREATE, attr)


def _create(d: MapDef, max_entries: int, flags: int, btf_fd: int, inner_fd: int) -> int:
    key_id, value_id = (d.key_type_id, d.value_type_id) if btf_fd >= 0 and d.map_type not in _NO_BTF else (0, 0)
    if d.map_type == sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY and max_entries == 0:
        max_entries = sc.possible_cpus()
    with_btf = (btf_fd, key_id, value_id) if btf_fd >= 0 and d.map_type not in _NO_BTF else (-1, 0, 0)
    fd, err = _attempt(d, max_entries, flags, inner_fd, with_btf)
    if fd < 0 and (key_id or value_id):
        _log.warning("map %r: the kernel refused its key/value BTF (%s); creating it without", d.name,
                     os.strerror(err))
        fd, err = _attempt(d, max_entries, flags, inner_fd, (-1, 0, 0))
    if fd < 0:
        msg = f"{_describe(d, max_entries, flags)} was refused by the kernel: {os.strerror(err)} (errno {err})"
        cls = BpfPermissionError if err in (_errno.EPERM, _errno.EACCES) else LoadError
        raise cls(msg + _hint(d, max_entries, err), err)
    return fd


def _update(fd: int, key: int, value: bytes, what: str) -> None:
    k = ctypes.c_uint32(key)
    v = bytearray(value)  # sc.buf_addr takes its address without a ctypes array type per length
    try:
        sc.map_update(fd, k, v, what=what)
    except BpfError as e:
        raise LoadError(f"{what}: {e}", e.errno) from None


def _reuse_pinned(d: MapDef, max_entries: int, flags: int) -> int:
    """An fd of the map pinned at ``d.pin_path`` if one is there (and fits), else -1."""
    try:
        fd = sc.obj_get(d.pin_path)
    except BpfError as e:
        if e.errno == _errno.ENOENT:
            return -1
        raise LoadError(f"map {d.name!r}: cannot open the map pinned at {d.pin_path}: {e}", e.errno) from None
    info = sc.map_info(fd)
    want = (d.map_type, d.key_size, d.value_size, max_entries, flags, d.map_extra)
    have = (info.type, info.key_size, info.value_size, info.max_entries, info.map_flags, info.map_extra)
    if want != have:
        os.close(fd)
        raise LoadError(f"map {d.name!r}: the map pinned at {d.pin_path} does not match the definition (type, key, "
                        f"value, max_entries, flags, extra: pinned {have}, object {want}); unpin it or rename the map",
                        _errno.EINVAL)
    return fd


def _pin(fd: int, path: str, name: str) -> None:
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, mode=0o700, exist_ok=True)
        if _fs_magic(parent) not in (_BPF_FS_MAGIC, None):
            raise LoadError(f"map {name!r}: cannot pin at {path}: {parent} is not a BPF filesystem", _errno.EINVAL)
    except OSError as e:
        raise LoadError(f"map {name!r}: cannot pin at {path}: {e}", e.errno or 0) from None
    sc.obj_pin(fd, path)


def _fs_magic(path: str) -> Optional[int]:
    """f_type of the filesystem holding ``path`` (statfs(2); os.statvfs does not report it)."""
    class StatFs(ctypes.Structure):
        _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_long * 15)]

    libc = ctypes.CDLL(None, use_errno=True)
    buf = StatFs()
    if libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        return None
    return int(buf.f_type) & 0xFFFFFFFF


def close_all(fds: list[int]) -> None:
    for fd in fds:
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def create_maps(model: Model, params: list[MapParams], btf_fd: int) -> tuple[list[int], list[str]]:
    """Create every map in order; returns (fd per map, paths pinned by this call). On failure
    everything made so far is closed and unpinned."""
    fds: list[int] = []
    pinned: list[str] = []
    try:
        for p in params:
            d = p.d
            fd = -1
            if d.pin_path:
                fd = _reuse_pinned(d, p.max_entries, p.flags)
            if fd < 0:
                inner_fd = -1
                if d.inner is not None:
                    inner_fd = _create(d.inner, d.inner.max_entries, d.inner.flags, btf_fd, -1)
                try:
                    fd = _create(d, p.max_entries, p.flags, btf_fd, inner_fd)
                finally:
                    close_all([inner_fd])
                fds.append(fd)
                if d.internal:
                    # (a new array map is all zeros: a zero-filled .bss needs no update)
                    if p.data is not None and p.data.count(0) != len(p.data):
                        _update(fd, 0, p.data, f"initial contents of {d.real_name}")
                    if d.origin in (MAP_RODATA, MAP_KCONFIG):
                        sc.map_freeze(fd, f"map {d.real_name!r}")
                if d.init_slots and d.map_type != sc.BPF_MAP_TYPE_PROG_ARRAY:
                    names = [m.name for m in model.maps]
                    for slot, target in sorted(d.init_slots.items()):
                        ti = names.index(target)
                        if ti >= len(fds) - 1:
                            raise LoadError(f"map {d.name!r}: slot {slot} refers to map {target!r}, which is "
                                            "declared after it; declare inner maps first")
                        _update(fd, slot, ctypes.c_uint32(fds[ti]).value.to_bytes(4, "little"),
                                f"map {d.name!r} slot {slot} (map {target!r})")
                if d.pin_path:
                    try:
                        _pin(fd, d.pin_path, d.name)
                        pinned.append(d.pin_path)
                    except BpfError as e:
                        if e.errno != _errno.EEXIST:
                            raise LoadError(f"map {d.name!r}: pinning at {d.pin_path} failed: {e}", e.errno) from None
                        close_all([fds.pop()])
                        fd = _reuse_pinned(d, p.max_entries, p.flags)
                        if fd < 0:
                            raise LoadError(f"map {d.name!r}: cannot find the map pinned at {d.pin_path}",
                                            _errno.ENOENT) from None
                        fds.append(fd)
            else:
                fds.append(fd)
    except BaseException:
        close_all(fds)
        for path in pinned:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise
    return fds, pinned
