"""One exception hierarchy for everything bpfkit raises.

Every error carries ``errno`` (0 when no syscall was involved) so callers can
still branch on it, and a message that says what to do next.

Example::

    try:
        obj = bpfkit.load("prog.bpf.o")
    except bpfkit.VerifierError as e:
        print(e.log)
"""
from __future__ import annotations

import errno as _errno
import os


# the kernel-internal ENOTSUPP (524) leaks out of bpf(2), e.g. for BPF_PROG_TEST_RUN on a type without it
_ENOTSUPP_KERNEL = 524


class BpfError(Exception):
    """Root of all bpfkit errors. ``errno`` is the kernel's errno or 0."""

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno

    @classmethod
    def from_errno(cls, err: int, what: str) -> "BpfError":
        """Build the most specific subclass for ``err`` with a message naming ``what``."""
        reason = "operation not supported (ENOTSUPP)" if err == _ENOTSUPP_KERNEL else os.strerror(err)
        text = f"{what}: {reason} (errno {err})" if err else what
        if err in (_errno.EPERM, _errno.EACCES):
            return BpfPermissionError(
                text + "; BPF needs root or CAP_BPF+CAP_PERFMON (CAP_SYS_ADMIN on older kernels)", err
            )
        if err == _errno.ENOENT:
            return BpfNotFoundError(text, err)
        if err in (_errno.EOPNOTSUPP, _errno.ENOTSUP, _errno.ENOSYS, _ENOTSUPP_KERNEL):
            return FeatureNotSupported(text, err)
        if err == _errno.E2BIG and cls is BpfError:
            return MapFullError(text, err)
        return cls(text, err)


class BpfPermissionError(BpfError, PermissionError):  # type: ignore[misc]  # errno: int vs int|None
    """The kernel refused for lack of privilege (EPERM/EACCES)."""


class BpfNotFoundError(BpfError, LookupError):
    """A named thing does not exist: tracepoint, binary, symbol, map, pinned path."""


class FeatureNotSupported(BpfError):
    """This kernel (or its configuration) lacks a feature, e.g. CONFIG_KPROBES."""

    def __init__(self, message: str, errno: int = 0, feature: str = "") -> None:
        super().__init__(message, errno)
        self.feature = feature


class BpfUsageError(BpfError, ValueError):
    """A caller's mistake bpfkit can see before asking the kernel: a bad argument, name or value.

    Example::

        bpfkit.perf.count(["no-such-event"])   # BpfUsageError: unknown perf event ...
    """


class ObjectFormatError(BpfError):
    """A BPF ELF object, BTF blob or ELF binary could not be parsed."""


class CompileError(BpfError):
    """clang failed, or the toolchain needed to compile BPF C is missing."""


class LoadError(BpfError):
    """The kernel refused to create a program or map while loading an object."""

    def __init__(self, message: str, errno: int = 0, log: str = "") -> None:
        super().__init__(message, errno)
        self.log = log


class VerifierError(LoadError):
    """The verifier rejected a program. ``log`` is the full verifier log,
    ``program`` the program's name."""

    def __init__(self, message: str, errno: int = 0, log: str = "", program: str = "") -> None:
        super().__init__(message, errno, log)
        self.program = program


class AttachError(BpfError):
    """A program could not be attached to its hook."""


class MapError(BpfError):
    """A map operation failed (wrong size, unsupported for the map type...)."""


class MapKeyError(MapError, KeyError):
    """The key is not in the map."""

    def __str__(self) -> str:  # KeyError quotes its arg; keep our message readable
        return str(self.args[0]) if self.args else ""


class MapFullError(MapError):
    """The map reached max_entries (E2BIG)."""


class ClosedError(BpfError):
    """The object, map, program or link was already closed."""
