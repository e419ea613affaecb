"""XDP and TC (tcx) attachment to network interfaces, both as BPF links.

Links, not netlink: an XDP or tcx link lives only as long as its fd, so a crashed process leaves
no program behind on the interface (``ip link set dev X xdp ...`` / ``tc filter`` attachments
would stay until someone removes them).

Example::

    with prog.attach_xdp("eth0", mode="generic") as link:
        print(link.id)
    with prog.attach_tc("eth0", "ingress"):
        ...
"""
from __future__ import annotations

import errno
import os
import socket
from typing import Optional, Union

from .. import _sys as sc
from ..errors import AttachError, BpfError, BpfNotFoundError, BpfUsageError, FeatureNotSupported
from .link import Link, attach_refused, new_link

__all__ = ["XDP_MODES", "TC_DIRECTIONS", "attach_xdp", "attach_tc", "interface_index", "xdp_holder"]

# include/uapi/linux/if_link.h
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
XDP_MODES = {"auto": 0, "generic": XDP_FLAGS_SKB_MODE, "native": XDP_FLAGS_DRV_MODE}

# enum bpf_attach_type, Linux 6.6+ (newer than the uapi headers of many distros)
TC_DIRECTIONS = {"ingress": sc.BPF_TCX_INGRESS, "egress": sc.BPF_TCX_EGRESS}

# enum bpf_link_type
_LINK_TYPE_XDP = 6

Interface = Union[str, int]


def interface_index(iface: Interface) -> tuple[int, str]:
    """``(ifindex, name)`` of a network interface in the caller's network namespace.

    Example::

        interface_index("lo")   # (1, 'lo')
    """
    if isinstance(iface, str):
        sc.check_cstr("interface name", iface)
    else:
        iface = sc.check_s32("ifindex", iface, lo=1, hint="an interface index as `ip link` shows it, or its name")
    try:
        if isinstance(iface, int):
            return iface, socket.if_indextoname(iface)
        return socket.if_nametoindex(iface), iface
    except OSError as e:
        raise BpfNotFoundError(f"network interface {iface!r} does not exist in this network namespace; "
                               "`ip link` lists the ones that do", e.errno or errno.ENODEV) from None


def xdp_holder(ifindex: int) -> Optional[str]:
    """Describe the XDP link holding ``ifindex`` (link id and program), None if no link holds it
    (the program may then have been attached through netlink).

    Example::

        xdp_holder(socket.if_nametoindex("eth0"))  # "link 12 (program 'xdp_pass', id 40)"
    """
    for link_id in sc.link_ids():
        try:
            fd = sc.link_fd_by_id(link_id)
        except BpfError:
            continue  # gone meanwhile
        try:
            info = sc.link_info(fd)
        except BpfError:
            continue
        finally:
            _close(fd)
        # bpf_link_info.xdp = {u32 ifindex}: the low half of the union's first word
        if info.type != _LINK_TYPE_XDP or (info.union[0] & 0xFFFFFFFF) != ifindex:
            continue
        return f"link {info.id} (program {_prog_name(int(info.prog_id))!r}, id {info.prog_id})"
    return None


def attach_xdp(prog_fd: int, iface: Interface, *, mode: str = "auto") -> Link:
    """Attach an XDP program to ``iface`` (name or ifindex) with a BPF link.

    ``mode``: ``"native"`` (in the driver; fails on drivers without XDP support), ``"generic"``
    (on the skb, works everywhere, slower) or ``"auto"`` (native when the driver can, else
    generic). One XDP link per interface and mode: a second attach raises AttachError naming the
    holder.

    Example::

        with attach_xdp(prog.fd, "veth0", mode="generic") as link:
            print(link.id)
    """
    if mode not in XDP_MODES:
        raise BpfUsageError(f"unknown XDP mode {mode!r}; use one of {', '.join(XDP_MODES)}", errno.EINVAL)
    ifindex, name = interface_index(iface)
    what = f"xdp on {name} ({mode})"
    try:
        return new_link(lambda: sc.link_create_owned(prog_fd, ifindex, sc.BPF_XDP, flags=XDP_MODES[mode], what=what),
                        what)
    except BpfError as e:
        raise _xdp_error(e, prog_fd, ifindex, name, mode, what) from None


def _xdp_error(e: BpfError, prog_fd: int, ifindex: int, name: str, mode: str, what: str) -> BpfError:
    if e.errno == errno.ENODEV:
        return BpfNotFoundError(f"{what}: network interface {name!r} (ifindex {ifindex}) is gone", e.errno)
    if e.errno == errno.EBUSY:
        holder = xdp_holder(ifindex)
        by = (f"held by BPF {holder}; close that link first" if holder else
              f"held by an XDP program attached through netlink; remove it with `ip link set dev {name} xdp off`")
        return AttachError(f"{what}: the interface already has an XDP program, {by}", e.errno)
    if e.errno == errno.EEXIST:
        other = "generic" if mode != "generic" else "native"
        return AttachError(f"{what}: an XDP program is attached to {name!r} in {other} mode; native and generic "
                           "XDP cannot be active on one interface at the same time", e.errno)
    if e.errno in (errno.EOPNOTSUPP, errno.ENOTSUP) and mode == "native":
        return FeatureNotSupported(f"{what}: the driver of {name!r} has no native XDP support; use "
                                   "mode='generic' (or 'auto')", e.errno, feature="xdp_native")
    return attach_refused(e, prog_fd, what, "attach_xdp")


def attach_tc(prog_fd: int, iface: Interface, direction: str = "ingress") -> Link:
    """Attach a SCHED_CLS program (``SEC("tc")``, ``SEC("tcx/ingress")``) to ``iface``'s
    ``"ingress"`` or ``"egress"`` path with a tcx link (Linux 6.6+). Several programs may be
    attached to one hook; each new one runs after those already there. The program returns
    ``TC_ACT_OK`` (0) to pass, ``TC_ACT_SHOT`` (2) to drop, ``TCX_NEXT`` (-1) to defer to the next.

    Example::

        with attach_tc(prog.fd, "veth0", "egress") as link:
            print(link.id)
    """
    if direction not in TC_DIRECTIONS:
        raise BpfUsageError(f"unknown tc direction {direction!r}; use 'ingress' or 'egress'", errno.EINVAL)
    attach_type = TC_DIRECTIONS[direction]
    _require_tcx(direction)
    ifindex, name = interface_index(iface)
    what = f"tcx {direction} on {name}"
    try:
        # union tcx = {u32 relative_fd; u64 expected_revision}: zeros append after the others
        return new_link(lambda: sc.link_create_owned(prog_fd, ifindex, attach_type, what=what), what)
    except BpfError as e:
        if e.errno == errno.ENODEV:
            raise BpfNotFoundError(f"{what}: network interface {name!r} (ifindex {ifindex}) is gone",
                                   e.errno) from None
        raise attach_refused(e, prog_fd, what, "attach_tc") from None


def _require_tcx(direction: str) -> None:
    from ..features import status

    st = status(f"attach:tcx_{direction}")
    if not st.ok:
        raise FeatureNotSupported(f"tc {direction} attachment uses tcx links, which need Linux 6.6+; this kernel "
                                  f"lacks them ({st.reason}). bpfkit does not fall back to netlink tc filters, "
                                  "which would outlive the process", st.errno or errno.EOPNOTSUPP,
                                  feature="tcx")


def _prog_name(prog_id: int) -> str:
    try:
        fd = sc.prog_fd_by_id(prog_id)
    except BpfError:
        return "?"
    try:
        return sc.prog_info(fd).name.decode(errors="replace") or "?"
    except BpfError:
        return "?"
    finally:
        _close(fd)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass
