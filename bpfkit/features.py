"""What this kernel can do, found out by trying (like ``bpftool feature probe``), cached per process.

Program types, map types and helpers are probed with tiny programs and maps loaded through raw
``bpf(2)``; kernel features that bpfkit's probes depend on (kprobes, fentry, a hardware PMU...)
come with a reason that says why not, for error messages and test skips.

Example::

    from bpfkit import features

    features.prog_type("kprobe")                 # True
    features.attach_type("xdp")                  # True: an xdp program with expected_attach_type BPF_XDP loads
    features.helper("get_attach_cookie")         # True on 5.15+
    ok, reason = features.check("kprobes")       # (False, "... CONFIG_KPROBES ...")
    features.require("fentry")                   # raises FeatureNotSupported with the reason
"""
from __future__ import annotations

import ctypes
import errno as _errno
import os
import struct
import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable, Optional, Union

from . import _sys as sc
from .errors import ENOTSUPP, BpfError, BpfUsageError, FeatureNotSupported

__all__ = [
    "FeatureStatus", "KERNEL_FEATURES", "attach_type", "check", "helper", "helper_id", "map_type", "probe_all",
    "prog_type", "require", "status",
]


@dataclass(frozen=True)
class FeatureStatus:
    """Outcome of one probe: ``ok``, a human reason (why not, or how it was established) and,
    when it failed, the ``errno`` the probe saw (ENOENT for a missing PMU file, EPERM for a
    refused load...), which :func:`require` passes on in FeatureNotSupported.

    Example::

        st = features.status("kprobes")
        if not st:
            print(st.reason, st.errno)
    """

    name: str
    ok: bool
    reason: str
    errno: int = 0

    def __bool__(self) -> bool:
        return self.ok


# -- tiny programs -------------------------------------------------------------

def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


_MOV_R0_0 = _insn(0xB7)  # BPF_ALU64 | BPF_MOV | BPF_K
_EXIT = _insn(0x95)
_RET0 = _MOV_R0_0 + _EXIT


# expected_attach_type some program types insist on (enum bpf_attach_type values)
_EXPECTED_ATTACH = {
    sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR: 10,  # BPF_CGROUP_INET4_CONNECT
    sc.BPF_PROG_TYPE_CGROUP_SOCKOPT: 21,  # BPF_CGROUP_GETSOCKOPT
    sc.BPF_PROG_TYPE_LIRC_MODE2: 16,  # BPF_LIRC_MODE2
    sc.BPF_PROG_TYPE_SK_LOOKUP: 36,  # BPF_SK_LOOKUP
    sc.BPF_PROG_TYPE_NETFILTER: 45,  # BPF_NETFILTER
    sc.BPF_PROG_TYPE_LSM: sc.BPF_LSM_MAC,
    sc.BPF_PROG_TYPE_TRACING: sc.BPF_TRACE_RAW_TP,
}

_lock = threading.Lock()


def _name_to_id(name: Union[str, int], table: dict[int, str], kind: str) -> int:
    if isinstance(name, int):
        return name
    key = name.lower().removeprefix(f"bpf_{kind}_type_")
    for value, n in table.items():
        if n == key:
            return value
    raise BpfUsageError(f"unknown {kind} type {name!r}; known: {', '.join(sorted(table.values()))}")


def _btf_id(name: str, kind_name: str) -> int:
    """Type id of ``name`` in vmlinux BTF, 0 if absent."""
    from .btf import Kind, vmlinux_btf

    try:
        return int(vmlinux_btf().find(name, Kind[kind_name]).id)
    except BpfError:
        return 0


def _try_load(prog_type: int, insns: bytes = _RET0, *, expected_attach_type: int = 0, attach_btf_id: int = 0,
              prog_flags: int = 0) -> tuple[int, int, str]:
    """(fd or -1, errno, verifier log). The caller closes fd."""
    try:
        fd, log = sc.prog_load(prog_type, insns, log_level=1, log_size=1 << 16, name="bpfkit_probe",
                               expected_attach_type=expected_attach_type, attach_btf_id=attach_btf_id,
                               prog_flags=prog_flags)
        return fd, 0, log
    except BpfError as e:
        msg = str(e)
        log = msg.split("\n", 1)[1] if "\n" in msg else ""
        return -1, e.errno, log


def _close(fd: int) -> None:
    if fd >= 0:
        os.close(fd)


# -- program types, map types, helpers ---------------------------------------------------

# Program types that only load against a target (struct_ops: a kernel struct's member; ext: a
# function of another loaded BPF program), which a standalone probe cannot name: answered from
# the kernel's BTF enum instead of by trying.
_NEEDS_TARGET = {sc.BPF_PROG_TYPE_STRUCT_OPS: "a kernel struct_ops type (e.g. tcp_congestion_ops) to implement",
                 sc.BPF_PROG_TYPE_EXT: "a target program (attach_prog_fd) whose function it replaces"}


@lru_cache(maxsize=None)
def _prog_type_status(ptype: int) -> FeatureStatus:
    name = sc.PROG_TYPE_NAMES.get(ptype, str(ptype))
    if ptype in _NEEDS_TARGET:
        enum_name = f"BPF_PROG_TYPE_{name.upper()}"
        if enum_name in _kernel_enum("bpf_prog_type"):
            return FeatureStatus(f"prog:{name}", True, f"needs a target program: {name} programs only load against "
                                 f"{_NEEDS_TARGET[ptype]}, so no standalone probe can load; {enum_name} is in the "
                                 "kernel's BTF enum bpf_prog_type")
        return FeatureStatus(f"prog:{name}", False, f"{enum_name} is not in the kernel's BTF enum bpf_prog_type",
                             _errno.EINVAL)
    kw: dict[str, int] = {}
    if ptype in _EXPECTED_ATTACH:
        kw["expected_attach_type"] = _EXPECTED_ATTACH[ptype]
    if ptype == sc.BPF_PROG_TYPE_TRACING:
        kw["attach_btf_id"] = _btf_id("btf_trace_sched_switch", "TYPEDEF")
    elif ptype == sc.BPF_PROG_TYPE_LSM:
        kw["attach_btf_id"] = _btf_id("bpf_lsm_file_open", "FUNC")
    elif ptype == sc.BPF_PROG_TYPE_SYSCALL:
        kw["prog_flags"] = sc.BPF_F_SLEEPABLE
    fd, err, log = _try_load(ptype, expected_attach_type=kw.get("expected_attach_type", 0),
                             attach_btf_id=kw.get("attach_btf_id", 0), prog_flags=kw.get("prog_flags", 0))
    _close(fd)
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
    return _prog_type_status(_name_to_id(name, sc.PROG_TYPE_NAMES, "prog")).ok


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


def _kernel_enum(enum_name: str) -> dict[str, int]:
    from .btf import Kind, vmlinux_btf

    try:
        return dict(vmlinux_btf().find(enum_name, Kind.ENUM).enum_values)
    except BpfError:
        return {}


@lru_cache(maxsize=None)
def _map_type_status(mtype: int) -> FeatureStatus:
    name = sc.MAP_TYPE_NAMES.get(mtype, str(mtype))
    label = f"map:{name}"
    if mtype in _MAP_NEEDS_BTF:
        known = f"BPF_MAP_TYPE_{name.upper()}" in _kernel_enum("bpf_map_type")
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
        _close(inner)


def map_type(name: Union[str, int]) -> bool:
    """Whether maps of type ``name`` (``"ringbuf"``, ``"lru_hash"``, an int) can be created.

    Example::

        features.map_type("ringbuf")
    """
    return _map_type_status(_name_to_id(name, sc.MAP_TYPE_NAMES, "map")).ok


def helper_id(name: Union[str, int]) -> int:
    """BPF_FUNC_* number of helper ``name`` (``"get_attach_cookie"`` or ``"bpf_get_attach_cookie"``),
    from the running kernel's BTF.

    Example::

        features.helper_id("get_attach_cookie")   # 174
    """
    if isinstance(name, int):
        return name
    short = name.removeprefix("bpf_").removeprefix("BPF_FUNC_")
    ids = _kernel_enum("bpf_func_id")
    if f"BPF_FUNC_{short}" not in ids:
        raise BpfUsageError(f"this kernel has no helper {name!r} (not in its BTF enum bpf_func_id)", _errno.EINVAL)
    return ids[f"BPF_FUNC_{short}"]


@lru_cache(maxsize=None)
def _helper_status(ptype: int, hid: int) -> FeatureStatus:
    label = f"helper:{sc.PROG_TYPE_NAMES.get(ptype, ptype)}:{hid}"
    insns = _insn(0x85, imm=hid) + _RET0  # BPF_JMP | BPF_CALL
    kw = {"expected_attach_type": _EXPECTED_ATTACH[ptype]} if ptype in _EXPECTED_ATTACH else {}
    if ptype == sc.BPF_PROG_TYPE_TRACING:
        kw["attach_btf_id"] = _btf_id("btf_trace_sched_switch", "TYPEDEF")
    fd, err, log = _try_load(ptype, insns, expected_attach_type=kw.get("expected_attach_type", 0),
                             attach_btf_id=kw.get("attach_btf_id", 0))
    _close(fd)
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
    return _helper_status(_name_to_id(prog_type, sc.PROG_TYPE_NAMES, "prog"), hid).ok


# -- kernel features the probes need ---------------------------------------------------

def _pmu_exists(pmu: str) -> bool:
    return os.path.exists(f"/sys/bus/event_source/devices/{pmu}/type")


# A kernel-feature probe answers (ok, reason) or (ok, reason, errno it saw).
Probe = Callable[[], Union[tuple[bool, str], tuple[bool, str, int]]]


def _kprobes() -> tuple[bool, str, int]:
    if _pmu_exists("kprobe"):
        return True, "the kprobe PMU exists (/sys/bus/event_source/devices/kprobe)", 0
    return False, ("this kernel has no kprobes: /sys/bus/event_source/devices/kprobe is missing, it was built "
                   "without CONFIG_KPROBES (and CONFIG_KPROBE_EVENTS)"), _errno.ENOENT


def _uprobes() -> tuple[bool, str, int]:
    if _pmu_exists("uprobe"):
        return True, "the uprobe PMU exists (/sys/bus/event_source/devices/uprobe)", 0
    return False, ("this kernel has no uprobes: /sys/bus/event_source/devices/uprobe is missing, it was built "
                   "without CONFIG_UPROBES (and CONFIG_UPROBE_EVENTS)"), _errno.ENOENT


def _tracefs() -> tuple[bool, str, int]:
    from .tracefs import tracefs_root

    try:
        return True, f"tracefs at {tracefs_root()}", 0
    except FeatureNotSupported as e:
        return False, str(e), e.errno or _errno.ENOENT


def _btf() -> tuple[bool, str, int]:
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        return True, "/sys/kernel/btf/vmlinux exists", 0
    return (False, "the kernel has no BTF (/sys/kernel/btf/vmlinux missing): it needs CONFIG_DEBUG_INFO_BTF=y",
            _errno.ENOENT)


def _tracing_prog(attach_type: int, target: str, kind: str = "FUNC",
                  prog_type: int = sc.BPF_PROG_TYPE_TRACING) -> tuple[int, str, int]:
    """Load a tracing program for ``target``; (fd, "", 0) or (-1, why not, errno)."""
    btf_id = _btf_id(target, kind)
    if not btf_id:
        return -1, f"{target} is not in the kernel's BTF", _errno.ENOENT
    fd, err, log = _try_load(prog_type, expected_attach_type=attach_type, attach_btf_id=btf_id)
    if fd >= 0:
        return fd, "", 0
    detail = log.strip().splitlines()[0] if log.strip() else ""
    return -1, f"{os.strerror(err)} (errno {err}){': ' + detail if detail else ''}", err


def _fentry(attach_type: int = sc.BPF_TRACE_FENTRY, what: str = "fentry") -> tuple[bool, str, int]:
    ok, why, err = _btf()
    if not ok:
        return False, why, err
    fd, why, err = _tracing_prog(attach_type, "bpf_fentry_test1")
    if fd < 0:
        return False, (f"the kernel refuses {what} programs: loading one for bpf_fentry_test1 as root failed with "
                       f"{why}. BPF trampolines need CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS on x86-64 and a "
                       "kernel that permits them (some VMs and locked-down kernels do not)"), err
    try:
        link = sc.raw_tracepoint_open(fd, None, what=f"{what} probe")
        os.close(link)
        return True, f"a {what} program on bpf_fentry_test1 loaded and attached", 0
    except BpfError as e:
        return False, (f"the kernel loads {what} programs but refuses to attach them: {os.strerror(e.errno)} "
                       f"(errno {e.errno}); BPF trampolines are unavailable"), e.errno
    finally:
        os.close(fd)


def _tp_btf() -> tuple[bool, str, int]:
    ok, why, err = _btf()
    if not ok:
        return False, why, err
    fd, why, err = _tracing_prog(sc.BPF_TRACE_RAW_TP, "btf_trace_sched_switch", "TYPEDEF")
    if fd < 0:
        return False, f"loading a tp_btf program for sched_switch failed: {why}", err
    os.close(fd)
    return True, "a tp_btf program for sched_switch loaded", 0


def _link_create_errno(attach_type: int, words: tuple[int, ...], prog_attach: int) -> tuple[int, str]:
    fd, err, log = _try_load(sc.BPF_PROG_TYPE_KPROBE, expected_attach_type=prog_attach)
    if fd < 0:
        return err, f"a kprobe-type program with that attach type does not load: {os.strerror(err)}"
    try:
        link = sc.link_create(fd, 0, attach_type, extra=words)
        os.close(link)
        return 0, ""
    except BpfError as e:
        return e.errno, os.strerror(e.errno)
    finally:
        os.close(fd)


def _kprobe_multi() -> tuple[bool, str, int]:
    name = ctypes.create_string_buffer(b"bpf_fentry_test1")
    syms = (ctypes.c_uint64 * 1)(ctypes.addressof(name))
    # kprobe_multi: {u32 flags; u32 cnt; u64 syms; u64 addrs; u64 cookies}
    err, why = _link_create_errno(sc.BPF_TRACE_KPROBE_MULTI, (1 << 32, ctypes.addressof(syms)),
                                  sc.BPF_TRACE_KPROBE_MULTI)
    if err == 0:
        return True, "a kprobe_multi link on bpf_fentry_test1 was created", 0
    if err in (_errno.EOPNOTSUPP, ENOTSUPP):
        return False, "kprobe_multi links need CONFIG_FPROBE, which this kernel lacks", err
    return False, f"kprobe_multi links are not supported (BPF_LINK_CREATE failed: {why}; needs Linux 5.18+)", err


def _uprobe_multi() -> tuple[bool, str, int]:
    path = ctypes.create_string_buffer(b"/")
    offsets = (ctypes.c_uint64 * 1)(0)
    # uprobe_multi: {u64 path; u64 offsets; u64 ref_ctr_offsets; u64 cookies; u32 cnt; u32 flags; u32 pid}
    # A directory as the path: a kernel with uprobe_multi resolves it and says EBADF (not a regular
    # file); one without it rejects the attach type with EINVAL. Nothing gets attached either way.
    words = (ctypes.addressof(path), ctypes.addressof(offsets), 0, 0, 1)
    err, why = _link_create_errno(sc.BPF_TRACE_UPROBE_MULTI, words, sc.BPF_TRACE_UPROBE_MULTI)
    if err in (0, _errno.EBADF):
        return True, "the kernel accepts uprobe_multi links", 0
    if err in (_errno.EOPNOTSUPP, ENOTSUPP):
        return False, "uprobe_multi links need CONFIG_UPROBES, which this kernel lacks", err
    return False, f"uprobe_multi links are not supported (BPF_LINK_CREATE failed: {why}; needs Linux 6.6+)", err


def _hw_pmu() -> tuple[bool, str, int]:
    attr = sc.PerfEventAttr(type=sc.PERF_TYPE_HARDWARE, config=0, flags=sc.PERF_ATTR_DISABLED
                            | sc.PERF_ATTR_EXCLUDE_KERNEL | sc.PERF_ATTR_EXCLUDE_HV)
    try:
        fd = sc.perf_event_open(attr, pid=0, cpu=-1, what="cycles")
        os.close(fd)
        return True, "a hardware cycles counter opened", 0
    except BpfError as e:
        return False, (f"no hardware PMU: perf_event_open of the cycles counter failed with {os.strerror(e.errno)} "
                       f"(errno {e.errno}); /sys/bus/event_source/devices/cpu is "
                       f"{'present' if _pmu_exists('cpu') else 'missing'} (VMs often expose no PMU)"), e.errno


def _ringbuf() -> tuple[bool, str, int]:
    st = _map_type_status(sc.BPF_MAP_TYPE_RINGBUF)
    return st.ok, st.reason if st.ok else st.reason + " (ring buffers need Linux 5.8+)", st.errno


def _bpf_cookie() -> tuple[bool, str, int]:
    st = status("helper:kprobe:get_attach_cookie")
    if st.ok:
        return True, "kprobe/uprobe programs may call bpf_get_attach_cookie", 0
    return (False, "bpf_get_attach_cookie is not available to kprobe/uprobe programs (needs Linux 5.15+)",
            st.errno or _errno.EINVAL)


def _perf_link() -> tuple[bool, str, int]:
    # A tracepoint program linked to a software event: EINVAL means "wrong kind of event", which a
    # kernel without BPF_PERF_EVENT links would not get far enough to say.
    fd, err, _ = _try_load(sc.BPF_PROG_TYPE_TRACEPOINT)
    if fd < 0:
        return False, f"tracepoint programs do not load: {os.strerror(err)}", err
    attr = sc.PerfEventAttr(type=sc.PERF_TYPE_TRACEPOINT, config=_sched_switch_id(), sample_period=1)
    try:
        pfd = sc.perf_event_open(attr, pid=-1, cpu=0)
    except BpfError as e:
        os.close(fd)
        return False, f"cannot open a tracepoint perf event: {e}", e.errno
    try:
        link = sc.link_create(fd, pfd, sc.BPF_PERF_EVENT)
        os.close(link)
        return True, "BPF_LINK_CREATE accepted a perf event", 0
    except BpfError as e:
        return False, f"BPF_LINK_CREATE with perf events failed: {os.strerror(e.errno)} (needs Linux 5.15+)", e.errno
    finally:
        os.close(pfd)
        os.close(fd)


def _sched_switch_id() -> int:
    from .tracefs import tracepoint_id

    return tracepoint_id("sched", "sched_switch")


KERNEL_FEATURES: dict[str, Probe] = {
    "kprobes": _kprobes,
    "kprobe_multi": _kprobe_multi,
    "uprobes": _uprobes,
    "uprobe_multi": _uprobe_multi,
    "fentry": _fentry,
    "fexit": lambda: _fentry(sc.BPF_TRACE_FEXIT, "fexit"),
    "tp_btf": _tp_btf,
    "hw_pmu": _hw_pmu,
    "ringbuf": _ringbuf,
    "bpf_cookie": _bpf_cookie,
    "perf_link": _perf_link,
    "btf": _btf,
    "tracefs": _tracefs,
}
_ALIASES = {"kprobe": "kprobes", "kretprobe": "kprobes", "uprobe": "uprobes", "fmod_ret": "fentry",
            "hardware": "hw_pmu", "pmu": "hw_pmu", "cookie": "bpf_cookie"}
_kernel_cache: dict[str, FeatureStatus] = {}


def status(name: str) -> FeatureStatus:
    """Probe ``name`` (cached): a kernel feature (see :data:`KERNEL_FEATURES`), ``prog:TYPE``,
    ``map:TYPE``, ``attach:TYPE``, ``helper:NAME`` or ``helper:PROGTYPE:NAME``.

    Example::

        features.status("attach:tcx_ingress").reason
        features.status("helper:xdp:redirect_map").ok
    """
    kind, _, rest = name.partition(":")
    try:
        if kind == "prog" and rest:
            return _prog_type_status(_name_to_id(rest, sc.PROG_TYPE_NAMES, "prog"))
        if kind == "map" and rest:
            return _map_type_status(_name_to_id(rest, sc.MAP_TYPE_NAMES, "map"))
        if kind == "helper" and rest:
            ptype, _, hname = rest.rpartition(":")
            try:
                hid = helper_id(hname)
            except BpfUsageError as e:
                return FeatureStatus(name, False, str(e), e.errno)
            st = _helper_status(_name_to_id(ptype or "kprobe", sc.PROG_TYPE_NAMES, "prog"), hid)
            return FeatureStatus(name, st.ok, st.reason, st.errno)
        if kind == "attach" and rest:
            return _attach_status(rest)
    except BpfUsageError as e:
        return FeatureStatus(name, False, str(e), e.errno or _errno.EINVAL)
    key = _ALIASES.get(name, name)
    if key not in KERNEL_FEATURES:
        raise BpfUsageError(f"unknown feature {name!r}; known: {', '.join(sorted(KERNEL_FEATURES))}, "
                            "prog:TYPE, map:TYPE, attach:TYPE, helper:[PROGTYPE:]NAME")
    with _lock:
        cached = _kernel_cache.get(key)
    if cached is not None:
        return cached
    # Probed outside the lock: a probe may itself ask status() (bpf_cookie asks for a helper).
    try:
        res = KERNEL_FEATURES[key]()
        ok, reason = res[0], res[1]
        err = res[2] if len(res) > 2 else 0
    except BpfError as e:
        ok, reason, err = False, f"probing {key} failed: {e}", e.errno
    st = FeatureStatus(key, ok, reason, 0 if ok else err)
    with _lock:
        return _kernel_cache.setdefault(key, st)


def check(name: str) -> tuple[bool, str]:
    """``(ok, reason)`` for a feature name, as the test plugin's ``requires`` marker uses it.

    Example::

        ok, reason = features.check("kprobes")
        if not ok:
            pytest.skip(reason)
    """
    st = status(name)
    return st.ok, st.reason


def require(name: str, what: Optional[str] = None) -> None:
    """Raise FeatureNotSupported (with the probe's reason) unless ``name`` is available.

    ``what`` names the operation for the message, e.g. ``"kprobe on do_sys_open"``. The
    exception's ``errno`` is the one the probe saw (ENOENT for a missing PMU, EPERM for a refused
    load...).

    Example::

        features.require("kprobes", "kprobe on vfs_read")   # FeatureNotSupported(..., errno=ENOENT)
    """
    st = status(name)
    if not st.ok:
        prefix = f"{what}: " if what else ""
        raise FeatureNotSupported(prefix + st.reason, st.errno, feature=st.name)


# -- attach types -----------------------------------------------------------------------
#
# Each BPF_* attach type belongs to one program type (the kernel's attach_type_to_prog_type);
# probing loads a minimal program of that type with the attach type as expected_attach_type,
# which is how the kernel is told what a program will attach to. Attach types that bpfkit's
# probes use through a dedicated mechanism are answered by that kernel feature instead.
_ATTACH_GROUPS: dict[int, tuple[str, ...]] = {
    sc.BPF_PROG_TYPE_CGROUP_SKB: ("cgroup_inet_ingress", "cgroup_inet_egress"),
    sc.BPF_PROG_TYPE_CGROUP_SOCK: ("cgroup_inet_sock_create", "cgroup_inet4_post_bind", "cgroup_inet6_post_bind",
                                   "cgroup_inet_sock_release"),
    sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR: tuple(
        f"cgroup_{fam}_{op}" for fam in ("inet4", "inet6", "unix")
        for op in ("bind", "connect", "getpeername", "getsockname", "sendmsg", "recvmsg"))
    + ("cgroup_udp4_sendmsg", "cgroup_udp6_sendmsg", "cgroup_udp4_recvmsg", "cgroup_udp6_recvmsg"),
    sc.BPF_PROG_TYPE_SOCK_OPS: ("cgroup_sock_ops",),
    sc.BPF_PROG_TYPE_SK_SKB: ("sk_skb_stream_parser", "sk_skb_stream_verdict", "sk_skb_verdict"),
    sc.BPF_PROG_TYPE_CGROUP_DEVICE: ("cgroup_device",),
    sc.BPF_PROG_TYPE_SK_MSG: ("sk_msg_verdict",),
    sc.BPF_PROG_TYPE_LIRC_MODE2: ("lirc_mode2",),
    sc.BPF_PROG_TYPE_FLOW_DISSECTOR: ("flow_dissector",),
    sc.BPF_PROG_TYPE_CGROUP_SYSCTL: ("cgroup_sysctl",),
    sc.BPF_PROG_TYPE_CGROUP_SOCKOPT: ("cgroup_getsockopt", "cgroup_setsockopt"),
    sc.BPF_PROG_TYPE_TRACING: ("modify_return", "trace_iter"),
    sc.BPF_PROG_TYPE_LSM: ("lsm_mac", "lsm_cgroup"),
    sc.BPF_PROG_TYPE_XDP: ("xdp", "xdp_devmap", "xdp_cpumap"),
    sc.BPF_PROG_TYPE_SK_LOOKUP: ("sk_lookup",),
    sc.BPF_PROG_TYPE_SK_REUSEPORT: ("sk_reuseport_select", "sk_reuseport_select_or_migrate"),
    sc.BPF_PROG_TYPE_NETFILTER: ("netfilter",),
    sc.BPF_PROG_TYPE_SCHED_CLS: ("tcx_ingress", "tcx_egress", "netkit_primary", "netkit_peer"),
    sc.BPF_PROG_TYPE_STRUCT_OPS: ("struct_ops",),
}
_ATTACH_PROG_TYPE = {att: ptype for ptype, names in _ATTACH_GROUPS.items() for att in names}
# attach types whose program must name a BTF target to load: (target, BTF kind)
_ATTACH_BTF_TARGET = {"modify_return": ("bpf_modify_return_test", "FUNC"), "trace_iter": ("bpf_iter_task", "FUNC"),
                      "lsm_mac": ("bpf_lsm_file_open", "FUNC"), "lsm_cgroup": ("bpf_lsm_socket_bind", "FUNC")}
# attach types answered by the kernel feature bpfkit's attach path depends on
_ATTACH_FEATURES = {"trace_raw_tp": "tp_btf", "trace_fentry": "fentry", "trace_fexit": "fexit",
                    "perf_event": "perf_link", "trace_kprobe_multi": "kprobe_multi",
                    "trace_uprobe_multi": "uprobe_multi", "trace_kprobe_session": "kprobe_multi",
                    "trace_uprobe_session": "uprobe_multi"}
# friendly names for the attach types above, as SEC() names spell them
_ATTACH_ALIASES = {"kprobe_multi": "trace_kprobe_multi", "uprobe_multi": "trace_uprobe_multi",
                   "kprobe_session": "trace_kprobe_session", "uprobe_session": "trace_uprobe_session",
                   "fentry": "trace_fentry", "fexit": "trace_fexit", "fmod_ret": "modify_return",
                   "tp_btf": "trace_raw_tp", "iter": "trace_iter", "lsm": "lsm_mac", "perf_link": "perf_event",
                   "tcx": "tcx_ingress", "netkit": "netkit_primary"}


def _attach_enum_name(name: Union[str, int]) -> str:
    """``"xdp"`` / ``"BPF_XDP"`` / 37 -> ``"BPF_XDP"``; BpfUsageError for names no kernel has."""
    enum = _kernel_enum("bpf_attach_type")
    if isinstance(name, int):
        for key, value in enum.items():
            if value == name and not key.startswith("__"):
                return key
        return f"BPF_ATTACH_TYPE_{name}"
    short = name.lower().removeprefix("bpf_")
    short = _ATTACH_ALIASES.get(short, short)
    key = f"BPF_{short.upper()}"
    if key not in enum and short not in _ATTACH_PROG_TYPE and short not in _ATTACH_FEATURES:
        known = sorted(k.removeprefix("BPF_").lower() for k in enum if not k.startswith("__"))
        raise BpfUsageError(f"unknown attach type {name!r}; this kernel knows: {', '.join(known)}; and as SEC() "
                            f"names: kprobe, uprobe, {', '.join(_ATTACH_ALIASES)}", _errno.EINVAL)
    return key


@lru_cache(maxsize=None)
def _attach_type_status(key: str) -> FeatureStatus:
    short = key.removeprefix("BPF_").lower()
    label = f"attach:{short}"
    value = _kernel_enum("bpf_attach_type").get(key)
    if value is None:
        return FeatureStatus(label, False, f"{key} is not in the kernel's BTF enum bpf_attach_type (the kernel "
                                           "predates it)", _errno.EINVAL)
    if short in _ATTACH_FEATURES:
        st = status(_ATTACH_FEATURES[short])
        return FeatureStatus(label, st.ok, st.reason, st.errno)
    ptype = _ATTACH_PROG_TYPE.get(short)
    if ptype is None:
        return FeatureStatus(label, False, f"bpfkit does not know which program type attaches as {key}; probe "
                                           "the program type with features.prog_type() instead", _errno.EINVAL)
    pname = sc.PROG_TYPE_NAMES.get(ptype, str(ptype))
    if ptype in _NEEDS_TARGET:
        st = _prog_type_status(ptype)
        return FeatureStatus(label, st.ok, st.reason, st.errno)
    if short in _ATTACH_BTF_TARGET:
        target, kind = _ATTACH_BTF_TARGET[short]
        fd, why, err = _tracing_prog(value, target, kind, prog_type=ptype)
        _close(fd)
        if fd >= 0:
            return FeatureStatus(label, True, f"a {pname} program for {target} with expected_attach_type {key} loaded")
        return FeatureStatus(label, False, f"loading a {pname} program for {target} with expected_attach_type {key} "
                                           f"failed: {why}", err)
    fd, err, log = _try_load(ptype, expected_attach_type=value)
    _close(fd)
    if fd >= 0:
        return FeatureStatus(label, True, f"a minimal {pname} program with expected_attach_type {key} loaded")
    if log.strip():
        return FeatureStatus(label, True, f"the kernel verified a {pname} program with expected_attach_type {key} "
                                          f"({os.strerror(err)})")
    return FeatureStatus(label, False, f"loading a minimal {pname} program with expected_attach_type {key} failed: "
                                       f"{os.strerror(err)} (errno {err})", err)


def _attach_status(name: Union[str, int]) -> FeatureStatus:
    if isinstance(name, str) and _ALIASES.get(name, name) in ("kprobes", "uprobes"):
        st = status(name)  # perf-event based: the PMU is the attach mechanism
        return FeatureStatus(f"attach:{name}", st.ok, st.reason, st.errno)
    return _attach_type_status(_attach_enum_name(name))


def attach_type(name: Union[str, int]) -> bool:
    """Whether programs can attach as ``name``: any ``enum bpf_attach_type`` member by its short
    name (``"xdp"``, ``"cgroup_inet_ingress"``, ``"tcx_ingress"``, ``"BPF_SK_LOOKUP"``, an int),
    or how SEC() names spell it (``"fentry"``, ``"fmod_ret"``, ``"tp_btf"``, ``"kprobe_multi"``,
    ``"uprobe_multi"``, ``"perf_event"``), plus ``"kprobe"``/``"uprobe"`` (perf-event based).
    Probed like ``prog_type()``, with that expected_attach_type; ``status("attach:NAME")``
    says why not.

    Example::

        features.attach_type("xdp"), features.attach_type("tcx_ingress")
    """
    return _attach_status(name).ok


def probe_all() -> dict[str, dict[str, bool]]:
    """Everything at once, like ``bpftool feature probe`` (takes ~1 s, then cached).

    Example::

        report = features.probe_all()
        [t for t, ok in report["attach_types"].items() if not ok]
    """
    out: dict[str, dict[str, bool]] = {
        "prog_types": {n: _prog_type_status(t).ok for t, n in sc.PROG_TYPE_NAMES.items() if t},
        "map_types": {n: _map_type_status(t).ok for t, n in sc.MAP_TYPE_NAMES.items() if t},
        "kernel": {k: status(k).ok for k in KERNEL_FEATURES},
        "attach_types": {k.removeprefix("BPF_").lower(): _attach_type_status(k).ok
                         for k in _kernel_enum("bpf_attach_type") if not k.startswith("__")},
    }
    helpers = [h.removeprefix("BPF_FUNC_") for h, v in _kernel_enum("bpf_func_id").items() if 0 < v
               and not h.startswith("__")]
    out["helpers.kprobe"] = {h: helper(h, "kprobe") for h in helpers}
    return out
