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

__all__ = [
    "ENOTSUPP", "permission_hint", "BpfError", "BpfPermissionError", "BpfNotFoundError", "FeatureNotSupported", "BpfUsageError",
    "ObjectFormatError", "CompileError", "LoadError", "VerifierError", "AttachError", "MapError", "MapKeyError",
    "MapFullError", "ClosedError",
]


# The kernel-internal ENOTSUPP (524) leaks out of bpf(2), e.g. for BPF_PROG_TEST_RUN on a type without it
# or a batch command a map type lacks. Python's errno module does not know it; this is its one definition.
ENOTSUPP = 524


class BpfError(Exception):
    """Root of all bpfkit errors, raised as itself when no subclass fits. ``errno`` is the kernel's
    errno or 0.

    Example::

        try:
            bpfkit.load("prog.bpf.o")
        except bpfkit.BpfError as e:
            print(e, e.errno)
    """

    def __init__(self, message: str, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno

    @classmethod
    def from_errno(cls, err: int, what: str) -> "BpfError":
        """Build the most specific subclass for ``err`` with a message naming ``what``.

        Example::

            BpfError.from_errno(errno.ENOENT, "map 'counts'")   # BpfNotFoundError("map 'counts': No such file ...")
        """
        reason = "operation not supported (ENOTSUPP)" if err == ENOTSUPP else os.strerror(err)
        text = f"{what}: {reason} (errno {err})" if err else what
        if err in (_errno.EPERM, _errno.EACCES):
            return BpfPermissionError(text + "; " + permission_hint(), err)
        if err == _errno.ENOENT:
            return BpfNotFoundError(text, err)
        if err in (_errno.EOPNOTSUPP, _errno.ENOTSUP, _errno.ENOSYS, ENOTSUPP):
            return FeatureNotSupported(text, err)
        if err == _errno.E2BIG and cls is BpfError:
            return MapFullError(text, err)
        return cls(text, err)


def permission_hint() -> str:
    """What to do about an EPERM/EACCES from the kernel: become root when not root; as root, the
    refusal comes from somewhere else, and saying "needs root" would send the reader the wrong way.

    Example::

        permission_hint()   # as root: "refused although this process is root: ..."
    """
    if os.geteuid() != 0:
        return "BPF needs root or CAP_BPF+CAP_PERFMON (CAP_SYS_ADMIN on older kernels)"
    return ("refused although this process is root: a frozen or read-only object, kernel lockdown "
            "(/sys/kernel/security/lockdown), an LSM, or a container or user namespace without "
            "CAP_BPF+CAP_PERFMON/CAP_SYS_ADMIN")


class BpfPermissionError(BpfError, PermissionError):  # type: ignore[misc]  # errno: int vs int|None
    """Raised when the kernel answers EPERM/EACCES: not root (or no CAP_BPF+CAP_PERFMON), or a write to a
    frozen map. Also a :class:`PermissionError`.

    Example::

        m.freeze()
        m[0] = 1   # BpfPermissionError (EPERM): the map is frozen
    """


class BpfNotFoundError(BpfError, LookupError):
    """Raised when a named thing does not exist (ENOENT): BPF object, tracepoint, binary, symbol, map,
    pinned path. Also a :class:`LookupError`.

    Example::

        bpfkit.load("missing.bpf.o")   # BpfNotFoundError: BPF object 'missing.bpf.o' not found
    """


class FeatureNotSupported(BpfError):
    """Raised when this kernel (or its configuration) lacks a feature, e.g. CONFIG_KPROBES;
    ``feature`` names it when known (tests skip on it).

    Example::

        prog.attach_kprobe("do_sys_openat2")   # FeatureNotSupported, e.feature == "kprobes"
    """

    def __init__(self, message: str, errno: int = 0, feature: str = "") -> None:
        super().__init__(message, errno)
        self.feature = feature


class BpfUsageError(BpfError, ValueError):
    """A caller's mistake bpfkit can see before asking the kernel: a bad argument, name or value.

    Example::

        bpfkit.counters.count(["no-such-event"])   # BpfUsageError: unknown perf event ...
    """


class ObjectFormatError(BpfError):
    """Raised when a BPF ELF object, BTF blob or ELF binary could not be parsed.

    Example::

        bpfkit.load(b"not an ELF")   # ObjectFormatError: data is not an ELF file ...
    """


class CompileError(BpfError):
    """Raised when clang fails (the message holds its output) or the toolchain to compile BPF C is missing.

    Example::

        bpfkit.compile("int f(void) { return x; }")   # CompileError: clang failed to compile ...
    """


class LoadError(BpfError):
    """Raised when the kernel refuses to create a program or map while loading an object (not the
    verifier: that is :class:`VerifierError`). ``log`` is the verifier log, if any.

    Example::

        bpfkit.load("prog.bpf.o")   # LoadError if e.g. a map is refused; str(e) has libbpf's reasons
    """

    def __init__(self, message: str, errno: int = 0, log: str = "") -> None:
        super().__init__(message, errno)
        self.log = log


class VerifierError(LoadError):
    """Raised when the verifier rejects a program. ``log`` is the full verifier log,
    ``program`` the program's name.

    Example::

        try:
            bpfkit.load("prog.bpf.o")
        except bpfkit.VerifierError as e:
            print(e.program, e.log)
    """

    def __init__(self, message: str, errno: int = 0, log: str = "", program: str = "") -> None:
        super().__init__(message, errno, log)
        self.program = program


class AttachError(BpfError):
    """Raised when a program cannot be attached to its hook (bad target, offset or missing setup).

    Example::

        prog.attach_uretprobe("/bin/bash", "readline", offset=4)   # AttachError: must be on the entry
    """


class MapError(BpfError):
    """Raised when a map operation fails: wrong key/value size, unsupported for the map type, bad layout.

    Example::

        del array_map[0]   # MapError: array elements always exist; assign 0 or clear()
    """


class MapKeyError(MapError, KeyError):
    """Raised when a key is not in the map. Also a :class:`KeyError`.

    Example::

        hash_map[42]       # MapKeyError: key 42 not in map ...
        hash_map.get(42)   # None instead
    """

    def __str__(self) -> str:  # KeyError quotes its arg; keep our message readable
        return str(self.args[0]) if self.args else ""


class MapFullError(MapError):
    """Raised when an insert finds the map at max_entries (E2BIG).

    Example::

        m = Map.create("hash", "u4", "u8", 2); m[1] = 1; m[2] = 2
        m[3] = 3   # MapFullError: map '' is full (max_entries=2); raise max_entries ...
    """


class ClosedError(BpfError):
    """Raised when an object, map, program, link or counter is used after close().

    Example::

        m.close()
        m[0]   # ClosedError: map 'counts' is closed
    """
