"""The program, link, statistics and BTF commands of ``bpf(2)``.

Example::

    fd, log = sc.prog_load(sc.BPF_PROG_TYPE_SOCKET_FILTER, insns, name="ret1")
    link_fd = sc.link_create(fd, perf_fd, sc.BPF_PERF_EVENT)
"""
from __future__ import annotations

import ctypes
import io
import os
from ctypes import addressof
from errno import EAGAIN
from typing import Optional

from ..errors import BpfError
from .attrs import (BtfInfo, BtfLoadAttr, EnableStatsAttr, LinkCreateAttr, LinkDetachAttr, ProgLoadAttr,
                    ProgTestRunAttr, RawTracepointAttr)
from .args import check_cstr
from .bpf import bpf, bpf_errno, bpf_owned, btf_fd_by_id, bytes_addr, errno_error, obj_info, ro_addr
from .consts import (BPF_BTF_LOAD, BPF_ENABLE_STATS, BPF_LINK_CREATE, BPF_LINK_DETACH, BPF_OBJ_NAME_LEN,
                     BPF_PROG_LOAD, BPF_PROG_TEST_RUN, BPF_RAW_TRACEPOINT_OPEN, BPF_STATS_RUN_TIME, PROG_TYPE_NAMES)
from .fd import OwnedFd

__all__ = [
    "prog_test_run", "prog_load", "prog_load_errno", "PROG_LOAD_ATTEMPTS", "link_create", "link_create_owned",
    "link_detach", "raw_tracepoint_open", "raw_tracepoint_open_owned", "enable_stats", "btf_load", "btf_load_owned",
    "btf_raw_by_id",
]


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


PROG_LOAD_ATTEMPTS = 5


def prog_load_errno(attr: ProgLoadAttr) -> tuple[int, int]:
    """BPF_PROG_LOAD of a filled ``attr``: ``(fd, 0)`` or ``(-1, errno)``. The verifier gives up
    with EAGAIN when a signal is pending (a profiler's timer, a child's exit); that is tried again,
    as libbpf does, up to PROG_LOAD_ATTEMPTS times.

    Example::

        fd, err = sc.prog_load_errno(attr)
    """
    for _ in range(PROG_LOAD_ATTEMPTS):
        ret, err = bpf_errno(BPF_PROG_LOAD, attr)
        if err != EAGAIN:
            break
    return ret, err


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
    code, code_keep = bytes_addr(insns)
    lic, lic_keep = bytes_addr(license.encode() + b"\0")
    log = ctypes.create_string_buffer(log_size) if log_size else None
    attr = ProgLoadAttr(prog_type=prog_type, insn_cnt=len(insns) // 8, insns=code,
                        license=lic, log_level=log_level if log else 0,
                        log_size=log_size if log else 0, log_buf=addressof(log) if log else 0,
                        prog_flags=prog_flags, prog_name=name.encode()[: BPF_OBJ_NAME_LEN - 1],
                        expected_attach_type=expected_attach_type, attach_btf_id=attach_btf_id,
                        attach_btf_obj_fd=attach_btf_obj_fd)
    ret, err = prog_load_errno(attr)
    text = log.value.decode(errors="replace") if log else ""
    if ret < 0:
        e = errno_error(BPF_PROG_LOAD, f"{PROG_TYPE_NAMES.get(prog_type, prog_type)} program '{name}'", err)
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
    return bpf(BPF_LINK_CREATE, _link_attr(prog_fd, target_fd, attach_type, flags, extra), what)


def link_create_owned(prog_fd: int, target_fd: int, attach_type: int, *, flags: int = 0,
                      extra: tuple[int, ...] = (), what: str = "") -> io.FileIO:
    """:func:`link_create` returning the link fd inside an ``io.FileIO`` that closes it once, when
    closed or dropped (see :func:`bpf_owned`).

    Example::

        f = sc.link_create_owned(prog_fd, ifindex, sc.BPF_XDP)
    """
    return bpf_owned(BPF_LINK_CREATE, _link_attr(prog_fd, target_fd, attach_type, flags, extra), what)


def _link_attr(prog_fd: int, target_fd: int, attach_type: int, flags: int, extra: tuple[int, ...]) -> LinkCreateAttr:
    attr = LinkCreateAttr(prog_fd=prog_fd, target_fd=target_fd, attach_type=attach_type, flags=flags)
    for i, word in enumerate(extra):
        setattr(attr, f"u{i}", word)
    return attr


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


def raw_tracepoint_open_owned(prog_fd: int, name: Optional[str], what: str = "") -> io.FileIO:
    """:func:`raw_tracepoint_open` returning the link fd inside an ``io.FileIO`` (see
    :func:`bpf_owned`).

    Example::

        f = sc.raw_tracepoint_open_owned(raw_tp_prog_fd, "sched_switch")
    """
    keep = ctypes.create_string_buffer(check_cstr("raw tracepoint name", name).encode()) if name else None
    attr = RawTracepointAttr(name=addressof(keep) if keep else 0, prog_fd=prog_fd)
    return bpf_owned(BPF_RAW_TRACEPOINT_OPEN, attr, what or (f"raw tracepoint {name!r}" if name else ""))


def enable_stats(stats_type: int = BPF_STATS_RUN_TIME) -> OwnedFd:
    """BPF_ENABLE_STATS: programs' run time and count are collected while the handle is open.

    Example::

        with sc.enable_stats():
            ...   # run the workload
            print(sc.prog_info(prog_fd).run_time_ns)
    """
    return OwnedFd(bpf_owned(BPF_ENABLE_STATS, EnableStatsAttr(type=stats_type), "run-time stats"), "run-time stats")



# --- BTF objects ----------------------------------------------------------------

def btf_load(blob: bytes, what: str = "BTF") -> int:
    """BPF_BTF_LOAD; returns the BTF fd. On rejection the kernel's log (last line) is in the error.

    Example::

        btf_fd = sc.btf_load(blob)   # os.close() it once the maps/programs using it exist
    """
    data, keep = bytes_addr(blob)
    attr = BtfLoadAttr(btf=data, btf_size=len(blob))
    ret, err = bpf_errno(BPF_BTF_LOAD, attr)
    if ret >= 0:
        return ret
    # again with a log, only on failure: the log costs the kernel time on every success
    log = ctypes.create_string_buffer(64 * 1024)
    attr = BtfLoadAttr(btf=data, btf_size=len(blob), btf_log_buf=addressof(log),
                       btf_log_size=len(log), btf_log_level=1)
    ret, err = bpf_errno(BPF_BTF_LOAD, attr)
    if ret >= 0:
        return ret
    text = log.value.decode(errors="replace").strip().splitlines()
    raise BpfError.from_errno(err, f"BPF_BTF_LOAD of {what}" + (f": {text[-1]}" if text else ""))


def btf_load_owned(blob: bytes, what: str = "BTF") -> io.FileIO:
    """:func:`btf_load` returning the BTF fd inside an ``io.FileIO`` (see :func:`bpf_owned`).

    Example::

        with sc.btf_load_owned(blob) as btf: ...   # btf.fileno() for map_create
    """
    data, keep = bytes_addr(blob)
    try:
        return bpf_owned(BPF_BTF_LOAD, BtfLoadAttr(btf=data, btf_size=len(blob)), what)
    except BpfError:
        pass
    log = ctypes.create_string_buffer(64 * 1024)
    attr = BtfLoadAttr(btf=data, btf_size=len(blob), btf_log_buf=addressof(log),
                       btf_log_size=len(log), btf_log_level=1)
    try:
        return bpf_owned(BPF_BTF_LOAD, attr, what)
    except BpfError as e:
        err = e.errno
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
