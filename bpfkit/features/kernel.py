"""Kernel features bpfkit's probes depend on (kprobes, fentry, a hardware PMU, ...), each with a
reason that says why not, for error messages and test skips.

Example::

    kernel_status("kprobes").reason   # "this kernel has no kprobes: ... CONFIG_KPROBES ..."
"""
from __future__ import annotations

import ctypes
import errno as _errno
import os
import threading
from typing import Callable, Union

from .. import _sys as sc
from ..errors import ENOTSUPP, BpfError, BpfUsageError, FeatureNotSupported
from ..tracefs import tracefs_root, tracepoint_id
from .probe import FeatureStatus, tracing_prog, try_load
from .types import helper_id, helper_status, map_type_status

__all__ = ["Probe", "KERNEL_FEATURES", "ALIASES", "kernel_status"]

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
    try:
        return True, f"tracefs at {tracefs_root()}", 0
    except FeatureNotSupported as e:
        return False, str(e), e.errno or _errno.ENOENT


def _btf() -> tuple[bool, str, int]:
    if os.path.exists("/sys/kernel/btf/vmlinux"):
        return True, "/sys/kernel/btf/vmlinux exists", 0
    return (False, "the kernel has no BTF (/sys/kernel/btf/vmlinux missing): it needs CONFIG_DEBUG_INFO_BTF=y",
            _errno.ENOENT)



def _fentry(attach_type: int = sc.BPF_TRACE_FENTRY, what: str = "fentry") -> tuple[bool, str, int]:
    ok, why, err = _btf()
    if not ok:
        return False, why, err
    fd, why, err = tracing_prog(attach_type, "bpf_fentry_test1")
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
    fd, why, err = tracing_prog(sc.BPF_TRACE_RAW_TP, "btf_trace_sched_switch", "TYPEDEF")
    if fd < 0:
        return False, f"loading a tp_btf program for sched_switch failed: {why}", err
    os.close(fd)
    return True, "a tp_btf program for sched_switch loaded", 0


def _link_create_errno(attach_type: int, words: tuple[int, ...], prog_attach: int) -> tuple[int, str]:
    fd, err, log = try_load(sc.BPF_PROG_TYPE_KPROBE, expected_attach_type=prog_attach)
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
    st = map_type_status(sc.BPF_MAP_TYPE_RINGBUF)
    return st.ok, st.reason if st.ok else st.reason + " (ring buffers need Linux 5.8+)", st.errno


def _bpf_cookie() -> tuple[bool, str, int]:
    try:
        st = helper_status(sc.BPF_PROG_TYPE_KPROBE, helper_id("get_attach_cookie"))
    except BpfUsageError as e:  # the kernel's BTF does not even name the helper
        st = FeatureStatus("helper:kprobe:get_attach_cookie", False, str(e), e.errno)
    if st.ok:
        return True, "kprobe/uprobe programs may call bpf_get_attach_cookie", 0
    return (False, "bpf_get_attach_cookie is not available to kprobe/uprobe programs (needs Linux 5.15+)",
            st.errno or _errno.EINVAL)


def _perf_link() -> tuple[bool, str, int]:
    # A tracepoint program linked to a software event: EINVAL means "wrong kind of event", which a
    # kernel without BPF_PERF_EVENT links would not get far enough to say.
    fd, err, _ = try_load(sc.BPF_PROG_TYPE_TRACEPOINT)
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
ALIASES = {"kprobe": "kprobes", "kretprobe": "kprobes", "uprobe": "uprobes", "fmod_ret": "fentry",
            "hardware": "hw_pmu", "pmu": "hw_pmu", "cookie": "bpf_cookie"}
_kernel_cache: dict[str, FeatureStatus] = {}
_lock = threading.Lock()


def kernel_status(name: str) -> FeatureStatus:
    """Probe kernel feature ``name`` (a key of :data:`KERNEL_FEATURES` or an alias such as
    "kprobe"), once per process.

    Example::

        kernel_status("fentry").ok
    """
    key = ALIASES.get(name, name)
    if key not in KERNEL_FEATURES:
        raise BpfUsageError(f"unknown feature {name!r}; known: {', '.join(sorted(KERNEL_FEATURES))}, "
                            "prog:TYPE, map:TYPE, attach:TYPE, helper:[PROGTYPE:]NAME")
    with _lock:
        cached = _kernel_cache.get(key)
    if cached is not None:
        return cached
    # Probed outside the lock: a probe may itself ask for another (bpf_cookie asks for a helper).
    try:
        res = KERNEL_FEATURES[key]()
        ok, reason = res[0], res[1]
        err = res[2] if len(res) > 2 else 0
    except BpfError as e:
        ok, reason, err = False, f"probing {key} failed: {e}", e.errno
    st = FeatureStatus(key, ok, reason, 0 if ok else err)
    with _lock:
        return _kernel_cache.setdefault(key, st)
