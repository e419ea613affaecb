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

from .. import _sys as sc
from ..errors import AttachError, BpfError, BpfNotFoundError
from ..features import feature_for_section, load_failure, refusal
from .link import Link, new_link

__all__ = ["attach_fentry", "feature_for_section", "load_failure"]


def attach_fentry(prog_fd: int, section: str, name: str = "") -> Link:
    """Attach a loaded fentry/fexit/fmod_ret/lsm/tp_btf program to the target it was loaded for.

    Example::

        link = attach_fentry(prog.fd, "fentry/do_unlinkat", "on_unlink")
    """
    what = f"{section} ({name})" if name else section
    try:
        return new_link(lambda: sc.raw_tracepoint_open_owned(prog_fd, None, what=what), what)
    except BpfError as e:
        if isinstance(e, BpfNotFoundError):
            raise
        unsupported = refusal(section, e.errno, f"cannot attach {what}")
        if unsupported is not None:
            raise unsupported from None
        raise AttachError(f"cannot attach {what}: {e}", e.errno) from None
