"""Program types, map types and helpers this kernel has, probed by loading tiny programs and maps.

Example::

    prog_type("kprobe"), map_type("ringbuf"), helper("get_attach_cookie")
"""
from __future__ import annotations

import errno as _errno
import os
from functools import lru_cache
from typing import Union

from .. import _sys as sc
from ..errors import BpfError, BpfUsageError
from .probe import (EXPECTED_ATTACH, RET0, FeatureStatus, btf_id, close_fd, insn, kernel_enum, name_to_id,
                    try_load)

__all__ = [
    "NEEDS_TARGET", "prog_type_status", "prog_type", "map_type_status", "map_type", "helper_id",
    "helper_status", "helper",
]


# Program types that only load against a target (struct_ops: a kernel struct's member; ext: a
# function of another loaded BPF program), which a standalone probe cannot name: answered from
# the kernel's BTF enum instead of by trying.
NEEDS_TARGET = {sc.BPF_PROG_TYPE_STRUCT_OPS: "a kernel struct_ops type (e.g. tcp_congestion_ops) to implement",
                 sc.BPF_PROG_TYPE_EXT: "a target program (attach_prog_fd) whose function it replaces"}


@lru_cache(maxsize=None)
def prog_type_status(ptype: int) -> FeatureStatus:
    name = sc.PROG_TYPE_NAMES.get(ptype, str(ptype))
    if ptype in NEEDS_TARGET:
        enum_name = f"BPF_PROG_TYPE_{name.upper()}"
        if enum_name in kernel_enum("bpf_prog_type"):
            return FeatureStatus(f"prog:{name}", True, f"needs a target program: {name} programs only load against "
                                 f"{NEEDS_TARGET[ptype]}, so no standalone probe can load; {enum_name} is in the "
                                 "kernel's BTF enum bpf_prog_type")
        return FeatureStatus(f"prog:{name}", False, f"{enum_name} is not in the kernel's BTF enum bpf_prog_type",
                             _errno.EINVAL)
    kw: dict[str, int] = {}
    if ptype in EXPECTED_ATTACH:
        kw["expected_attach_type"] = EXPECTED_ATTACH[ptype]
    if ptype == sc.BPF_PROG_TYPE_TRACING:
        kw["attach_btf_id"] = btf_id("btf_trace_sched_switch", "TYPEDEF")
    elif ptype == sc.BPF_PROG_TYPE_LSM:
        kw["attach_btf_id"] = btf_id("bpf_lsm_file_open", "FUNC")
    elif ptype == sc.BPF_PROG_TYPE_SYSCALL:
        kw["prog_flags"] = sc.BPF_F_SLEEPABLE
    fd, err, log = try_load(ptype, expected_attach_type=kw.get("expected_attach_type", 0),
                             attach_btf_id=kw.get("attach_btf_id", 0), prog_flags=kw.get("prog_flags", 0))
    close_fd(fd)
    if fd >= 0:
        return FeatureStatus(f"prog:{name}", True, "a minimal program loaded")
    # A verifier log means the kernel knows the type and got as far as checking the program.
    if log.strip():
        return FeatureStatus(f"prog:{name}", True, f"the kernel verified a probe program ({os.strerror(err)})")
    return FeatureStatus(f"prog:{name}", False,
                         f"loading a minimal {name} program failed: {os.strerror(err)} (errno {err})", err)


def prog_type(name: Union[str, int]) -> bool:
    """Whether programs of type ``name`` (``"kprobe"``, ``"tracing"``, a BPF_PROG_TYPE_* int) load.

    Example::

        features.prog_type("xdp"), features.prog_type("ext")   # ext needs a target: see status("prog:ext")
    """
    return prog_type_status(name_to_id(name, sc.PROG_TYPE_NAMES, "prog")).ok


# map type -> (key_size, value_size, max_entries, flags)
_MAP_SHAPES: dict[int, tuple[int, int, int, int]] = {
    sc.BPF_MAP_TYPE_STACK_TRACE: (4, 8, 1, 0),
    sc.BPF_MAP_TYPE_LPM_TRIE: (8, 4, 1, sc.BPF_F_NO_PREALLOC),
    sc.BPF_MAP_TYPE_CGROUP_STORAGE: (16, 4, 0, 0),
    sc.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: (16, 4, 0, 0),
    sc.BPF_MAP_TYPE_QUEUE: (0, 4, 1, 0),
    sc.BPF_MAP_TYPE_STACK: (0, 4, 1, 0),
    sc.BPF_MAP_TYPE_RINGBUF: (0, 0, 4096, 0),
    sc.BPF_MAP_TYPE_USER_RINGBUF: (0, 0, 4096, 0),
    sc.BPF_MAP_TYPE_BLOOM_FILTER: (0, 4, 1, 0),
    sc.BPF_MAP_TYPE_SOCKMAP: (4, 4, 1, 0),
    sc.BPF_MAP_TYPE_SOCKHASH: (4, 4, 1, 0),
    sc.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY: (4, 4, 1, 0),
}
# These need BTF for their key/value (local storage) or a kernel struct (struct_ops): the kernel
# rejects a BTF-less create before saying whether it knows the type, so they are answered from
# the kernel's own BTF enum instead of by trying.
_MAP_NEEDS_BTF = {sc.BPF_MAP_TYPE_SK_STORAGE, sc.BPF_MAP_TYPE_INODE_STORAGE, sc.BPF_MAP_TYPE_TASK_STORAGE,
                  sc.BPF_MAP_TYPE_CGRP_STORAGE, sc.BPF_MAP_TYPE_STRUCT_OPS}



@lru_cache(maxsize=None)
def map_type_status(mtype: int) -> FeatureStatus:
    name = sc.MAP_TYPE_NAMES.get(mtype, str(mtype))
    label = f"map:{name}"
    if mtype in _MAP_NEEDS_BTF:
        known = f"BPF_MAP_TYPE_{name.upper()}" in kernel_enum("bpf_map_type")
        return FeatureStatus(label, known, "listed in the kernel's BTF enum bpf_map_type" if known
                             else "not in the kernel's BTF enum bpf_map_type", 0 if known else _errno.EINVAL)
    key, value, entries, flags = _MAP_SHAPES.get(mtype, (4, 4, 1, 0))
    inner = -1
    try:
        if mtype in (sc.BPF_MAP_TYPE_ARRAY_OF_MAPS, sc.BPF_MAP_TYPE_HASH_OF_MAPS):
            inner = sc.map_create(sc.BPF_MAP_TYPE_ARRAY, 4, 4, 1, name="bpfkit_probe")
        fd = sc.map_create(mtype, key, value, entries, flags=flags, inner_map_fd=max(inner, 0),
                           name="bpfkit_probe")
        os.close(fd)
        return FeatureStatus(label, True, "a minimal map was created")
    except BpfError as e:
        return FeatureStatus(label, False, f"creating a minimal {name} map failed: {os.strerror(e.errno)} "
                                           f"(errno {e.errno})", e.errno)
    finally:
        close_fd(inner)


def map_type(name: Union[str, int]) -> bool:
    """Whether maps of type ``name`` (``"ringbuf"``, ``"lru_hash"``, an int) can be created.

    Example::

        features.map_type("ringbuf")
    """
    return map_type_status(name_to_id(name, sc.MAP_TYPE_NAMES, "map")).ok


def helper_id(name: Union[str, int]) -> int:
    """BPF_FUNC_* number of helper ``name`` (``"get_attach_cookie"`` or ``"bpf_get_attach_cookie"``),
    from the running kernel's BTF.

    Example::

        features.helper_id("get_attach_cookie")   # 174
    """
    if isinstance(name, int):
        return name
    short = name.removeprefix("bpf_").removeprefix("BPF_FUNC_")
    ids = kernel_enum("bpf_func_id")
    if f"BPF_FUNC_{short}" not in ids:
        raise BpfUsageError(f"this kernel has no helper {name!r} (not in its BTF enum bpf_func_id)", _errno.EINVAL)
    return ids[f"BPF_FUNC_{short}"]


@lru_cache(maxsize=None)
def helper_status(ptype: int, hid: int) -> FeatureStatus:
    label = f"helper:{sc.PROG_TYPE_NAMES.get(ptype, ptype)}:{hid}"
    insns = insn(0x85, imm=hid) + RET0  # BPF_JMP | BPF_CALL
    kw = {"expected_attach_type": EXPECTED_ATTACH[ptype]} if ptype in EXPECTED_ATTACH else {}
    if ptype == sc.BPF_PROG_TYPE_TRACING:
        kw["attach_btf_id"] = btf_id("btf_trace_sched_switch", "TYPEDEF")
    fd, err, log = try_load(ptype, insns, expected_attach_type=kw.get("expected_attach_type", 0),
                             attach_btf_id=kw.get("attach_btf_id", 0))
    close_fd(fd)
    if fd >= 0:
        return FeatureStatus(label, True, "a program calling it loaded")
    refused = ("invalid func", "unknown func", "cannot call", "cannot use helper", "not supported")
    if any(r in log for r in refused):
        line = next((ln for ln in log.splitlines() if any(r in ln for r in refused)), log.strip())
        return FeatureStatus(label, False, f"the verifier refused the call: {line.strip()}", err)
    if not log.strip():
        return FeatureStatus(label, False, f"probe program did not load: {os.strerror(err)} (errno {err})", err)
    # Rejected for its (missing) arguments, which means the call itself is allowed.
    return FeatureStatus(label, True, "the verifier accepted the call (it only objected to the arguments)")


def helper(name: Union[str, int], prog_type: Union[str, int] = "kprobe") -> bool:
    """Whether programs of ``prog_type`` may call helper ``name``.

    Example::

        features.helper("ringbuf_reserve", "tracepoint")
    """
    try:
        hid = helper_id(name)
    except BpfUsageError:
        return False
    return helper_status(name_to_id(prog_type, sc.PROG_TYPE_NAMES, "prog"), hid).ok

