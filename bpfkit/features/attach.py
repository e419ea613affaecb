"""Attach types: can a program attach as ``BPF_XDP``, ``BPF_TCX_INGRESS``, ...?

Each BPF_* attach type belongs to one program type (the kernel's attach_type_to_prog_type);
probing loads a minimal program of that type with the attach type as expected_attach_type,
which is how the kernel is told what a program will attach to. Attach types that bpfkit's
probes use through a dedicated mechanism are answered by that kernel feature instead.

Example::

    attach_type("xdp"), attach_type("tcx_ingress")
"""
from __future__ import annotations

import errno as _errno
import os
from functools import lru_cache
from typing import Union

from .. import _sys as sc
from ..errors import BpfUsageError
from ..sections import SECTIONS
from .kernel import ALIASES, kernel_status
from .probe import FeatureStatus, close_fd, kernel_enum, tracing_prog, try_load
from .types import NEEDS_TARGET, prog_type_status

__all__ = ["attach_type_status", "attach_status", "attach_type"]

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
# friendly names for attach types: how SEC() names spell them (from the section table: "fentry",
# "tp_btf", "kprobe_multi", ...), plus a few that are no SEC() name
_ATTACH_ALIASES = {d.prefix.replace(".", "_"): sc.ATTACH_TYPE_NAMES[d.attach_type] for d in SECTIONS
                   if d.attach_type and "/" not in d.prefix and not d.sleepable and not d.prefix.startswith("kret")
                   and not d.prefix.startswith("uret") and d.prefix.replace(".", "_") != sc.ATTACH_TYPE_NAMES[d.attach_type]}
_ATTACH_ALIASES.update({"kprobe_session": "trace_kprobe_session", "uprobe_session": "trace_uprobe_session",
                        "perf_link": "perf_event", "tcx": "tcx_ingress", "netkit": "netkit_primary"})


def _attach_enum_name(name: Union[str, int]) -> str:
    """``"xdp"`` / ``"BPF_XDP"`` / 37 -> ``"BPF_XDP"``; BpfUsageError for names no kernel has."""
    enum = kernel_enum("bpf_attach_type")
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
def attach_type_status(key: str) -> FeatureStatus:
    short = key.removeprefix("BPF_").lower()
    label = f"attach:{short}"
    value = kernel_enum("bpf_attach_type").get(key)
    if value is None:
        return FeatureStatus(label, False, f"{key} is not in the kernel's BTF enum bpf_attach_type (the kernel "
                                           "predates it)", _errno.EINVAL)
    if short in _ATTACH_FEATURES:
        st = kernel_status(_ATTACH_FEATURES[short])
        return FeatureStatus(label, st.ok, st.reason, st.errno)
    ptype = _ATTACH_PROG_TYPE.get(short)
    if ptype is None:
        return FeatureStatus(label, False, f"bpfkit does not know which program type attaches as {key}; probe "
                                           "the program type with features.prog_type() instead", _errno.EINVAL)
    pname = sc.PROG_TYPE_NAMES.get(ptype, str(ptype))
    if ptype in NEEDS_TARGET:
        st = prog_type_status(ptype)
        return FeatureStatus(label, st.ok, st.reason, st.errno)
    if short in _ATTACH_BTF_TARGET:
        target, kind = _ATTACH_BTF_TARGET[short]
        fd, why, err = tracing_prog(value, target, kind, prog_type=ptype)
        close_fd(fd)
        if fd >= 0:
            return FeatureStatus(label, True, f"a {pname} program for {target} with expected_attach_type {key} loaded")
        return FeatureStatus(label, False, f"loading a {pname} program for {target} with expected_attach_type {key} "
                                           f"failed: {why}", err)
    fd, err, log = try_load(ptype, expected_attach_type=value)
    close_fd(fd)
    if fd >= 0:
        return FeatureStatus(label, True, f"a minimal {pname} program with expected_attach_type {key} loaded")
    if log.strip():
        return FeatureStatus(label, True, f"the kernel verified a {pname} program with expected_attach_type {key} "
                                          f"({os.strerror(err)})")
    return FeatureStatus(label, False, f"loading a minimal {pname} program with expected_attach_type {key} failed: "
                                       f"{os.strerror(err)} (errno {err})", err)


def attach_status(name: Union[str, int]) -> FeatureStatus:
    if isinstance(name, str) and ALIASES.get(name, name) in ("kprobes", "uprobes"):
        st = kernel_status(name)  # perf-event based: the PMU is the attach mechanism
        return FeatureStatus(f"attach:{name}", st.ok, st.reason, st.errno)
    return attach_type_status(_attach_enum_name(name))


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
    return attach_status(name).ok


