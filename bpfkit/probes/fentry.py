"""fentry / fexit / fmod_ret (and lsm): BPF trampolines on a kernel function.

The target is fixed when the program loads (libbpf resolves ``SEC("fentry/FUNC")`` to a vmlinux
BTF id); attaching is a BPF_RAW_TRACEPOINT_OPEN without a name. Kernels that cannot build
trampolines refuse at load time (EPERM/ENOTSUPP, as on this project's CI VM) or at attach time;
both become FeatureNotSupported with the reason :mod:`bpfkit.features` found.

Example::

    spec = bpfkit.open("prog.bpf.o")          # SEC("fexit/do_unlinkat")
    with spec.load() as obj, obj.progs.on_exit.attach_fentry():
        ...
"""
from __future__ import annotations

import errno
from typing import Optional

from .. import features
from .. import syscall as sc
from ..errors import AttachError, BpfError, BpfNotFoundError, FeatureNotSupported
from .link import Link

_TRAMPOLINE_KINDS = ("fentry", "fexit", "fmod_ret", "fentry.s", "fexit.s", "fmod_ret.s", "freplace")
_REFUSALS = (errno.EPERM, errno.EOPNOTSUPP, 524)  # 524: the kernel's internal ENOTSUPP


def feature_for_section(section: str) -> Optional[str]:
    """The :mod:`bpfkit.features` name a BTF-attached program of ``section`` depends on.

    Example::

        feature_for_section("fexit/do_unlinkat")   # 'fexit'
        feature_for_section("kprobe/x")           # None
    """
    kind = section.partition("/")[0]
    if kind in _TRAMPOLINE_KINDS:
        return "fexit" if kind.startswith("fexit") else "fentry"
    if kind == "tp_btf":
        return "tp_btf"
    if kind.startswith("lsm"):
        return "prog:lsm"
    return None


def load_failure(section: str, program: str, err: int) -> Optional[FeatureNotSupported]:
    """If program ``program`` of ``section`` failed to load with ``err`` because the kernel lacks
    the feature, the FeatureNotSupported to raise instead of a bare errno (None otherwise).

    Example::

        err = load_failure("fentry/vfs_read", "on_read", errno.EPERM)
        if err is not None:
            raise err
    """
    feature = feature_for_section(section)
    if feature is None or err not in _REFUSALS:
        return None
    ok, reason = features.check(feature)
    if ok:
        return None
    return FeatureNotSupported(f"program {program!r} (SEC({section!r})) cannot load: {reason}", err,
                               feature=feature.split(":")[-1])


def attach_fentry(prog_fd: int, section: str, name: str = "") -> Link:
    """Attach a loaded fentry/fexit/fmod_ret/lsm/tp_btf program to the target it was loaded for.

    Example::

        link = attach_fentry(prog.fd, "fentry/do_unlinkat", "on_unlink")
    """
    what = f"{section} ({name})" if name else section
    try:
        return Link(sc.raw_tracepoint_open(prog_fd, None, what=what), what)
    except BpfError as e:
        if isinstance(e, BpfNotFoundError):
            raise
        feature = feature_for_section(section)
        if feature is not None and e.errno in _REFUSALS:
            ok, reason = features.check(feature)
            if not ok:
                raise FeatureNotSupported(f"cannot attach {what}: {reason}", e.errno,
                                          feature=feature.split(":")[-1]) from None
        raise AttachError(f"cannot attach {what}: {e}", e.errno) from None
