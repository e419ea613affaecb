"""kprobes and kretprobes: the kprobe PMU (perf_event_open + BPF link) and kprobe_multi links.

A kprobe is a perf event of the ``kprobe`` PMU whose ``config1`` points at a function name (plus
``config2`` = offset) or, with ``config1`` = 0, whose ``config2`` is a kernel address. Wildcards
resolve against the functions ftrace can patch (``available_filter_functions``, or the text
symbols of ``/proc/kallsyms`` where that file is not readable) and attach as one kprobe_multi link
when the program was loaded for it (``SEC("kprobe.multi/...")``), else one kprobe per function.

Example::

    with prog.attach_kprobe("do_unlinkat"):
        ...
    with prog.attach_kretprobe("vfs_*"):           # many functions, one context manager
        ...
"""
from __future__ import annotations

import ctypes
import io
import errno
import fnmatch
import platform
import re
from functools import lru_cache
from typing import Optional, Sequence, Union

from .. import features
from .. import _sys as sc
from ..errors import AttachError, BpfError, BpfNotFoundError, BpfUsageError
from .link import Link, group_links, new_link, perf_event_link
from ..tracefs import available_filter_functions, pmu_retprobe_bit, pmu_type

__all__ = ["is_pattern", "kernel_functions", "syscall_function", "attach_kprobe", "attach_kprobe_multi"]

_WILDCARD = re.compile(r"[*?\[]")

# Prefix of the syscall entry points, as ``SEC("ksyscall/NAME")`` needs them.
_SYSCALL_PREFIX = {"x86_64": "__x64_sys_", "aarch64": "__arm64_sys_", "s390x": "__s390x_sys_",
                   "riscv64": "__riscv_sys_", "ppc64le": "__powerpc_sys_"}


def is_pattern(name: str) -> bool:
    """True if ``name`` has glob characters.

    Example::

        is_pattern("vfs_*"), is_pattern("vfs_read")   # (True, False)
    """
    return bool(_WILDCARD.search(name))


def _read_lines(path: str) -> Optional[list[str]]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return None


@lru_cache(maxsize=1)
def _traceable_functions() -> tuple[tuple[str, ...], str]:
    """Kernel functions a kprobe can attach to, and where the list came from."""
    ftrace = available_filter_functions()
    if ftrace is not None:
        return tuple(sorted(ftrace)), "available_filter_functions"
    # Not readable (no tracefs, or a locked-down tracefs): fall back to the text symbols of
    # kallsyms, which is what libbpf does too. It over-approximates (notrace functions included).
    names = set()
    for ln in _read_lines("/proc/kallsyms") or []:
        parts = ln.split()
        if len(parts) >= 3 and parts[1] in ("t", "T") and not parts[2].startswith("__pfx_"):
            names.add(parts[2])
    return tuple(sorted(names)), "/proc/kallsyms"


def kernel_functions(pattern: str = "*") -> list[str]:
    """Kernel functions matching the glob ``pattern`` that kprobes can attach to.

    Example::

        kernel_functions("vfs_*")
    """
    names, _ = _traceable_functions()
    if not is_pattern(pattern):
        return [pattern] if pattern in set(names) else []
    rx = re.compile(fnmatch.translate(pattern))
    return [n for n in names if rx.match(n)]


@lru_cache(maxsize=1)
def _syscall_prefix() -> str:
    # kallsyms, not available_filter_functions: ftrace lists one name per address, and on some
    # kernels __x64_sys_getpid is an alias it lists as __do_sys_getpid.
    arch = _SYSCALL_PREFIX.get(platform.machine(), "")
    if arch:
        for ln in _read_lines("/proc/kallsyms") or []:
            if ln.endswith(f" {arch}getpid") or ln.endswith(f" {arch}read"):
                return arch
    return "sys_"


def syscall_function(name: str) -> str:
    """The kernel function behind syscall ``name`` (``"openat"`` -> ``"__x64_sys_openat"``), as
    libbpf's ``SEC("ksyscall/NAME")`` resolves it.

    Example::

        syscall_function("openat")   # '__x64_sys_openat' on x86-64
    """
    return _syscall_prefix() + name


def _not_found(func: str, source: str) -> BpfNotFoundError:
    return BpfNotFoundError(
        f"kernel function {func!r} cannot be kprobed: it does not exist, is inlined, static and renamed "
        f"(e.g. {func}.isra.0), or is on the kprobe blacklist; list candidates with "
        f"bpfkit.probes.list('kprobe:{func}*') (from {source})", errno.ENOENT)


def attach_kprobe(prog_fd: int, func: Union[str, int], *, offset: int = 0, retprobe: bool = False,
                  cookie: int = 0, multi: bool = False) -> Link:
    """Attach a kprobe program to kernel function ``func`` (a name, ``"name+0x10"``, a glob
    pattern, or an int address). ``multi`` says the program was loaded as kprobe_multi
    (``SEC("kprobe.multi")``); patterns then become a single kprobe_multi link, else one kprobe
    per function.

    Raises FeatureNotSupported naming CONFIG_KPROBES on kernels without kprobes (before looking
    the function up), and AttachError for a kretprobe with an offset: a return probe only works
    on a function's entry.

    Example::

        link = attach_kprobe(prog.fd, "do_unlinkat")
        link = attach_kprobe(prog.fd, "vfs_read", retprobe=True, cookie=1)
        link = attach_kprobe(prog.fd, "tcp_v4_*")              # one kprobe per function
    """
    offset = sc.check_u64("offset", offset)
    cookie = sc.check_u64("cookie", cookie)
    if isinstance(func, str):
        sc.check_cstr("kernel function name", func)
    else:
        sc.check_u64("func", func, lo=1, hint="a kernel address as /proc/kallsyms lists it")
    kind = "kretprobe" if retprobe else "kprobe"
    pattern = isinstance(func, str) and is_pattern(func)
    if isinstance(func, str) and not pattern:
        name, plus, extra = func.partition("+")
        if plus:
            try:
                func, offset = name, offset + int(extra, 0)
            except ValueError:
                raise BpfUsageError(f"{kind} {func!r}: expected FUNCTION or FUNCTION+OFFSET") from None
    if (pattern or multi) and offset:
        raise BpfUsageError(f"{kind} {func}: offsets do not apply to patterns or kprobe_multi links; probe one "
                            "function with 'name+0x10' from a plain SEC(\"kprobe\") program instead")
    if retprobe and offset:
        where = f"{func:#x}" if isinstance(func, int) else str(func)
        raise AttachError(f"{kind} {where}+{offset:#x}: a return probe must be on the function's entry (the "
                          "kernel refuses kretprobes at an offset); use a kretprobe on the function and a "
                          "kprobe at the offset", errno.EINVAL)
    if isinstance(func, str) and (pattern or multi):
        features.require("kprobe_multi" if multi else "kprobes", f"{kind}{'.multi' if multi else ''} {func}")
        funcs = kernel_functions(func)
        if not funcs:
            raise _not_found(func, _traceable_functions()[1])
        if multi:
            return attach_kprobe_multi(prog_fd, funcs, retprobe=retprobe, description=f"{kind}.multi {func}")
        return group_links(lambda f: attach_kprobe(prog_fd, f, retprobe=retprobe, cookie=cookie), funcs,
                           f"{kind} {func} ({len(funcs)} functions)")
    what = f"{kind} {func:#x}" if isinstance(func, int) else f"{kind} {func}" + (f"+{offset:#x}" if offset else "")
    features.require("kprobes", what)
    config = (1 << pmu_retprobe_bit("kprobe")) if retprobe else 0
    name_buf = None
    if isinstance(func, int):
        config1, config2 = 0, func + offset
    else:
        name_buf = ctypes.create_string_buffer(func.encode())
        config1, config2 = ctypes.addressof(name_buf), offset
    attr = sc.PerfEventAttr(type=pmu_type("kprobe"), config=config, config1=config1, config2=config2,
                            sample_period=1, wakeup_events=1)
    def open_fd() -> io.FileIO:
        try:
            return sc.perf_event_open_owned(attr, pid=-1, cpu=0, what=what)
        except BpfError as e:
            if e.errno in (errno.ENOENT, errno.EINVAL) and isinstance(func, str):
                raise _not_found(func, _traceable_functions()[1]) from None
            raise

    link = perf_event_link(prog_fd, open_fd, what, cookie, "attach_kprobe")
    del name_buf  # the kernel has copied the name
    return link


def attach_kprobe_multi(prog_fd: int, funcs: Union[str, Sequence[str]], *, retprobe: bool = False,
                        cookies: Optional[Sequence[int]] = None, description: Optional[str] = None) -> Link:
    """One kprobe_multi link (BPF_TRACE_KPROBE_MULTI, Linux 5.18+ with CONFIG_FPROBE) on every
    function in ``funcs`` (a list or a glob pattern). The program must have been loaded with
    that attach type (``SEC("kprobe.multi/...")`` or ``SEC("kretprobe.multi/...")``).

    Example::

        link = attach_kprobe_multi(prog.fd, "vfs_*")
        link = attach_kprobe_multi(prog.fd, ["vfs_read", "vfs_write"], cookies=[1, 2], retprobe=True)
    """
    if cookies is not None:
        cookies = [sc.check_u64(f"cookies[{i}]", c) for i, c in enumerate(cookies)]
    kind = "kretprobe.multi" if retprobe else "kprobe.multi"
    if isinstance(funcs, str):
        pattern = funcs
        features.require("kprobe_multi", description or f"{kind} {pattern}")
        funcs = kernel_functions(pattern)
        if not funcs:
            raise _not_found(pattern, _traceable_functions()[1])
    what = description or f"{kind} ({len(funcs)} functions)"
    features.require("kprobe_multi", what)
    names = [ctypes.create_string_buffer(f.encode()) for f in funcs]
    syms = (ctypes.c_uint64 * len(names))(*(ctypes.addressof(n) for n in names))
    cks = (ctypes.c_uint64 * len(names))(*(cookies or ())) if cookies else None
    if cookies and len(cookies) != len(names):
        raise AttachError(f"{what}: {len(cookies)} cookies for {len(names)} functions")
    flags = sc.BPF_F_KPROBE_MULTI_RETURN if retprobe else 0
    # kprobe_multi: {u32 flags; u32 cnt; u64 syms; u64 addrs; u64 cookies}
    words = (flags | (len(names) << 32), ctypes.addressof(syms), 0, ctypes.addressof(cks) if cks else 0)
    try:
        return new_link(lambda: sc.link_create_owned(prog_fd, 0, sc.BPF_TRACE_KPROBE_MULTI, extra=words, what=what), what)
    except BpfError as e:
        if e.errno == errno.EINVAL:
            raise AttachError(f"{what}: the kernel refused (EINVAL): load the program as kprobe_multi "
                              "(SEC(\"kprobe.multi/...\")) or attach one function at a time", e.errno) from None
        if e.errno in (errno.ENOENT, errno.ESRCH):
            raise BpfNotFoundError(f"{what}: a function in the list cannot be kprobed ({e})", e.errno) from None
        raise
