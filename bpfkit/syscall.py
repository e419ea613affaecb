"""The bottom layer: ``bpf(2)`` and ``perf_event_open(2)`` through ctypes.

Each command has a typed ``ctypes.Structure`` mirroring its member of
``union bpf_attr`` in ``linux/bpf.h``; a failing call raises the
:class:`~bpfkit.errors.BpfError` subclass that fits its errno, with a message
naming the operation and the object.

Example::

    from bpfkit import syscall
    fd = syscall.map_create(syscall.BPF_MAP_TYPE_HASH, 4, 8, 1024, name="counts")
    syscall.map_update(fd, key_buf, value_buf)
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
from ctypes import (
    Structure,
    addressof,
    c_char,
    c_int,
    c_int32,
    c_long,
    c_uint8,
    c_uint16,
    c_uint32,
    c_uint64,
    c_void_p,
    sizeof,
)
from typing import Any, Optional, Union

from .errors import BpfError

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_syscall = _libc.syscall
_syscall.restype = c_long
_ioctl = _libc.ioctl
_ioctl.restype = c_int

_NR = {
    "x86_64": {"bpf": 321, "perf_event_open": 298},
    "aarch64": {"bpf": 280, "perf_event_open": 241},
}
try:
    _SYS_BPF = _NR[platform.machine()]["bpf"]
    _SYS_PERF_EVENT_OPEN = _NR[platform.machine()]["perf_event_open"]
except KeyError as exc:  # pragma: no cover - only x86_64 and arm64 are supported
    raise ImportError(f"bpfkit does not know the syscall numbers of {platform.machine()}") from exc

# enum bpf_cmd
BPF_MAP_CREATE = 0
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_PROG_LOAD = 5
BPF_OBJ_PIN = 6
BPF_OBJ_GET = 7
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_TEST_RUN = 10
BPF_PROG_GET_NEXT_ID = 11
BPF_MAP_GET_NEXT_ID = 12
BPF_PROG_GET_FD_BY_ID = 13
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
BPF_RAW_TRACEPOINT_OPEN = 17
BPF_BTF_LOAD = 18
BPF_BTF_GET_FD_BY_ID = 19
BPF_TASK_FD_QUERY = 20
BPF_MAP_LOOKUP_AND_DELETE_ELEM = 21
BPF_MAP_FREEZE = 22
BPF_BTF_GET_NEXT_ID = 23
BPF_MAP_LOOKUP_BATCH = 24
BPF_MAP_LOOKUP_AND_DELETE_BATCH = 25
BPF_MAP_UPDATE_BATCH = 26
BPF_MAP_DELETE_BATCH = 27
BPF_LINK_CREATE = 28
BPF_LINK_UPDATE = 29
BPF_LINK_GET_FD_BY_ID = 30
BPF_LINK_GET_NEXT_ID = 31
BPF_ENABLE_STATS = 32
BPF_ITER_CREATE = 33
BPF_LINK_DETACH = 34
BPF_PROG_BIND_MAP = 35

_CMD_NAMES = {v: k for k, v in list(globals().items()) if k.startswith("BPF_") and isinstance(v, int)}

# enum bpf_map_type
BPF_MAP_TYPE_UNSPEC = 0
BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_PROG_ARRAY = 3
BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4
BPF_MAP_TYPE_PERCPU_HASH = 5
BPF_MAP_TYPE_PERCPU_ARRAY = 6
BPF_MAP_TYPE_STACK_TRACE = 7
BPF_MAP_TYPE_CGROUP_ARRAY = 8
BPF_MAP_TYPE_LRU_HASH = 9
BPF_MAP_TYPE_LRU_PERCPU_HASH = 10
BPF_MAP_TYPE_LPM_TRIE = 11
BPF_MAP_TYPE_ARRAY_OF_MAPS = 12
BPF_MAP_TYPE_HASH_OF_MAPS = 13
BPF_MAP_TYPE_DEVMAP = 14
BPF_MAP_TYPE_SOCKMAP = 15
BPF_MAP_TYPE_CPUMAP = 16
BPF_MAP_TYPE_XSKMAP = 17
BPF_MAP_TYPE_SOCKHASH = 18
BPF_MAP_TYPE_CGROUP_STORAGE = 19
BPF_MAP_TYPE_REUSEPORT_SOCKARRAY = 20
BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE = 21
BPF_MAP_TYPE_QUEUE = 22
BPF_MAP_TYPE_STACK = 23
BPF_MAP_TYPE_SK_STORAGE = 24
BPF_MAP_TYPE_DEVMAP_HASH = 25
BPF_MAP_TYPE_STRUCT_OPS = 26
BPF_MAP_TYPE_RINGBUF = 27
BPF_MAP_TYPE_INODE_STORAGE = 28
BPF_MAP_TYPE_TASK_STORAGE = 29
BPF_MAP_TYPE_BLOOM_FILTER = 30
BPF_MAP_TYPE_USER_RINGBUF = 31
BPF_MAP_TYPE_CGRP_STORAGE = 32

MAP_TYPE_NAMES = {v: k[len("BPF_MAP_TYPE_"):].lower() for k, v in list(globals().items())
                  if k.startswith("BPF_MAP_TYPE_")}

# enum bpf_prog_type
BPF_PROG_TYPE_UNSPEC = 0
BPF_PROG_TYPE_SOCKET_FILTER = 1
BPF_PROG_TYPE_KPROBE = 2
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_PROG_TYPE_SCHED_ACT = 4
BPF_PROG_TYPE_TRACEPOINT = 5
BPF_PROG_TYPE_XDP = 6
BPF_PROG_TYPE_PERF_EVENT = 7
BPF_PROG_TYPE_CGROUP_SKB = 8
BPF_PROG_TYPE_CGROUP_SOCK = 9
BPF_PROG_TYPE_LWT_IN = 10
BPF_PROG_TYPE_LWT_OUT = 11
BPF_PROG_TYPE_LWT_XMIT = 12
BPF_PROG_TYPE_SOCK_OPS = 13
BPF_PROG_TYPE_SK_SKB = 14
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_PROG_TYPE_SK_MSG = 16
BPF_PROG_TYPE_RAW_TRACEPOINT = 17
BPF_PROG_TYPE_CGROUP_SOCK_ADDR = 18
BPF_PROG_TYPE_LWT_SEG6LOCAL = 19
BPF_PROG_TYPE_LIRC_MODE2 = 20
BPF_PROG_TYPE_SK_REUSEPORT = 21
BPF_PROG_TYPE_FLOW_DISSECTOR = 22
BPF_PROG_TYPE_CGROUP_SYSCTL = 23
BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE = 24
BPF_PROG_TYPE_CGROUP_SOCKOPT = 25
BPF_PROG_TYPE_TRACING = 26
BPF_PROG_TYPE_STRUCT_OPS = 27
BPF_PROG_TYPE_EXT = 28
BPF_PROG_TYPE_LSM = 29
BPF_PROG_TYPE_SK_LOOKUP = 30
BPF_PROG_TYPE_SYSCALL = 31
BPF_PROG_TYPE_NETFILTER = 32

PROG_TYPE_NAMES = {v: k[len("BPF_PROG_TYPE_"):].lower() for k, v in list(globals().items())
                   if k.startswith("BPF_PROG_TYPE_")}

# enum bpf_attach_type (the ones bpfkit uses)
BPF_CGROUP_INET_INGRESS = 0
BPF_TRACE_RAW_TP = 23
BPF_TRACE_FENTRY = 24
BPF_TRACE_FEXIT = 25
BPF_MODIFY_RETURN = 26
BPF_LSM_MAC = 27
BPF_TRACE_ITER = 28
BPF_XDP = 37
BPF_PERF_EVENT = 41
BPF_TRACE_KPROBE_MULTI = 42
BPF_TCX_INGRESS = 46
BPF_TCX_EGRESS = 47
BPF_TRACE_UPROBE_MULTI = 48

# enum bpf_link_type
BPF_LINK_TYPE_NAMES = {
    0: "unspec", 1: "raw_tracepoint", 2: "tracing", 3: "cgroup", 4: "iter", 5: "netns", 6: "xdp",
    7: "perf_event", 8: "kprobe_multi", 9: "struct_ops", 10: "netfilter", 11: "tcx", 12: "uprobe_multi",
    13: "netkit", 14: "sockmap",
}

# map flags
BPF_F_NO_PREALLOC = 1 << 0
BPF_F_NO_COMMON_LRU = 1 << 1
BPF_F_NUMA_NODE = 1 << 2
BPF_F_RDONLY = 1 << 3
BPF_F_WRONLY = 1 << 4
BPF_F_STACK_BUILD_ID = 1 << 5
BPF_F_ZERO_SEED = 1 << 6
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_WRONLY_PROG = 1 << 8
BPF_F_CLONE = 1 << 9
BPF_F_MMAPABLE = 1 << 10
BPF_F_INNER_MAP = 1 << 12

# program load flags
BPF_F_STRICT_ALIGNMENT = 1 << 0
BPF_F_ANY_ALIGNMENT = 1 << 1
BPF_F_TEST_RND_HI32 = 1 << 2
BPF_F_TEST_STATE_FREQ = 1 << 3
BPF_F_SLEEPABLE = 1 << 4

# element update flags
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_F_LOCK = 4

# enum bpf_stats_type
BPF_STATS_RUN_TIME = 0

BPF_OBJ_NAME_LEN = 16


class MapCreateAttr(Structure):
    """The anonymous ``union bpf_attr`` member used by BPF_MAP_CREATE.

    Example::

        attr = syscall.MapCreateAttr(map_type=syscall.BPF_MAP_TYPE_ARRAY, key_size=4, value_size=8, max_entries=1)
    """

    _fields_ = [
        ("map_type", c_uint32),
        ("key_size", c_uint32),
        ("value_size", c_uint32),
        ("max_entries", c_uint32),
        ("map_flags", c_uint32),
        ("inner_map_fd", c_uint32),
        ("numa_node", c_uint32),
        ("map_name", c_char * BPF_OBJ_NAME_LEN),
        ("map_ifindex", c_uint32),
        ("btf_fd", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("map_extra", c_uint64),
    ]


class MapElemAttr(Structure):
    """The anonymous ``union bpf_attr`` member used by BPF_MAP_*_ELEM (``value`` is also ``next_key``).

    Example::

        attr = syscall.MapElemAttr(map_fd=fd, key=syscall.buf_addr(key), value=syscall.buf_addr(value))
    """

    _fields_ = [
        ("map_fd", c_uint32),
        ("_pad", c_uint32),
        ("key", c_uint64),
        ("value", c_uint64),  # also next_key
        ("flags", c_uint64),
    ]


class MapBatchAttr(Structure):
    """``union bpf_attr``'s ``batch`` member, used by the BPF_MAP_*_BATCH commands.

    Example::

        attr = syscall.MapBatchAttr(map_fd=fd, keys=syscall.buf_addr(keys), values=syscall.buf_addr(values),
                                    out_batch=syscall.buf_addr(out), count=len(keys))
    """

    _fields_ = [
        ("in_batch", c_uint64),
        ("out_batch", c_uint64),
        ("keys", c_uint64),
        ("values", c_uint64),
        ("count", c_uint32),
        ("map_fd", c_uint32),
        ("elem_flags", c_uint64),
        ("flags", c_uint64),
    ]


class ObjPinAttr(Structure):
    """The anonymous ``union bpf_attr`` member used by BPF_OBJ_PIN / BPF_OBJ_GET.

    Example::

        path = ctypes.create_string_buffer(b"/sys/fs/bpf/counts")
        attr = syscall.ObjPinAttr(pathname=ctypes.addressof(path), bpf_fd=fd)
    """

    _fields_ = [
        ("pathname", c_uint64),
        ("bpf_fd", c_uint32),
        ("file_flags", c_uint32),
        ("path_fd", c_int32),
    ]


class ProgTestRunAttr(Structure):
    """``union bpf_attr``'s ``test`` member, used by BPF_PROG_TEST_RUN.

    Example::

        attr = syscall.ProgTestRunAttr(prog_fd=prog_fd, repeat=1)   # the kernel fills retval, duration
    """

    _fields_ = [
        ("prog_fd", c_uint32),
        ("retval", c_uint32),
        ("data_size_in", c_uint32),
        ("data_size_out", c_uint32),
        ("data_in", c_uint64),
        ("data_out", c_uint64),
        ("repeat", c_uint32),
        ("duration", c_uint32),
        ("ctx_size_in", c_uint32),
        ("ctx_size_out", c_uint32),
        ("ctx_in", c_uint64),
        ("ctx_out", c_uint64),
        ("flags", c_uint32),
        ("cpu", c_uint32),
        ("batch_size", c_uint32),
        ("_pad", c_uint32),
    ]


class GetIdAttr(Structure):
    """The anonymous ``union bpf_attr`` member used by BPF_*_GET_NEXT_ID and BPF_*_GET_FD_BY_ID.

    Example::

        attr = syscall.GetIdAttr(id=0)   # BPF_MAP_GET_NEXT_ID fills attr.next_id with the first map id
    """

    _fields_ = [
        ("id", c_uint32),  # start_id / prog_id / map_id / btf_id / link_id
        ("next_id", c_uint32),
        ("open_flags", c_uint32),
    ]


class InfoAttr(Structure):
    """``union bpf_attr``'s ``info`` member, used by BPF_OBJ_GET_INFO_BY_FD.

    Example::

        mi = syscall.MapInfo()
        attr = syscall.InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(mi), info=ctypes.addressof(mi))
    """

    _fields_ = [
        ("bpf_fd", c_uint32),
        ("info_len", c_uint32),
        ("info", c_uint64),
    ]


class RawTracepointAttr(Structure):
    """``union bpf_attr``'s ``raw_tracepoint`` member, used by BPF_RAW_TRACEPOINT_OPEN.

    Example::

        name = ctypes.create_string_buffer(b"sched_switch")
        attr = syscall.RawTracepointAttr(name=ctypes.addressof(name), prog_fd=prog_fd)
    """

    _fields_ = [
        ("name", c_uint64),
        ("prog_fd", c_uint32),
        ("_pad", c_uint32),
        ("cookie", c_uint64),
    ]


class ProgLoadAttr(Structure):
    """The anonymous ``union bpf_attr`` member used by BPF_PROG_LOAD.

    Example::

        code, lic = ctypes.create_string_buffer(insns, len(insns)), ctypes.create_string_buffer(b"GPL")
        attr = syscall.ProgLoadAttr(prog_type=syscall.BPF_PROG_TYPE_SOCKET_FILTER, insn_cnt=len(insns) // 8,
                                    insns=ctypes.addressof(code), license=ctypes.addressof(lic))
    """

    _fields_ = [
        ("prog_type", c_uint32),
        ("insn_cnt", c_uint32),
        ("insns", c_uint64),
        ("license", c_uint64),
        ("log_level", c_uint32),
        ("log_size", c_uint32),
        ("log_buf", c_uint64),
        ("kern_version", c_uint32),
        ("prog_flags", c_uint32),
        ("prog_name", c_char * BPF_OBJ_NAME_LEN),
        ("prog_ifindex", c_uint32),
        ("expected_attach_type", c_uint32),
        ("prog_btf_fd", c_uint32),
        ("func_info_rec_size", c_uint32),
        ("func_info", c_uint64),
        ("func_info_cnt", c_uint32),
        ("line_info_rec_size", c_uint32),
        ("line_info", c_uint64),
        ("line_info_cnt", c_uint32),
        ("attach_btf_id", c_uint32),
        ("attach_btf_obj_fd", c_uint32),  # also attach_prog_fd
        ("core_relo_cnt", c_uint32),
        ("fd_array", c_uint64),
        ("core_relos", c_uint64),
        ("core_relo_rec_size", c_uint32),
        ("log_true_size", c_uint32),
    ]


class LinkCreateAttr(Structure):
    """``union bpf_attr``'s ``link_create`` member, used by BPF_LINK_CREATE; ``u0``..``u5`` hold its
    attach-type specific union as u64 words.

    Example::

        attr = syscall.LinkCreateAttr(prog_fd=prog_fd, target_fd=perf_fd, attach_type=syscall.BPF_PERF_EVENT, u0=cookie)
    """

    _fields_ = [
        ("prog_fd", c_uint32),
        ("target_fd", c_uint32),
        ("attach_type", c_uint32),
        ("flags", c_uint32),
        # the union: perf_event.bpf_cookie / target_btf_id / tracing / kprobe_multi / uprobe_multi
        ("u0", c_uint64),
        ("u1", c_uint64),
        ("u2", c_uint64),
        ("u3", c_uint64),
        ("u4", c_uint64),
        ("u5", c_uint64),
    ]


class LinkDetachAttr(Structure):
    """``union bpf_attr``'s ``link_detach`` member, used by BPF_LINK_DETACH.

    Example::

        attr = syscall.LinkDetachAttr(link_fd=link_fd)
    """

    _fields_ = [("link_fd", c_uint32)]


class EnableStatsAttr(Structure):
    """``union bpf_attr``'s ``enable_stats`` member, used by BPF_ENABLE_STATS.

    Example::

        attr = syscall.EnableStatsAttr(type=syscall.BPF_STATS_RUN_TIME)
    """

    _fields_ = [("type", c_uint32)]


class MapFreezeAttr(Structure):
    """The leading ``map_fd`` of the BPF_MAP_*_ELEM ``union bpf_attr`` member: all BPF_MAP_FREEZE reads.

    Example::

        attr = syscall.MapFreezeAttr(map_fd=fd)
    """

    _fields_ = [("map_fd", c_uint32)]


class MapInfo(Structure):
    """Mirrors the kernel's ``struct bpf_map_info``, filled by BPF_OBJ_GET_INFO_BY_FD.

    Example::

        info = syscall.obj_info(fd, syscall.MapInfo())   # same as syscall.map_info(fd); info.max_entries
    """

    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("key_size", c_uint32),
        ("value_size", c_uint32),
        ("max_entries", c_uint32),
        ("map_flags", c_uint32),
        ("name", c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("netns_dev", c_uint64),
        ("netns_ino", c_uint64),
        ("btf_id", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("_pad", c_uint32),
        ("map_extra", c_uint64),
    ]


class ProgInfo(Structure):
    """Mirrors the kernel's ``struct bpf_prog_info`` (up to ``attach_btf_id``), filled by BPF_OBJ_GET_INFO_BY_FD.

    Example::

        info = syscall.obj_info(prog_fd, syscall.ProgInfo())   # same as syscall.prog_info(prog_fd); info.run_cnt
    """

    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("tag", c_uint8 * 8),
        ("jited_prog_len", c_uint32),
        ("xlated_prog_len", c_uint32),
        ("jited_prog_insns", c_uint64),
        ("xlated_prog_insns", c_uint64),
        ("load_time", c_uint64),
        ("created_by_uid", c_uint32),
        ("nr_map_ids", c_uint32),
        ("map_ids", c_uint64),
        ("name", c_char * BPF_OBJ_NAME_LEN),
        ("ifindex", c_uint32),
        ("gpl_compatible", c_uint32),
        ("netns_dev", c_uint64),
        ("netns_ino", c_uint64),
        ("nr_jited_ksyms", c_uint32),
        ("nr_jited_func_lens", c_uint32),
        ("jited_ksyms", c_uint64),
        ("jited_func_lens", c_uint64),
        ("btf_id", c_uint32),
        ("func_info_rec_size", c_uint32),
        ("func_info", c_uint64),
        ("nr_func_info", c_uint32),
        ("nr_line_info", c_uint32),
        ("line_info", c_uint64),
        ("jited_line_info", c_uint64),
        ("nr_jited_line_info", c_uint32),
        ("line_info_rec_size", c_uint32),
        ("jited_line_info_rec_size", c_uint32),
        ("nr_prog_tags", c_uint32),
        ("prog_tags", c_uint64),
        ("run_time_ns", c_uint64),
        ("run_cnt", c_uint64),
        ("recursion_misses", c_uint64),
        ("verified_insns", c_uint32),
        ("attach_btf_obj_id", c_uint32),
        ("attach_btf_id", c_uint32),
        ("_pad", c_uint32),
    ]


class LinkInfo(Structure):
    """Mirrors the kernel's ``struct bpf_link_info``: the common header plus its union as raw u64 words.

    Example::

        info = syscall.obj_info(link_fd, syscall.LinkInfo())   # same as syscall.link_info(link_fd)
        syscall.BPF_LINK_TYPE_NAMES[info.type]                 # e.g. 'perf_event'
    """

    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("prog_id", c_uint32),
        ("_pad", c_uint32),
        ("union", c_uint64 * 8),
    ]


def _errno_error(op: int, what: str, err: int) -> BpfError:
    return BpfError.from_errno(err, f"{_CMD_NAMES.get(op, f'bpf cmd {op}')} {what}".strip())


def bpf(cmd: int, attr: Structure, what: str = "") -> int:
    """Run one ``bpf(2)`` command; returns its result, raises BpfError on failure.

    ``what`` names the object in the error message, e.g. ``"map 'counts'"``.

    Example::

        syscall.bpf(syscall.BPF_MAP_FREEZE, syscall.MapFreezeAttr(map_fd=fd), "map 'counts'")
    """
    while True:
        ret = _syscall(c_long(_SYS_BPF), c_long(cmd), c_void_p(addressof(attr)), c_long(sizeof(attr)))
        if ret >= 0:
            return int(ret)
        err = ctypes.get_errno()
        if err == 4:  # EINTR: the kernel restarts nothing for us on some commands
            continue
        raise _errno_error(cmd, what, err)


def bpf_errno(cmd: int, attr: Structure) -> tuple[int, int]:
    """Like :func:`bpf` but returns ``(ret, errno)`` instead of raising (for probing and ENOENT-is-normal paths).

    Example::

        ret, err = syscall.bpf_errno(syscall.BPF_MAP_GET_FD_BY_ID, syscall.GetIdAttr(id=map_id))
        # ret == -1, err == errno.ENOENT once that map is gone
    """
    ret = _syscall(c_long(_SYS_BPF), c_long(cmd), c_void_p(addressof(attr)), c_long(sizeof(attr)))
    return int(ret), (ctypes.get_errno() if ret < 0 else 0)


def buf_addr(buf: Any) -> int:
    """Address of a writable buffer (bytearray, ctypes object, numpy array).

    Example::

        key = np.array([1], np.uint32)
        attr = syscall.MapElemAttr(map_fd=fd, key=syscall.buf_addr(key))
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

        addr, keep = syscall.ro_addr(bytes(64))   # e.g. a test run's data_in; hold `keep` meanwhile
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

        fd = syscall.map_create(syscall.BPF_MAP_TYPE_ARRAY, 4, 8, 16, name="counts")
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
        if syscall.map_lookup(fd, key, value): print(value[0])
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

        syscall.map_update(fd, np.array([0], np.uint32), np.array([42], np.uint64))
    """
    attr = MapElemAttr(map_fd=fd, key=buf_addr(key), value=buf_addr(value), flags=flags)
    bpf(BPF_MAP_UPDATE_ELEM, attr, what)


def map_delete(fd: int, key: Any, what: str = "") -> bool:
    """BPF_MAP_DELETE_ELEM; False when the key was absent.

    Example::

        syscall.map_delete(hash_fd, np.array([7], np.uint32))   # False if 7 was not there
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
        if syscall.map_lookup_and_delete(queue_fd, None, value): print(value[0])
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
        ok = syscall.map_get_next_key(fd, None, key)   # first key into `key`; False if empty
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
        n, done = syscall.map_batch(syscall.BPF_MAP_LOOKUP_BATCH, fd, None, out, keys, values, 64)
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

        syscall.map_freeze(fd)   # syscall.map_update(fd, ...) now raises BpfPermissionError
    """
    bpf(BPF_MAP_FREEZE, MapFreezeAttr(map_fd=fd), what)


# --- objects ----------------------------------------------------------------

def obj_pin(fd: int, path: str) -> None:
    """BPF_OBJ_PIN: pin a map/prog/link fd at ``path`` in a bpffs.

    Example::

        syscall.obj_pin(fd, "/sys/fs/bpf/counts")   # os.unlink() the path to unpin
    """
    p = ctypes.create_string_buffer(os.fsencode(path))
    bpf(BPF_OBJ_PIN, ObjPinAttr(pathname=addressof(p), bpf_fd=fd), f"at {path!r}")


def obj_get(path: str, flags: int = 0) -> int:
    """BPF_OBJ_GET: open a pinned object; returns its fd.

    Example::

        fd = syscall.obj_get("/sys/fs/bpf/counts")
    """
    p = ctypes.create_string_buffer(os.fsencode(path))
    return bpf(BPF_OBJ_GET, ObjPinAttr(pathname=addressof(p), file_flags=flags), f"at {path!r}")


def obj_info(fd: int, info: Structure, what: str = "") -> Structure:
    """BPF_OBJ_GET_INFO_BY_FD into ``info`` (a MapInfo / ProgInfo / LinkInfo).

    Example::

        info = syscall.obj_info(fd, syscall.MapInfo())   # info.max_entries, info.name
    """
    bpf(BPF_OBJ_GET_INFO_BY_FD, InfoAttr(bpf_fd=fd, info_len=sizeof(info), info=addressof(info)), what)
    return info


def map_info(fd: int) -> MapInfo:
    """Kernel's view of a map fd.

    Example::

        syscall.map_info(fd).name   # b'counts'
    """
    return obj_info(fd, MapInfo(), f"map fd {fd}")  # type: ignore[return-value]


def prog_info(fd: int) -> ProgInfo:
    """Kernel's view of a program fd.

    Example::

        syscall.prog_info(prog_fd).run_cnt   # counted while syscall.enable_stats() is open
    """
    return obj_info(fd, ProgInfo(), f"prog fd {fd}")  # type: ignore[return-value]


def link_info(fd: int) -> LinkInfo:
    """Kernel's view of a link fd.

    Example::

        syscall.BPF_LINK_TYPE_NAMES[syscall.link_info(link_fd).type]   # e.g. 'raw_tracepoint'
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

        syscall.prog_info(prog_fd).id in syscall.prog_ids()   # True
    """
    return _all_ids(BPF_PROG_GET_NEXT_ID)


def map_ids() -> list[int]:
    """Ids of every BPF map in the kernel.

    Example::

        syscall.map_info(fd).id in syscall.map_ids()   # True
    """
    return _all_ids(BPF_MAP_GET_NEXT_ID)


def link_ids() -> list[int]:
    """Ids of every BPF link in the kernel.

    Example::

        syscall.link_info(link_fd).id in syscall.link_ids()   # True
    """
    return _all_ids(BPF_LINK_GET_NEXT_ID)


def _fd_by_id(cmd: int, obj_id: int, kind: str) -> int:
    return bpf(cmd, GetIdAttr(id=obj_id), f"{kind} id {obj_id}")


def prog_fd_by_id(prog_id: int) -> int:
    """Open a program by id.

    Example::

        fd2 = syscall.prog_fd_by_id(syscall.prog_info(prog_fd).id)   # a new fd: os.close() it
    """
    return _fd_by_id(BPF_PROG_GET_FD_BY_ID, prog_id, "prog")


def map_fd_by_id(map_id: int) -> int:
    """Open a map by id.

    Example::

        fd2 = syscall.map_fd_by_id(syscall.map_info(fd).id)   # a new fd: os.close() it
    """
    return _fd_by_id(BPF_MAP_GET_FD_BY_ID, map_id, "map")


def link_fd_by_id(link_id: int) -> int:
    """Open a link by id.

    Example::

        fd2 = syscall.link_fd_by_id(syscall.link_info(link_fd).id)   # a new fd: os.close() it
    """
    return _fd_by_id(BPF_LINK_GET_FD_BY_ID, link_id, "link")


def btf_fd_by_id(btf_id: int) -> int:
    """Open a BTF object by id.

    Example::

        btf_fd = syscall.btf_fd_by_id(syscall.map_info(fd).btf_id)   # needs a map with BTF
    """
    return _fd_by_id(BPF_BTF_GET_FD_BY_ID, btf_id, "btf")


# --- programs and links -----------------------------------------------------

def prog_test_run(prog_fd: int, *, data_in: Optional[bytes] = None, data_out_size: int = 0,
                  ctx_in: Optional[bytes] = None, ctx_out_size: int = 0, repeat: int = 1,
                  flags: int = 0, cpu: int = 0) -> tuple[int, bytes, bytes, int]:
    """BPF_PROG_TEST_RUN. Returns ``(retval, data_out, ctx_out, duration_ns)``.

    Example::

        retval, data, ctx, ns = syscall.prog_test_run(xdp_fd, data_in=bytes(64), data_out_size=64)
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
        fd, log = syscall.prog_load(syscall.BPF_PROG_TYPE_SOCKET_FILTER, insns, name="ret1")
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

        link_fd = syscall.link_create(prog_fd, perf_fd, syscall.BPF_PERF_EVENT, extra=(cookie,))
    """
    attr = LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type, flags=flags)
    for i, word in enumerate(extra):
        setattr(attr, f"u{i}", word)
    return bpf(BPF_LINK_CREATE, attr, what)


def link_detach(link_fd: int) -> None:
    """BPF_LINK_DETACH: detach without closing the fd.

    Example::

        syscall.link_detach(xdp_link_fd)   # the interface is free again; still os.close(xdp_link_fd)
        # (links that cannot detach, e.g. raw_tracepoint, raise FeatureNotSupported)
    """
    bpf(BPF_LINK_DETACH, LinkDetachAttr(link_fd=link_fd), f"link fd {link_fd}")


def raw_tracepoint_open(prog_fd: int, name: Optional[str], what: str = "") -> int:
    """BPF_RAW_TRACEPOINT_OPEN (raw_tp by name, or tp_btf/fentry/fexit with ``name=None``); returns a link fd.

    Example::

        link_fd = syscall.raw_tracepoint_open(raw_tp_prog_fd, "sched_switch")
    """
    keep = ctypes.create_string_buffer(name.encode()) if name else None
    attr = RawTracepointAttr(name=addressof(keep) if keep else 0, prog_fd=prog_fd)
    return bpf(BPF_RAW_TRACEPOINT_OPEN, attr, what or (f"raw tracepoint {name!r}" if name else ""))


class OwnedFd:
    """A kernel handle that is only an fd (e.g. the run-time stats switch): close() or a ``with``
    block releases it.

    Example::

        with syscall.enable_stats():
            ...   # programs' run_cnt / run_time_ns are counted in here
    """

    def __init__(self, fd: int, what: str) -> None:
        self._fd = fd
        self.what = what

    def fileno(self) -> int:
        """The fd (-1 once closed)."""
        return self._fd

    def close(self) -> None:
        """Release the fd. Idempotent."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> "OwnedFd":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()


def enable_stats(stats_type: int = BPF_STATS_RUN_TIME) -> OwnedFd:
    """BPF_ENABLE_STATS: programs' run time and count are collected while the handle is open.

    Example::

        with syscall.enable_stats():
            ...   # run the workload
            print(syscall.prog_info(prog_fd).run_time_ns)
    """
    return OwnedFd(bpf(BPF_ENABLE_STATS, EnableStatsAttr(type=stats_type), "run-time stats"), "run-time stats")


# --- perf_event_open ----------------------------------------------------------

PERF_TYPE_HARDWARE = 0
PERF_TYPE_SOFTWARE = 1
PERF_TYPE_TRACEPOINT = 2
PERF_TYPE_HW_CACHE = 3
PERF_TYPE_RAW = 4
PERF_TYPE_BREAKPOINT = 5

PERF_SAMPLE_IP = 1 << 0
PERF_SAMPLE_TID = 1 << 1
PERF_SAMPLE_TIME = 1 << 2
PERF_SAMPLE_CPU = 1 << 7
PERF_SAMPLE_PERIOD = 1 << 8
PERF_SAMPLE_RAW = 1 << 10

PERF_FORMAT_TOTAL_TIME_ENABLED = 1 << 0
PERF_FORMAT_TOTAL_TIME_RUNNING = 1 << 1
PERF_FORMAT_ID = 1 << 2
PERF_FORMAT_GROUP = 1 << 3

# perf_event_attr flag bits (the bitfield word)
PERF_ATTR_DISABLED = 1 << 0
PERF_ATTR_INHERIT = 1 << 1
PERF_ATTR_PINNED = 1 << 2
PERF_ATTR_EXCLUSIVE = 1 << 3
PERF_ATTR_EXCLUDE_USER = 1 << 4
PERF_ATTR_EXCLUDE_KERNEL = 1 << 5
PERF_ATTR_EXCLUDE_HV = 1 << 6
PERF_ATTR_EXCLUDE_IDLE = 1 << 7
PERF_ATTR_MMAP = 1 << 8
PERF_ATTR_COMM = 1 << 9
PERF_ATTR_FREQ = 1 << 10
PERF_ATTR_WATERMARK = 1 << 14

PERF_FLAG_FD_CLOEXEC = 1 << 3

PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_RESET = 0x2403
PERF_EVENT_IOC_SET_BPF = 0x40042408


class PerfEventAttr(Structure):
    """Mirrors the kernel's ``struct perf_event_attr`` (PERF_ATTR_SIZE_VER8); ``flags`` is its bitfield word.

    Example::

        attr = syscall.PerfEventAttr(type=syscall.PERF_TYPE_SOFTWARE, config=0,   # config 0: cpu-clock
                                     flags=syscall.PERF_ATTR_DISABLED)
    """

    _fields_ = [
        ("type", c_uint32),
        ("size", c_uint32),
        ("config", c_uint64),
        ("sample_period", c_uint64),  # also sample_freq
        ("sample_type", c_uint64),
        ("read_format", c_uint64),
        ("flags", c_uint64),
        ("wakeup_events", c_uint32),  # also wakeup_watermark
        ("bp_type", c_uint32),
        ("config1", c_uint64),  # bp_addr / kprobe_func / uprobe_path
        ("config2", c_uint64),  # bp_len / kprobe_addr / probe_offset
        ("branch_sample_type", c_uint64),
        ("sample_regs_user", c_uint64),
        ("sample_stack_user", c_uint32),
        ("clockid", c_int32),
        ("sample_regs_intr", c_uint64),
        ("aux_watermark", c_uint32),
        ("sample_max_stack", c_uint16),
        ("_reserved_2", c_uint16),
        ("aux_sample_size", c_uint32),
        ("_reserved_3", c_uint32),
        ("sig_data", c_uint64),
        ("config3", c_uint64),
    ]


def perf_event_open(attr: PerfEventAttr, pid: int = -1, cpu: int = 0, group_fd: int = -1,
                    flags: int = PERF_FLAG_FD_CLOEXEC, what: str = "") -> int:
    """perf_event_open(2); returns the event fd. ``attr.size`` is filled in.

    Example::

        attr = syscall.PerfEventAttr(type=syscall.PERF_TYPE_SOFTWARE, config=0)   # cpu-clock
        fd = syscall.perf_event_open(attr, pid=0, cpu=-1)   # this process, any CPU
    """
    attr.size = sizeof(attr)
    ret = _syscall(c_long(_SYS_PERF_EVENT_OPEN), c_void_p(addressof(attr)), c_long(pid), c_long(cpu),
                   c_long(group_fd), c_long(flags))
    if ret < 0:
        err = ctypes.get_errno()
        raise BpfError.from_errno(err, f"perf_event_open {what}".strip())
    return int(ret)


def ioctl(fd: int, request: int, arg: int = 0, what: str = "") -> int:
    """ioctl(2) with an integer argument; raises BpfError on failure.

    Example::

        syscall.ioctl(perf_fd, syscall.PERF_EVENT_IOC_ENABLE)
    """
    ret = _ioctl(c_int(fd), ctypes.c_ulong(request), c_long(arg))
    if ret < 0:
        err = ctypes.get_errno()
        raise BpfError.from_errno(err, f"ioctl {request:#x} {what}".strip())
    return int(ret)


def possible_cpus() -> int:
    """Number of possible CPUs (``/sys/devices/system/cpu/possible``), the per-CPU map stride.

    Example::

        value = np.zeros(syscall.possible_cpus(), np.uint64)   # percpu map value buffer (u64 values)
    """
    return len(_parse_cpu_list(open("/sys/devices/system/cpu/possible").read()))


def online_cpus() -> list[int]:
    """Online CPU numbers.

    Example::

        syscall.online_cpus()   # e.g. [0, 1, 2, 3]
    """
    return _parse_cpu_list(open("/sys/devices/system/cpu/online").read())


def _parse_cpu_list(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-")
            cpus.extend(range(int(lo), int(hi) + 1))
        else:
            cpus.append(int(part))
    return cpus


