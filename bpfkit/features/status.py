"""One entry point for every feature question: ``status(name)``, ``check(name)``, ``require(name)``,
and ``probe_all()`` (everything, like ``bpftool feature probe``).

Example::

    ok, reason = check("kprobes")       # (False, "... CONFIG_KPROBES ...")
    require("fentry")                   # raises FeatureNotSupported with the reason
"""
from __future__ import annotations

import errno as _errno
from typing import Optional

from .. import _sys as sc
from ..errors import BpfUsageError, FeatureNotSupported
from .attach import attach_status, attach_type_status
from .kernel import KERNEL_FEATURES, kernel_status
from .probe import FeatureStatus, kernel_enum, name_to_id
from .types import helper, helper_id, helper_status, map_type_status, prog_type_status

__all__ = ["status", "check", "require", "probe_all"]

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
            return prog_type_status(name_to_id(rest, sc.PROG_TYPE_NAMES, "prog"))
        if kind == "map" and rest:
            return map_type_status(name_to_id(rest, sc.MAP_TYPE_NAMES, "map"))
        if kind == "helper" and rest:
            ptype, _, hname = rest.rpartition(":")
            try:
                hid = helper_id(hname)
            except BpfUsageError as e:
                return FeatureStatus(name, False, str(e), e.errno)
            st = helper_status(name_to_id(ptype or "kprobe", sc.PROG_TYPE_NAMES, "prog"), hid)
            return FeatureStatus(name, st.ok, st.reason, st.errno)
        if kind == "attach" and rest:
            return attach_status(rest)
    except BpfUsageError as e:
        return FeatureStatus(name, False, str(e), e.errno or _errno.EINVAL)
    return kernel_status(name)


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



def probe_all() -> dict[str, dict[str, bool]]:
    """Everything at once, like ``bpftool feature probe`` (takes ~1 s, then cached).

    Example::

        report = features.probe_all()
        [t for t, ok in report["attach_types"].items() if not ok]
    """
    out: dict[str, dict[str, bool]] = {
        "prog_types": {n: prog_type_status(t).ok for t, n in sc.PROG_TYPE_NAMES.items() if t},
        "map_types": {n: map_type_status(t).ok for t, n in sc.MAP_TYPE_NAMES.items() if t},
        "kernel": {k: status(k).ok for k in KERNEL_FEATURES},
        "attach_types": {k.removeprefix("BPF_").lower(): attach_type_status(k).ok
                         for k in kernel_enum("bpf_attach_type") if not k.startswith("__")},
    }
    helpers = [h.removeprefix("BPF_FUNC_") for h, v in kernel_enum("bpf_func_id").items() if 0 < v
               and not h.startswith("__")]
    out["helpers.kprobe"] = {h: helper(h, "kprobe") for h in helpers}
    return out
