"""The ``bpf(2)`` commands bpfkit uses, one typed wrapper each.

A failing call raises the :class:`~bpfkit.errors.BpfError` subclass that fits its errno, with a
message naming the operation and the object.

Example::

    from bpfkit import _sys as sc
    fd = sc.map_create(sc.BPF_MAP_TYPE_HASH, 4, 8, 1024, name="counts")
    sc.map_update(fd, key_buf, value_buf)
"""
from __future__ import annotations

import ctypes
import io
import os
from ctypes import Structure, addressof, c_char, c_long, c_void_p, sizeof
from typing import Any, Optional, Union

from ..errors import BpfError
from .attrs import (GetIdAttr, InfoAttr, LinkInfo, MapInfo, ObjPinAttr,
                    ProgInfo)
from .consts import (BPF_BTF_GET_FD_BY_ID, BPF_LINK_GET_FD_BY_ID, BPF_LINK_GET_NEXT_ID, BPF_MAP_GET_FD_BY_ID, BPF_MAP_GET_NEXT_ID,
                     BPF_OBJ_GET, BPF_OBJ_GET_INFO_BY_FD, BPF_OBJ_PIN,
                     BPF_PROG_GET_FD_BY_ID, BPF_PROG_GET_NEXT_ID, CMD_NAMES)
from .bpffs import pin_dir
from .libc import SYS_BPF, syscall as _syscall, syscall_owned as _syscall_owned

__all__ = [
    "errno_error", "bpf", "bpf_owned", "bpf_errno", "obj_get_owned", "map_fd_by_id_owned", "buf_addr", "ro_addr",
    "bytes_addr", "obj_pin", "obj_get", "obj_info", "map_info",
    "prog_info", "link_info", "prog_ids", "map_ids", "link_ids", "prog_fd_by_id", "map_fd_by_id", "link_fd_by_id",
    "btf_fd_by_id",
]




def errno_error(op: int, what: str, err: int) -> BpfError:
    return BpfError.from_errno(err, f"{CMD_NAMES.get(op, f'bpf cmd {op}')} {what}".strip())


def bpf(cmd: int, attr: Structure, what: str = "") -> int:
    """Run one ``bpf(2)`` command; returns its result, raises BpfError on failure.

    ``what`` names the object in the error message, e.g. ``"map 'counts'"``.

    Example::

        sc.bpf(sc.BPF_MAP_FREEZE, sc.MapFreezeAttr(map_fd=fd), "map 'counts'")
    """
    while True:
        ret = _syscall(c_long(SYS_BPF), c_long(cmd), c_void_p(addressof(attr)), c_long(sizeof(attr)))
        if ret >= 0:
            return int(ret)
        err = ctypes.get_errno()
        if err == 4:  # EINTR: the kernel restarts nothing for us on some commands
            continue
        raise errno_error(cmd, what, err)


def bpf_owned(cmd: int, attr: Structure, what: str = "") -> io.FileIO:
    """:func:`bpf` for the commands that make an fd: the fd comes back inside an ``io.FileIO``
    that closes it once, when closed or dropped, so no exception can leave it behind.

    Example::

        f = sc.bpf_owned(sc.BPF_MAP_CREATE, attr, "map 'counts'")
        fd = f.fileno()   # f.close() releases it
    """
    while True:
        try:
            return _syscall_owned(c_long(SYS_BPF), c_long(cmd), c_void_p(addressof(attr)),
                                  c_long(sizeof(attr)))
        except ValueError:  # FileIO refused the -1 of a failed call
            err = ctypes.get_errno()
            if err == 4:
                continue
            raise errno_error(cmd, what, err) from None


def bpf_errno(cmd: int, attr: Structure) -> tuple[int, int]:
    """Like :func:`bpf` but returns ``(ret, errno)`` instead of raising (for probing and ENOENT-is-normal paths).

    Example::

        ret, err = sc.bpf_errno(sc.BPF_MAP_GET_FD_BY_ID, sc.GetIdAttr(id=map_id))
        # ret == -1, err == errno.ENOENT once that map is gone
    """
    ret = _syscall(c_long(SYS_BPF), c_long(cmd), c_void_p(addressof(attr)), c_long(sizeof(attr)))
    return int(ret), (ctypes.get_errno() if ret < 0 else 0)


def buf_addr(buf: Any) -> int:
    """Address of a writable buffer (bytearray, ctypes object, numpy array).

    Example::

        key = np.array([1], np.uint32)
        attr = sc.MapElemAttr(map_fd=fd, key=sc.buf_addr(key))
    """
    if buf is None:
        return 0
    if hasattr(buf, "ctypes"):  # numpy array
        return int(buf.ctypes.data)
    if isinstance(buf, (ctypes.Array, Structure, ctypes._SimpleCData)):
        return addressof(buf)
    if not len(buf):
        return addressof((c_char * 0).from_buffer(buf))
    return addressof(c_char.from_buffer(buf))  # not c_char * len: a new ctypes type per length


def ro_addr(data: Union[bytes, Any]) -> tuple[int, Any]:
    """Address of read-only data; returns the address and an object to keep alive.

    Example::

        addr, keep = sc.ro_addr(bytes(64))   # e.g. a test run's data_in; hold `keep` meanwhile
    """
    if isinstance(data, (bytes, bytearray)):
        return bytes_addr(data)
    return buf_addr(data), data


def bytes_addr(data: Union[bytes, bytearray]) -> tuple[int, Any]:
    """Address of a copy of ``data`` (of ``data`` itself if it is a bytearray) for the kernel to
    read, and the object to keep alive meanwhile; (0, None) when empty.

    One ``c_char`` over the buffer, not ``create_string_buffer``: that makes a new ctypes array
    type for every distinct length (16 µs the first time, and kept for the life of the process).

    Example::

        addr, keep = sc.bytes_addr(insns)   # attr.insns = addr; hold `keep` until the call returns
    """
    if not data:
        return 0, None
    buf = data if isinstance(data, bytearray) else bytearray(data)
    cell = c_char.from_buffer(buf)
    return addressof(cell), (cell, buf)


# --- objects ----------------------------------------------------------------

def obj_pin(fd: int, path: str) -> None:
    """BPF_OBJ_PIN: pin a map/prog/link fd at ``path``, which must be on a bpf filesystem
    (BpfUsageError otherwise, naming what the path resolves to).

    Example::

        sc.obj_pin(fd, "/sys/fs/bpf/counts")   # sc.unpin() the path to unpin
    """
    with pin_dir(path) as (dfd, name):
        p = ctypes.create_string_buffer(os.fsencode(f"/proc/self/fd/{dfd}/{name}"))
        bpf(BPF_OBJ_PIN, ObjPinAttr(pathname=addressof(p), bpf_fd=fd), f"at {path!r}")


def obj_get(path: str, flags: int = 0) -> int:
    """BPF_OBJ_GET: open a pinned object; returns its fd.

    Example::

        fd = sc.obj_get("/sys/fs/bpf/counts")
    """
    with pin_dir(path) as (dfd, name):
        p = ctypes.create_string_buffer(os.fsencode(f"/proc/self/fd/{dfd}/{name}"))
        return bpf(BPF_OBJ_GET, ObjPinAttr(pathname=addressof(p), file_flags=flags), f"at {path!r}")


def obj_get_owned(path: str, flags: int = 0) -> io.FileIO:
    """:func:`obj_get` returning the fd inside an ``io.FileIO`` (see :func:`bpf_owned`).

    Example::

        with sc.obj_get_owned("/sys/fs/bpf/counts") as f:
            sc.map_info(f.fileno())
    """
    with pin_dir(path) as (dfd, name):
        p = ctypes.create_string_buffer(os.fsencode(f"/proc/self/fd/{dfd}/{name}"))
        return bpf_owned(BPF_OBJ_GET, ObjPinAttr(pathname=addressof(p), file_flags=flags), f"at {path!r}")


def obj_info(fd: int, info: Structure, what: str = "") -> Structure:
    """BPF_OBJ_GET_INFO_BY_FD into ``info`` (a MapInfo / ProgInfo / LinkInfo).

    Example::

        info = sc.obj_info(fd, sc.MapInfo())   # info.max_entries, info.name
    """
    bpf(BPF_OBJ_GET_INFO_BY_FD, InfoAttr(bpf_fd=fd, info_len=sizeof(info), info=addressof(info)), what)
    return info


def map_info(fd: int) -> MapInfo:
    """Kernel's view of a map fd.

    Example::

        sc.map_info(fd).name   # b'counts'
    """
    return obj_info(fd, MapInfo(), f"map fd {fd}")  # type: ignore[return-value]


def prog_info(fd: int) -> ProgInfo:
    """Kernel's view of a program fd.

    Example::

        sc.prog_info(prog_fd).run_cnt   # counted while sc.enable_stats() is open
    """
    return obj_info(fd, ProgInfo(), f"prog fd {fd}")  # type: ignore[return-value]


def link_info(fd: int) -> LinkInfo:
    """Kernel's view of a link fd.

    Example::

        sc.BPF_LINK_TYPE_NAMES[sc.link_info(link_fd).type]   # e.g. 'raw_tracepoint'
    """
    return obj_info(fd, LinkInfo(), f"link fd {fd}")  # type: ignore[return-value]


def _next_id(cmd: int, start: int) -> Optional[int]:
    attr = GetIdAttr(id=start)
    ret, err = bpf_errno(cmd, attr)
    if ret == 0:
        return int(attr.next_id)
    if err == 2:
        return None
    raise errno_error(cmd, "", err)


def _all_ids(cmd: int) -> list[int]:
    ids, cur = [], 0
    while (nxt := _next_id(cmd, cur)) is not None:
        ids.append(nxt)
        cur = nxt
    return ids


def prog_ids() -> list[int]:
    """Ids of every BPF program in the kernel.

    Example::

        sc.prog_info(prog_fd).id in sc.prog_ids()   # True
    """
    return _all_ids(BPF_PROG_GET_NEXT_ID)


def map_ids() -> list[int]:
    """Ids of every BPF map in the kernel.

    Example::

        sc.map_info(fd).id in sc.map_ids()   # True
    """
    return _all_ids(BPF_MAP_GET_NEXT_ID)


def link_ids() -> list[int]:
    """Ids of every BPF link in the kernel.

    Example::

        sc.link_info(link_fd).id in sc.link_ids()   # True
    """
    return _all_ids(BPF_LINK_GET_NEXT_ID)


def _fd_by_id(cmd: int, obj_id: int, kind: str) -> int:
    return bpf(cmd, GetIdAttr(id=obj_id), f"{kind} id {obj_id}")


def prog_fd_by_id(prog_id: int) -> int:
    """Open a program by id.

    Example::

        fd2 = sc.prog_fd_by_id(sc.prog_info(prog_fd).id)   # a new fd: os.close() it
    """
    return _fd_by_id(BPF_PROG_GET_FD_BY_ID, prog_id, "prog")


def map_fd_by_id(map_id: int) -> int:
    """Open a map by id.

    Example::

        fd2 = sc.map_fd_by_id(sc.map_info(fd).id)   # a new fd: os.close() it
    """
    return _fd_by_id(BPF_MAP_GET_FD_BY_ID, map_id, "map")


def map_fd_by_id_owned(map_id: int) -> io.FileIO:
    """:func:`map_fd_by_id` returning the fd inside an ``io.FileIO`` (see :func:`bpf_owned`).

    Example::

        with sc.map_fd_by_id_owned(map_id) as f: ...
    """
    return bpf_owned(BPF_MAP_GET_FD_BY_ID, GetIdAttr(id=map_id), f"map id {map_id}")


def link_fd_by_id(link_id: int) -> int:
    """Open a link by id.

    Example::

        fd2 = sc.link_fd_by_id(sc.link_info(link_fd).id)   # a new fd: os.close() it
    """
    return _fd_by_id(BPF_LINK_GET_FD_BY_ID, link_id, "link")


def btf_fd_by_id(btf_id: int) -> int:
    """Open a BTF object by id.

    Example::

        btf_fd = sc.btf_fd_by_id(sc.map_info(fd).btf_id)   # needs a map with BTF
    """
    return _fd_by_id(BPF_BTF_GET_FD_BY_ID, btf_id, "btf")
