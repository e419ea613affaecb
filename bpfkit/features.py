"""What this kernel can do, found out by trying (like ``bpftool feature probe``), cached per process.

Program types, map types and helpers are probed with tiny programs and maps loaded through raw
``bpf(2)``; kernel features that bpfkit's probes depend on (kprobes, fentry, a hardware PMU...)
come with a reason that says why not, for error messages and test skips.

Example::

    from bpfkit import features

    features.prog_type("kprobe")                 # True
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

from . import syscall as sc
from .errors import BpfError, FeatureNotSupported

__all__ = [
    "FeatureStatus", "KERNEL_FEATURES", "attach_type", "check", "helper", "map_type", "probe_all",
    "prog_type", "require", "status",
]


@dataclass(frozen=True)
class FeatureStatus:
    """Outcome of one probe: ``ok`` and a human reason (why not, or how it was established)."""

    name: str
    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok


# -- tiny programs -------------------------------------------------------------

def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


_MOV_R0_0 = _insn(0xB7)  # BPF_ALU64 | BPF_MOV | BPF_K
_EXIT = _insn(0x95)
_RET0 = _MOV_R0_0 + _EXIT

BPF_F_SLEEPABLE = 1 << 4
BPF_F_UPROBE_MULTI_RETURN = 1
BPF_F_KPROBE_MULTI_RETURN = 1

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
    raise ValueError(f"unknown {kind} type {name!r}; known: {', '.join(sorted(table.values()))}")


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

@lru_cache(maxsize=None)
def _prog_type_status(ptype: int) -> FeatureStatus:
    name = sc.PROG_TYPE_NAMES.get(ptype, str(ptype))
    kw: dict[str, int] = {}
    if ptype in _EXPECTED_ATTACH:
        kw["expected_attach_type"] = _EXPECTED_ATTACH[ptype]
    if ptype == sc.BPF_PROG_TYPE_TRACING:
        kw["attach_btf_id"] = _btf_id("btf_trace_sched_switch", "TYPEDEF")
    elif ptype == sc.BPF_PROG_TYPE_LSM:
        kw["attach_btf_id"] = _btf_id("bpf_lsm_file_open", "FUNC")
    elif ptype == sc.BPF_PROG_TYPE_SYSCALL:
        kw["prog_flags"] = BPF_F_SLEEPABLE
    fd, err, log = _try_load(ptype, expected_attach_type=kw.get("expected_attach_type", 0),
                             attach_btf_id=kw.get("attach_btf_id", 0), prog_flags=kw.get("prog_flags", 0))
    _close(fd)
    if fd >= 0:
        return FeatureStatus(f"prog:{name}", True, "a minimal program loaded")
    # A verifier log means the kernel knows the type and got as far as checking the program
    # (struct_ops/ext need a real target to load at all).
    if log.strip():
        return FeatureStatus(f"prog:{name}", True, f"the kernel verified a probe program ({os.strerror(err)})")
    return FeatureStatus(f"prog:{name}", False,
                         f"loading a minimal {name} program failed: {os.strerror(err)} (errno {err})")


def prog_type(name: Union[str, int]) -> bool:
    """Whether programs of type ``name`` (``"kprobe"``, ``"tracing"``, a BPF_PROG_TYPE_* int) load."""
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
                             else "not in the kernel's BTF enum bpf_map_type")
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
                                           f"(errno {e.errno})")
    finally:
        _close(inner)


def map_type(name: Union[str, int]) -> bool:
    """Whether maps of type ``name`` (``"ringbuf"``, ``"lru_hash"``, an int) can be created."""
    return _map_type_status(_name_to_id(name, sc.MAP_TYPE_NAMES, "map")).ok


def helper_id(name: Union[str, int]) -> int:
    """BPF_FUNC_* number of helper ``name`` (``"get_attach_cookie"`` or ``"bpf_get_attach_cookie"``),
    from the running kernel's BTF."""
    if isinstance(name, int):
        return name
    short = name.removeprefix("bpf_").removeprefix("BPF_FUNC_")
    ids = _kernel_enum("bpf_func_id")
    if f"BPF_FUNC_{short}" not in ids:
        raise ValueError(f"this kernel has no helper {name!r} (not in its BTF enum bpf_func_id)")
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
        return FeatureStatus(label, False, f"the verifier refused the call: {line.strip()}")
    if not log.strip():
        return FeatureStatus(label, False, f"probe program did not load: {os.strerror(err)} (errno {err})")
    # Rejected for its (missing) arguments, which means the call itself is allowed.
    return FeatureStatus(label, True, "the verifier accepted the call (it only objected to the arguments)")


def helper(name: Union[str, int], prog_type: Union[str, int] = "kprobe") -> bool:
    """Whether programs of ``prog_type`` may call helper ``name``.

    Example::

        features.helper("ringbuf_reserve", "tracepoint")
    """
    try:
        hid = helper_id(name)
    except ValueError:
        return False
    return _helper_status(_name_to_id(prog_type, sc.PROG_TYPE_NAMES, "prog"), hid).ok


# -- kernel features the probes need ---------------------------------------------------

def _pmu_exists(pmu: str) -> bool:
    return os.path.exists(f"/sys/bus/event_source/devices/{pmu}/type")


def _kprobes() -> tuple[bool, str]:
    if _pmu_exists("kprobe"):
        return True, "the kprobe PMU exists (/sys/bus/event_source/devices/kprobe)"
    return False, ("this kernel has no kprobes: /sys/bus/event_source/devices/kprobe is missing, it was built "
                   "without CONFIG_KPROBES (and CONFIG_KPROBE_EVENTS)")


def _uprobes() -> tuple[bool, str]:
    if _pmu_exists("uprobe"):
        return True, "the uprobe PMU exists (/sys/bus/event_source/devices/uprobe)"
    return False, ("this kernel has no uprobes: /sys/bus/event_source/devices/uprobe is missing, it was built "
                   "without CONFIG_UPROBES (and CONFIG_UPROBE_EVENTS)")


def _tracefs() -> tuple[bool, str]:
    from .tracefs import tracefs_root

    try:
        return True, f"tracefs at {tracefs_root()}"
    except FeatureNotSupported as e:
        return False, str(e)


def _btf() -> tuple[bool, str]:
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        return True, "/sys/kernel/btf/vmlinux exists"
    return False, "the kernel has no BTF (/sys/kernel/btf/vmlinux missing): it needs CONFIG_DEBUG_INFO_BTF=y"


def _tracing_prog(attach_type: int, target: str, kind: str = "FUNC") -> tuple[int, str]:
    """Load a tracing program for ``target``; (fd, "") or (-1, why not)."""
    btf_id = _btf_id(target, kind)
    if not btf_id:
        return -1, f"{target} is not in the kernel's BTF"
    fd, err, log = _try_load(sc.BPF_PROG_TYPE_TRACING, expected_attach_type=attach_type, attach_btf_id=btf_id)
    if fd >= 0:
        return fd, ""
    detail = log.strip().splitlines()[0] if log.strip() else ""
    return -1, f"{os.strerror(err)} (errno {err}){': ' + detail if detail else ''}"


def _fentry(attach_type: int = sc.BPF_TRACE_FENTRY, what: str = "fentry") -> tuple[bool, str]:
    ok, why = _btf()
    if not ok:
        return False, why
    fd, why = _tracing_prog(attach_type, "bpf_fentry_test1")
    if fd < 0:
        return False, (f"the kernel refuses {what} programs: loading one for bpf_fentry_test1 as root failed with "
                       f"{why}. BPF trampolines need CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS on x86-64 and a "
                       "kernel that permits them (some VMs and locked-down kernels do not)")
    try:
        link = sc.raw_tracepoint_open(fd, None, what=f"{what} probe")
        os.close(link)
        return True, f"a {what} program on bpf_fentry_test1 loaded and attached"
    except BpfError as e:
        return False, (f"the kernel loads {what} programs but refuses to attach them: {os.strerror(e.errno)} "
                       f"(errno {e.errno}); BPF trampolines are unavailable")
    finally:
        os.close(fd)


def _tp_btf() -> tuple[bool, str]:
    ok, why = _btf()
    if not ok:
        return False, why
    fd, why = _tracing_prog(sc.BPF_TRACE_RAW_TP, "btf_trace_sched_switch", "TYPEDEF")
    if fd < 0:
        return False, f"loading a tp_btf program for sched_switch failed: {why}"
    os.close(fd)
    return True, "a tp_btf program for sched_switch loaded"


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


def _kprobe_multi() -> tuple[bool, str]:
    name = ctypes.create_string_buffer(b"bpf_fentry_test1")
    syms = (ctypes.c_uint64 * 1)(ctypes.addressof(name))
    # kprobe_multi: {u32 flags; u32 cnt; u64 syms; u64 addrs; u64 cookies}
    err, why = _link_create_errno(sc.BPF_TRACE_KPROBE_MULTI, (1 << 32, ctypes.addressof(syms)),
                                  sc.BPF_TRACE_KPROBE_MULTI)
    if err == 0:
        return True, "a kprobe_multi link on bpf_fentry_test1 was created"
    if err in (_errno.EOPNOTSUPP, 524):
        return False, "kprobe_multi links need CONFIG_FPROBE, which this kernel lacks"
    return False, f"kprobe_multi links are not supported (BPF_LINK_CREATE failed: {why}; needs Linux 5.18+)"


def _uprobe_multi() -> tuple[bool, str]:
    path = ctypes.create_string_buffer(b"/")
    offsets = (ctypes.c_uint64 * 1)(0)
    # uprobe_multi: {u64 path; u64 offsets; u64 ref_ctr_offsets; u64 cookies; u32 cnt; u32 flags; u32 pid}
    # A directory as the path: a kernel with uprobe_multi resolves it and says EBADF (not a regular
    # file); one without it rejects the attach type with EINVAL. Nothing gets attached either way.
    words = (ctypes.addressof(path), ctypes.addressof(offsets), 0, 0, 1)
    err, why = _link_create_errno(sc.BPF_TRACE_UPROBE_MULTI, words, sc.BPF_TRACE_UPROBE_MULTI)
    if err in (0, _errno.EBADF):
        return True, "the kernel accepts uprobe_multi links"
    if err in (_errno.EOPNOTSUPP, 524):
        return False, "uprobe_multi links need CONFIG_UPROBES, which this kernel lacks"
    return False, f"uprobe_multi links are not supported (BPF_LINK_CREATE failed: {why}; needs Linux 6.6+)"


def _hw_pmu() -> tuple[bool, str]:
    attr = sc.PerfEventAttr(type=sc.PERF_TYPE_HARDWARE, config=0, flags=sc.PERF_ATTR_DISABLED
                            | sc.PERF_ATTR_EXCLUDE_KERNEL | sc.PERF_ATTR_EXCLUDE_HV)
    try:
        fd = sc.perf_event_open(attr, pid=0, cpu=-1, what="cycles")
        os.close(fd)
        return True, "a hardware cycles counter opened"
    except BpfError as e:
        return False, (f"no hardware PMU: perf_event_open of the cycles counter failed with {os.strerror(e.errno)} "
                       f"(errno {e.errno}); /sys/bus/event_source/devices/cpu is "
                       f"{'present' if _pmu_exists('cpu') else 'missing'} (VMs often expose no PMU)")


def _ringbuf() -> tuple[bool, str]:
    st = _map_type_status(sc.BPF_MAP_TYPE_RINGBUF)
    return st.ok, st.reason if st.ok else st.reason + " (ring buffers need Linux 5.8+)"


def _bpf_cookie() -> tuple[bool, str]:
    if helper("get_attach_cookie", "kprobe"):
        return True, "kprobe/uprobe programs may call bpf_get_attach_cookie"
    return False, "bpf_get_attach_cookie is not available to kprobe/uprobe programs (needs Linux 5.15+)"


def _perf_link() -> tuple[bool, str]:
    # A tracepoint program linked to a software event: EINVAL means "wrong kind of event", which a
    # kernel without BPF_PERF_EVENT links would not get far enough to say.
    fd, err, _ = _try_load(sc.BPF_PROG_TYPE_TRACEPOINT)
    if fd < 0:
        return False, f"tracepoint programs do not load: {os.strerror(err)}"
    attr = sc.PerfEventAttr(type=sc.PERF_TYPE_TRACEPOINT, config=_sched_switch_id(), sample_period=1)
    try:
        pfd = sc.perf_event_open(attr, pid=-1, cpu=0)
    except BpfError as e:
        os.close(fd)
        return False, f"cannot open a tracepoint perf event: {e}"
    try:
        link = sc.link_create(fd, pfd, sc.BPF_PERF_EVENT)
        os.close(link)
        return True, "BPF_LINK_CREATE accepted a perf event"
    except BpfError as e:
        return False, f"BPF_LINK_CREATE with perf events failed: {os.strerror(e.errno)} (needs Linux 5.15+)"
    finally:
        os.close(pfd)
        os.close(fd)


def _sched_switch_id() -> int:
    from .tracefs import tracepoint_id

    return tracepoint_id("sched", "sched_switch")


KERNEL_FEATURES: dict[str, Callable[[], tuple[bool, str]]] = {
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
    ``map:TYPE``, ``helper:NAME`` or ``helper:PROGTYPE:NAME``."""
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
            except ValueError as e:
                return FeatureStatus(name, False, str(e))
            st = _helper_status(_name_to_id(ptype or "kprobe", sc.PROG_TYPE_NAMES, "prog"), hid)
            return FeatureStatus(name, st.ok, st.reason)
    except ValueError as e:
        return FeatureStatus(name, False, str(e))
    key = _ALIASES.get(name, name)
    if key not in KERNEL_FEATURES:
        raise ValueError(f"unknown feature {name!r}; known: {', '.join(sorted(KERNEL_FEATURES))}, "
                         "prog:TYPE, map:TYPE, helper:[PROGTYPE:]NAME")
    with _lock:
        if key not in _kernel_cache:
            try:
                ok, reason = KERNEL_FEATURES[key]()
            except BpfError as e:
                ok, reason = False, f"probing {key} failed: {e}"
            _kernel_cache[key] = FeatureStatus(key, ok, reason)
        return _kernel_cache[key]


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

    ``what`` names the operation for the message, e.g. ``"kprobe on do_sys_open"``.
    """
    st = status(name)
    if not st.ok:
        prefix = f"{what}: " if what else ""
        raise FeatureNotSupported(prefix + st.reason, 0, feature=st.name)


def attach_type(name: str) -> bool:
    """Whether an attach mechanism works: ``"kprobe"``, ``"kprobe_multi"``, ``"uprobe_multi"``,
    ``"fentry"``, ``"fexit"``, ``"tp_btf"``, ``"perf_event"``/``"perf_link"``..."""
    return status({"perf_event": "perf_link"}.get(name, name)).ok


def probe_all() -> dict[str, dict[str, bool]]:
    """Everything at once, like ``bpftool feature probe`` (takes ~1 s, then cached)."""
    out: dict[str, dict[str, bool]] = {
        "prog_types": {n: _prog_type_status(t).ok for t, n in sc.PROG_TYPE_NAMES.items() if t},
        "map_types": {n: _map_type_status(t).ok for t, n in sc.MAP_TYPE_NAMES.items() if t},
        "kernel": {k: status(k).ok for k in KERNEL_FEATURES},
    }
    helpers = [h.removeprefix("BPF_FUNC_") for h, v in _kernel_enum("bpf_func_id").items() if 0 < v
               and not h.startswith("__")]
    out["helpers.kprobe"] = {h: helper(h, "kprobe") for h in helpers}
    return out
