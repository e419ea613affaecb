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
import os
from ctypes import Structure, addressof, c_char, c_long, c_void_p, sizeof
from typing import Any, Optional, Union

from ..errors import BpfError
from .attrs import (BtfInfo, BtfLoadAttr, EnableStatsAttr, GetIdAttr, InfoAttr, LinkCreateAttr, LinkDetachAttr,
                    LinkInfo, MapBatchAttr, MapCreateAttr, MapElemAttr, MapFreezeAttr, MapInfo, ObjPinAttr,
                    ProgInfo, ProgLoadAttr, ProgTestRunAttr, RawTracepointAttr)
from .consts import (BPF_ANY, BPF_BTF_GET_FD_BY_ID, BPF_BTF_LOAD, BPF_ENABLE_STATS, BPF_LINK_CREATE,
                     BPF_LINK_DETACH, BPF_LINK_GET_FD_BY_ID, BPF_LINK_GET_NEXT_ID, BPF_MAP_CREATE,
                     BPF_MAP_DELETE_ELEM, BPF_MAP_FREEZE, BPF_MAP_GET_FD_BY_ID, BPF_MAP_GET_NEXT_ID,
                     BPF_MAP_GET_NEXT_KEY, BPF_MAP_LOOKUP_AND_DELETE_ELEM, BPF_MAP_LOOKUP_ELEM,
                     BPF_MAP_UPDATE_ELEM, BPF_OBJ_GET, BPF_OBJ_GET_INFO_BY_FD, BPF_OBJ_NAME_LEN, BPF_OBJ_PIN,
                     BPF_PROG_GET_FD_BY_ID, BPF_PROG_GET_NEXT_ID, BPF_PROG_LOAD, BPF_PROG_TEST_RUN,
                     BPF_RAW_TRACEPOINT_OPEN, BPF_STATS_RUN_TIME, CMD_NAMES, MAP_TYPE_NAMES, PROG_TYPE_NAMES)
from .fd import OwnedFd
from .libc import SYS_BPF, syscall as _syscall

__all__ = [
    "bpf", "bpf_errno", "buf_addr", "ro_addr", "map_create", "map_lookup", "map_update", "map_delete",
    "map_lookup_and_delete", "map_get_next_key", "map_batch", "map_freeze", "obj_pin", "obj_get", "obj_info",
    "map_info", "prog_info", "link_info", "prog_ids", "map_ids", "link_ids", "prog_fd_by_id", "map_fd_by_id",
    "link_fd_by_id", "btf_fd_by_id", "prog_test_run", "prog_load", "link_create", "link_detach",
    "raw_tracepoint_open", "enable_stats", "btf_load", "btf_raw_by_id",
]


def _errno_error(op: int, what: str, err: int) -> BpfError:
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
        raise _errno_error(cmd, what, err)


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
    return addressof((c_char * len(buf)).from_buffer(buf))


def ro_addr(data: Union[bytes, Any]) -> tuple[int, Any]:
    """Address of read-only data; returns the address and an object to keep alive.

    Example::

        addr, keep = sc.ro_addr(bytes(64))   # e.g. a test run's data_in; hold `keep` meanwhile
    """
    if isinstance(data, bytes):
        keep = ctypes.create_string_buffer(data, len(data))
        return addressof(keep), keep
    return buf_addr(data), data


# --- maps -------------------------------------------------------------------

def map_create(map_type: int, key_size: int, value_size: int, max_entries: int, *, flags: int = 0,
               name: str = "", inner_map_fd: int = 0, btf_fd: int = 0, btf_key_type_id: int = 0,
               btf_value_type_id: int = 0, map_extra: int = 0) -> int:
    """BPF_MAP_CREATE; returns the new map's fd.

    Example::

        fd = sc.map_create(sc.BPF_MAP_TYPE_ARRAY, 4, 8, 16, name="counts")
    """
    attr = MapCreateAttr(map_type=map_type, key_size=key_size, value_size=value_size,
                         max_entries=max_entries, map_flags=flags, inner_map_fd=inner_map_fd,
                         map_name=name.encode()[: BPF_OBJ_NAME_LEN - 1], btf_fd=btf_fd,
                         btf_key_type_id=btf_key_type_id, btf_value_type_id=btf_value_type_id,
                         map_extra=map_extra)
    return bpf(BPF_MAP_CREATE, attr, f"map '{name}' ({MAP_TYPE_NAMES.get(map_type, map_type)})")


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
    raise _errno_error(BPF_MAP_LOOKUP_ELEM, what, err)


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
    raise _errno_error(BPF_MAP_DELETE_ELEM, what, err)


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
    raise _errno_error(BPF_MAP_LOOKUP_AND_DELETE_ELEM, what, err)


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
    raise _errno_error(BPF_MAP_GET_NEXT_KEY, what, err)


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
    raise _errno_error(cmd, what, err)


def map_freeze(fd: int, what: str = "") -> None:
    """BPF_MAP_FREEZE: user space can no longer write the map.

    Example::

        sc.map_freeze(fd)   # sc.map_update(fd, ...) now raises BpfPermissionError
    """
    bpf(BPF_MAP_FREEZE, MapFreezeAttr(map_fd=fd), what)


# --- objects ----------------------------------------------------------------

def obj_pin(fd: int, path: str) -> None:
    """BPF_OBJ_PIN: pin a map/prog/link fd at ``path`` in a bpffs.

    Example::

        sc.obj_pin(fd, "/sys/fs/bpf/counts")   # os.unlink() the path to unpin
    """
    p = ctypes.create_string_buffer(os.fsencode(path))
    bpf(BPF_OBJ_PIN, ObjPinAttr(pathname=addressof(p), bpf_fd=fd), f"at {path!r}")


def obj_get(path: str, flags: int = 0) -> int:
    """BPF_OBJ_GET: open a pinned object; returns its fd.

    Example::

        fd = sc.obj_get("/sys/fs/bpf/counts")
    """
    p = ctypes.create_string_buffer(os.fsencode(path))
    return bpf(BPF_OBJ_GET, ObjPinAttr(pathname=addressof(p), file_flags=flags), f"at {path!r}")


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
    raise _errno_error(cmd, "", err)


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


# --- programs and links -----------------------------------------------------

def prog_test_run(prog_fd: int, *, data_in: Optional[bytes] = None, data_out_size: int = 0,
                  ctx_in: Optional[bytes] = None, ctx_out_size: int = 0, repeat: int = 1,
                  flags: int = 0, cpu: int = 0) -> tuple[int, bytes, bytes, int]:
    """BPF_PROG_TEST_RUN. Returns ``(retval, data_out, ctx_out, duration_ns)``.

    Example::

        retval, data, ctx, ns = sc.prog_test_run(xdp_fd, data_in=bytes(64), data_out_size=64)
    """
    din_addr, din_keep = ro_addr(data_in) if data_in is not None else (0, None)
    cin_addr, cin_keep = ro_addr(ctx_in) if ctx_in is not None else (0, None)
    dout = ctypes.create_string_buffer(data_out_size) if data_out_size else None
    cout = ctypes.create_string_buffer(ctx_out_size) if ctx_out_size else None
    attr = ProgTestRunAttr(
        prog_fd=prog_fd, data_size_in=len(data_in) if data_in is not None else 0,
        data_size_out=data_out_size, data_in=din_addr, data_out=addressof(dout) if dout else 0,
        repeat=repeat, ctx_size_in=len(ctx_in) if ctx_in is not None else 0,
        ctx_size_out=ctx_out_size, ctx_in=cin_addr, ctx_out=addressof(cout) if cout else 0,
        flags=flags, cpu=cpu)
    bpf(BPF_PROG_TEST_RUN, attr, f"prog fd {prog_fd}")
    del din_keep, cin_keep
    d = dout.raw[: attr.data_size_out] if dout else b""
    c = cout.raw[: attr.ctx_size_out] if cout else b""
    return int(attr.retval), d, c, int(attr.duration)


def prog_load(prog_type: int, insns: bytes, *, license: str = "GPL", expected_attach_type: int = 0,
              attach_btf_id: int = 0, attach_btf_obj_fd: int = 0, name: str = "", prog_flags: int = 0,
              log_level: int = 0, log_size: int = 0) -> tuple[int, str]:
    """Raw BPF_PROG_LOAD of ``insns`` (8-byte instructions, no relocations); returns ``(fd, log)``.

    For small hand-written programs (feature probes); objects go through the libbpf loader.
    On failure the raised BpfError carries the verifier log, if requested, in its message.

    Example::

        insns = bytes([0xB7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])   # r0 = 1; exit
        fd, log = sc.prog_load(sc.BPF_PROG_TYPE_SOCKET_FILTER, insns, name="ret1")
    """
    code = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(license.encode())
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = ProgLoadAttr(prog_type=prog_type, insn_cnt=len(insns) // 8, insns=addressof(code),
                        license=addressof(lic), log_level=log_level if log else 0,
                        log_size=log_size if log else 0, log_buf=addressof(log) if log else 0,
                        prog_flags=prog_flags, prog_name=name.encode()[: BPF_OBJ_NAME_LEN - 1],
                        expected_attach_type=expected_attach_type, attach_btf_id=attach_btf_id,
                        attach_btf_obj_fd=attach_btf_obj_fd)
    ret, err = bpf_errno(BPF_PROG_LOAD, attr)
    text = log.value.decode(errors="replace") if log else ""
    if ret < 0:
        e = _errno_error(BPF_PROG_LOAD, f"{PROG_TYPE_NAMES.get(prog_type, prog_type)} program '{name}'", err)
        if text:
            e.args = (f"{e.args[0]}\n{text}",)
        raise e
    return ret, text


def link_create(prog_fd: int, target_fd: int, attach_type: int, *, flags: int = 0,
                extra: tuple[int, ...] = (), what: str = "") -> int:
    """BPF_LINK_CREATE; ``extra`` fills the attach-type specific union as u64 words
    (e.g. ``(bpf_cookie,)`` for BPF_PERF_EVENT).

    Example::

        link_fd = sc.link_create(prog_fd, perf_fd, sc.BPF_PERF_EVENT, extra=(cookie,))
    """
    attr = LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type, flags=flags)
    for i, word in enumerate(extra):
        setattr(attr, f"u{i}", word)
    return bpf(BPF_LINK_CREATE, attr, what)


def link_detach(link_fd: int) -> None:
    """BPF_LINK_DETACH: detach without closing the fd.

    Example::

        sc.link_detach(xdp_link_fd)   # the interface is free again; still os.close(xdp_link_fd)
        # (links that cannot detach, e.g. raw_tracepoint, raise FeatureNotSupported)
    """
    bpf(BPF_LINK_DETACH, LinkDetachAttr(link_fd=link_fd), f"link fd {link_fd}")


def raw_tracepoint_open(prog_fd: int, name: Optional[str], what: str = "") -> int:
    """BPF_RAW_TRACEPOINT_OPEN (raw_tp by name, or tp_btf/fentry/fexit with ``name=None``); returns a link fd.

    Example::

        link_fd = sc.raw_tracepoint_open(raw_tp_prog_fd, "sched_switch")
    """
    keep = ctypes.create_string_buffer(name.encode()) if name else None
    attr = RawTracepointAttr(name=addressof(keep) if keep else 0, prog_fd=prog_fd)
    return bpf(BPF_RAW_TRACEPOINT_OPEN, attr, what or (f"raw tracepoint {name!r}" if name else ""))


def enable_stats(stats_type: int = BPF_STATS_RUN_TIME) -> OwnedFd:
    """BPF_ENABLE_STATS: programs' run time and count are collected while the handle is open.

    Example::

        with sc.enable_stats():
            ...   # run the workload
            print(sc.prog_info(prog_fd).run_time_ns)
    """
    return OwnedFd(bpf(BPF_ENABLE_STATS, EnableStatsAttr(type=stats_type), "run-time stats"), "run-time stats")



# --- BTF objects ----------------------------------------------------------------

def btf_load(blob: bytes, what: str = "BTF") -> int:
    """BPF_BTF_LOAD; returns the BTF fd. On rejection the kernel's log (last line) is in the error.

    Example::

        btf_fd = sc.btf_load(blob)   # os.close() it once the maps/programs using it exist
    """
    data = ctypes.create_string_buffer(blob, len(blob))
    attr = BtfLoadAttr(btf=addressof(data), btf_size=len(blob))
    ret, err = bpf_errno(BPF_BTF_LOAD, attr)
    if ret >= 0:
        return ret
    # again with a log, only on failure: the log costs the kernel time on every success
    log = ctypes.create_string_buffer(64 * 1024)
    attr = BtfLoadAttr(btf=addressof(data), btf_size=len(blob), btf_log_buf=addressof(log),
                       btf_log_size=len(log), btf_log_level=1)
    ret, err = bpf_errno(BPF_BTF_LOAD, attr)
    if ret >= 0:
        return ret
    text = log.value.decode(errors="replace").strip().splitlines()
    raise BpfError.from_errno(err, f"BPF_BTF_LOAD of {what}" + (f": {text[-1]}" if text else ""))


def btf_raw_by_id(btf_id: int) -> bytes:
    """The raw BTF blob of kernel BTF object ``btf_id`` (a map's or program's BTF, or the kernel's).

    Example::

        raw = sc.btf_raw_by_id(sc.map_info(fd).btf_id)
    """
    fd = btf_fd_by_id(btf_id)
    try:
        info = BtfInfo()
        obj_info(fd, info, f"btf id {btf_id}")
        buf = ctypes.create_string_buffer(info.btf_size)
        info2 = BtfInfo(btf=addressof(buf), btf_size=info.btf_size)
        obj_info(fd, info2, f"btf id {btf_id}")
        return buf.raw[: info2.btf_size]
    finally:
        os.close(fd)
