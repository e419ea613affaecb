"""The one table of ``SEC()`` names: what each says about its program (in the spirit of libbpf's
``section_defs[]``).

Everything bpfkit knows about a section name is derived from :data:`SECTIONS`: the program type
and expected attach type the loader sets, the flags (sleepable ``.s`` forms), which attach path
``Object.attach()`` takes, which kernel feature the program needs to load at all, and the examples
in error messages. Data only: no module here attaches or loads anything.

Example::

    d = sections.find("tracepoint/syscalls/sys_enter_openat")
    d.prefix, d.attach, d.target     # ('tracepoint', 'tracepoint', 'syscalls/sys_enter_openat')
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from . import _sys as sc

__all__ = ["SectionDef", "Match", "SECTIONS", "find", "example_for", "prog_types_for"]


@dataclass(frozen=True)
class SectionDef:
    """One kind of SEC() name.

    ``prefix``: the name, or the part before ``/`` when the section carries a target;
    ``args``: whether a ``/TARGET`` may follow; ``attach``: the attach path ``Object.attach()``
    takes ('' = attached by an explicit call only); ``method``: the ``Program.attach_*`` method;
    ``syntax``: what follows ``prefix/`` (for messages; '' = the target is fixed at load time);
    ``load_feature``: the :mod:`bpfkit.features` name without which the kernel refuses to load it.
    """

    prefix: str
    prog_type: int
    attach_type: int = 0
    args: bool = False
    attach: str = ""
    method: str = ""
    syntax: str = ""
    load_feature: str = ""
    sleepable: bool = False
    example: str = ""  # a whole SEC() name of this kind, for messages

    @property
    def prog_flags(self) -> int:
        """BPF_PROG_LOAD flags the section implies."""
        return sc.BPF_F_SLEEPABLE if self.sleepable else 0


@dataclass(frozen=True)
class Match:
    """A section name matched to its definition; ``target`` is what follows ``prefix/``."""

    section: str
    definition: SectionDef
    target: str


_d = SectionDef  # short, for the table


def _kprobes(prefix: str, ret: bool, multi: bool = False) -> SectionDef:
    return _d(prefix, sc.BPF_PROG_TYPE_KPROBE, sc.BPF_TRACE_KPROBE_MULTI if multi else 0, args=True,
              attach=("kretprobe" if ret else "kprobe") + ("_multi" if multi else ""),
              method="attach_kretprobe" if ret else "attach_kprobe",
              syntax="PATTERN" if multi else "FUNCTION[+OFFSET]")


def _uprobes(prefix: str, ret: bool, multi: bool = False, sleepable: bool = False) -> SectionDef:
    return _d(prefix, sc.BPF_PROG_TYPE_KPROBE, sc.BPF_TRACE_UPROBE_MULTI if multi else 0, args=True,
              attach=("uretprobe" if ret else "uprobe") + ("_multi" if multi else ""),
              method="attach_uretprobe" if ret else "attach_uprobe",
              syntax="BINARY:PATTERN" if multi else "BINARY:FUNCTION[+OFFSET]", sleepable=sleepable)


def _trampoline(prefix: str, prog_type: int, attach_type: int, feature: str, sleepable: bool = False,
                syntax: str = "FUNCTION", example: str = "") -> SectionDef:
    # the target is resolved at load time (attach_btf_id): attaching needs nothing more
    return _d(prefix, prog_type, attach_type, args=True, attach="btf", method="attach_btf", load_feature=feature,
              sleepable=sleepable, syntax=syntax, example=example)


SECTIONS: tuple[SectionDef, ...] = (
    # tracing
    _d("tracepoint", sc.BPF_PROG_TYPE_TRACEPOINT, args=True, attach="tracepoint", method="attach_tracepoint",
       syntax="CATEGORY/NAME", example="tracepoint/sched/sched_switch"),
    _d("tp", sc.BPF_PROG_TYPE_TRACEPOINT, args=True, attach="tracepoint", method="attach_tracepoint",
       syntax="CATEGORY/NAME"),
    _d("raw_tracepoint", sc.BPF_PROG_TYPE_RAW_TRACEPOINT, args=True, attach="raw_tp",
       method="attach_raw_tracepoint", syntax="NAME", example="raw_tp/sys_enter"),
    _d("raw_tp", sc.BPF_PROG_TYPE_RAW_TRACEPOINT, args=True, attach="raw_tp", method="attach_raw_tracepoint",
       syntax="NAME"),
    _d("raw_tracepoint.w", sc.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, args=True, attach="raw_tp",
       method="attach_raw_tracepoint", syntax="NAME"),
    _d("raw_tp.w", sc.BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, args=True, attach="raw_tp",
       method="attach_raw_tracepoint", syntax="NAME"),
    _trampoline("tp_btf", sc.BPF_PROG_TYPE_TRACING, sc.BPF_TRACE_RAW_TP, "tp_btf", syntax="TRACEPOINT",
                example="tp_btf/sched_switch"),
    _trampoline("fentry", sc.BPF_PROG_TYPE_TRACING, sc.BPF_TRACE_FENTRY, "fentry"),
    _trampoline("fexit", sc.BPF_PROG_TYPE_TRACING, sc.BPF_TRACE_FEXIT, "fexit"),
    _trampoline("fmod_ret", sc.BPF_PROG_TYPE_TRACING, sc.BPF_MODIFY_RETURN, "fentry"),
    _trampoline("fentry.s", sc.BPF_PROG_TYPE_TRACING, sc.BPF_TRACE_FENTRY, "fentry", sleepable=True),
    _trampoline("fexit.s", sc.BPF_PROG_TYPE_TRACING, sc.BPF_TRACE_FEXIT, "fexit", sleepable=True),
    _trampoline("fmod_ret.s", sc.BPF_PROG_TYPE_TRACING, sc.BPF_MODIFY_RETURN, "fentry", sleepable=True),
    _d("freplace", sc.BPF_PROG_TYPE_EXT, args=True, load_feature="fentry"),
    _trampoline("lsm", sc.BPF_PROG_TYPE_LSM, sc.BPF_LSM_MAC, "prog:lsm", syntax="HOOK"),
    _trampoline("lsm.s", sc.BPF_PROG_TYPE_LSM, sc.BPF_LSM_MAC, "prog:lsm", sleepable=True, syntax="HOOK"),
    _d("lsm_cgroup", sc.BPF_PROG_TYPE_LSM, sc.BPF_LSM_CGROUP, args=True, load_feature="prog:lsm"),
    _d("iter", sc.BPF_PROG_TYPE_TRACING, sc.BPF_TRACE_ITER, args=True),
    _d("iter.s", sc.BPF_PROG_TYPE_TRACING, sc.BPF_TRACE_ITER, args=True, sleepable=True),
    _kprobes("kprobe", ret=False),
    _kprobes("kretprobe", ret=True),
    _kprobes("kprobe.multi", ret=False, multi=True),
    _kprobes("kretprobe.multi", ret=True, multi=True),
    _d("ksyscall", sc.BPF_PROG_TYPE_KPROBE, args=True, attach="ksyscall", method="attach_ksyscall", syntax="SYSCALL"),
    _d("kretsyscall", sc.BPF_PROG_TYPE_KPROBE, args=True, attach="kretsyscall", method="attach_ksyscall",
       syntax="SYSCALL"),
    _uprobes("uprobe", ret=False),
    _uprobes("uretprobe", ret=True),
    _uprobes("uprobe.s", ret=False, sleepable=True),
    _uprobes("uretprobe.s", ret=True, sleepable=True),
    _uprobes("uprobe.multi", ret=False, multi=True),
    _uprobes("uretprobe.multi", ret=True, multi=True),
    _uprobes("uprobe.multi.s", ret=False, multi=True, sleepable=True),
    _uprobes("uretprobe.multi.s", ret=True, multi=True, sleepable=True),
    _d("usdt", sc.BPF_PROG_TYPE_KPROBE, args=True, attach="usdt", method="attach_usdt",
       syntax="BINARY:PROVIDER:NAME"),
    _d("usdt.s", sc.BPF_PROG_TYPE_KPROBE, args=True, attach="usdt", method="attach_usdt",
       syntax="BINARY:PROVIDER:NAME", sleepable=True),
    _d("perf_event", sc.BPF_PROG_TYPE_PERF_EVENT, method="attach_perf_event"),
    _d("syscall", sc.BPF_PROG_TYPE_SYSCALL, sleepable=True),
    # networking
    _d("xdp", sc.BPF_PROG_TYPE_XDP, sc.BPF_XDP, method="attach_xdp"),
    _d("xdp.frags", sc.BPF_PROG_TYPE_XDP, sc.BPF_XDP, method="attach_xdp"),
    _d("xdp/devmap", sc.BPF_PROG_TYPE_XDP, sc.BPF_XDP_DEVMAP),
    _d("xdp/cpumap", sc.BPF_PROG_TYPE_XDP, sc.BPF_XDP_CPUMAP),
    _d("tcx/ingress", sc.BPF_PROG_TYPE_SCHED_CLS, sc.BPF_TCX_INGRESS, method="attach_tc"),
    _d("tcx/egress", sc.BPF_PROG_TYPE_SCHED_CLS, sc.BPF_TCX_EGRESS, method="attach_tc"),
    _d("tc/ingress", sc.BPF_PROG_TYPE_SCHED_CLS, sc.BPF_TCX_INGRESS, method="attach_tc"),
    _d("tc/egress", sc.BPF_PROG_TYPE_SCHED_CLS, sc.BPF_TCX_EGRESS, method="attach_tc"),
    _d("tc", sc.BPF_PROG_TYPE_SCHED_CLS, args=True, method="attach_tc"),
    _d("classifier", sc.BPF_PROG_TYPE_SCHED_CLS, args=True, method="attach_tc"),
    _d("action", sc.BPF_PROG_TYPE_SCHED_ACT, args=True),
    _d("netkit/primary", sc.BPF_PROG_TYPE_SCHED_CLS, sc.BPF_NETKIT_PRIMARY),
    _d("netkit/peer", sc.BPF_PROG_TYPE_SCHED_CLS, sc.BPF_NETKIT_PEER),
    _d("socket", sc.BPF_PROG_TYPE_SOCKET_FILTER, args=True),
    _d("sk_reuseport", sc.BPF_PROG_TYPE_SK_REUSEPORT, sc.BPF_SK_REUSEPORT_SELECT),
    _d("sk_reuseport/migrate", sc.BPF_PROG_TYPE_SK_REUSEPORT, sc.BPF_SK_REUSEPORT_SELECT_OR_MIGRATE),
    _d("sk_lookup", sc.BPF_PROG_TYPE_SK_LOOKUP, sc.BPF_SK_LOOKUP),
    _d("netfilter", sc.BPF_PROG_TYPE_NETFILTER, sc.BPF_NETFILTER),
    _d("lwt_in", sc.BPF_PROG_TYPE_LWT_IN),
    _d("lwt_out", sc.BPF_PROG_TYPE_LWT_OUT),
    _d("lwt_xmit", sc.BPF_PROG_TYPE_LWT_XMIT),
    _d("lwt_seg6local", sc.BPF_PROG_TYPE_LWT_SEG6LOCAL),
    _d("sockops", sc.BPF_PROG_TYPE_SOCK_OPS, sc.BPF_CGROUP_SOCK_OPS),
    _d("sk_skb/stream_parser", sc.BPF_PROG_TYPE_SK_SKB, sc.BPF_SK_SKB_STREAM_PARSER),
    _d("sk_skb/stream_verdict", sc.BPF_PROG_TYPE_SK_SKB, sc.BPF_SK_SKB_STREAM_VERDICT),
    _d("sk_skb", sc.BPF_PROG_TYPE_SK_SKB),
    _d("sk_msg", sc.BPF_PROG_TYPE_SK_MSG, sc.BPF_SK_MSG_VERDICT),
    _d("lirc_mode2", sc.BPF_PROG_TYPE_LIRC_MODE2, sc.BPF_LIRC_MODE2),
    _d("flow_dissector", sc.BPF_PROG_TYPE_FLOW_DISSECTOR, sc.BPF_FLOW_DISSECTOR),
    _d("struct_ops", sc.BPF_PROG_TYPE_STRUCT_OPS, args=True),
    _d("struct_ops.s", sc.BPF_PROG_TYPE_STRUCT_OPS, args=True, sleepable=True),
    # cgroups
    _d("cgroup_skb/ingress", sc.BPF_PROG_TYPE_CGROUP_SKB, sc.BPF_CGROUP_INET_INGRESS),
    _d("cgroup_skb/egress", sc.BPF_PROG_TYPE_CGROUP_SKB, sc.BPF_CGROUP_INET_EGRESS),
    _d("cgroup/skb", sc.BPF_PROG_TYPE_CGROUP_SKB),
    _d("cgroup/sock_create", sc.BPF_PROG_TYPE_CGROUP_SOCK, sc.BPF_CGROUP_INET_SOCK_CREATE),
    _d("cgroup/sock_release", sc.BPF_PROG_TYPE_CGROUP_SOCK, sc.BPF_CGROUP_INET_SOCK_RELEASE),
    _d("cgroup/sock", sc.BPF_PROG_TYPE_CGROUP_SOCK, sc.BPF_CGROUP_INET_SOCK_CREATE),
    _d("cgroup/post_bind4", sc.BPF_PROG_TYPE_CGROUP_SOCK, sc.BPF_CGROUP_INET4_POST_BIND),
    _d("cgroup/post_bind6", sc.BPF_PROG_TYPE_CGROUP_SOCK, sc.BPF_CGROUP_INET6_POST_BIND),
    _d("cgroup/bind4", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_INET4_BIND),
    _d("cgroup/bind6", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_INET6_BIND),
    _d("cgroup/connect4", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_INET4_CONNECT),
    _d("cgroup/connect6", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_INET6_CONNECT),
    _d("cgroup/connect_unix", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_UNIX_CONNECT),
    _d("cgroup/sendmsg4", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_UDP4_SENDMSG),
    _d("cgroup/sendmsg6", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_UDP6_SENDMSG),
    _d("cgroup/sendmsg_unix", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_UNIX_SENDMSG),
    _d("cgroup/recvmsg4", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_UDP4_RECVMSG),
    _d("cgroup/recvmsg6", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_UDP6_RECVMSG),
    _d("cgroup/recvmsg_unix", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_UNIX_RECVMSG),
    _d("cgroup/getpeername4", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_INET4_GETPEERNAME),
    _d("cgroup/getpeername6", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_INET6_GETPEERNAME),
    _d("cgroup/getpeername_unix", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_UNIX_GETPEERNAME),
    _d("cgroup/getsockname4", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_INET4_GETSOCKNAME),
    _d("cgroup/getsockname6", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_INET6_GETSOCKNAME),
    _d("cgroup/getsockname_unix", sc.BPF_PROG_TYPE_CGROUP_SOCK_ADDR, sc.BPF_CGROUP_UNIX_GETSOCKNAME),
    _d("cgroup/sysctl", sc.BPF_PROG_TYPE_CGROUP_SYSCTL, sc.BPF_CGROUP_SYSCTL),
    _d("cgroup/getsockopt", sc.BPF_PROG_TYPE_CGROUP_SOCKOPT, sc.BPF_CGROUP_GETSOCKOPT),
    _d("cgroup/setsockopt", sc.BPF_PROG_TYPE_CGROUP_SOCKOPT, sc.BPF_CGROUP_SETSOCKOPT),
    _d("cgroup/dev", sc.BPF_PROG_TYPE_CGROUP_DEVICE, sc.BPF_CGROUP_DEVICE),
)

_EXACT = {d.prefix: d for d in SECTIONS}
_WITH_ARGS = {d.prefix: d for d in SECTIONS if d.args}


def find(section: str) -> Optional[Match]:
    """The definition of a SEC() name (exact names first, then ``prefix/target`` with the longest
    prefix, as libbpf matches them); None for a name no kernel program type has.

    Example::

        find("uretprobe.multi/c:str*").definition.attach   # 'uretprobe_multi'
        find("xdp").definition.prog_type                   # BPF_PROG_TYPE_XDP
    """
    exact = _EXACT.get(section)
    if exact is not None:
        return Match(section, exact, "")
    cut = len(section)
    while True:
        cut = section.rfind("/", 0, cut)
        if cut <= 0:
            return None
        d = _WITH_ARGS.get(section[:cut])
        if d is not None:
            return Match(section, d, section[cut + 1:])


def example_for(method: str) -> str:
    """A SEC() name whose programs ``Program.<method>()`` attaches, for error messages.

    Example::

        example_for("attach_usdt")   # 'usdt'
    """
    # probes that take their target from the attach call are best shown bare (SEC("uprobe"))
    defs = [d for d in SECTIONS if d.method == method]
    return next((d.example for d in defs if d.example), defs[0].prefix)


def prog_types_for(method: str) -> tuple[int, ...]:
    """The program types ``Program.<method>()`` can attach (every type the table gives that method).

    Example::

        prog_types_for("attach_raw_tracepoint")   # (RAW_TRACEPOINT, RAW_TRACEPOINT_WRITABLE)
    """
    return tuple(dict.fromkeys(d.prog_type for d in SECTIONS if d.method == method))
