"""uprobes and uretprobes through the uprobe PMU (perf_event_open + BPF link).

The probe point is (file, file offset); the symbol → offset resolution lives in
:mod:`bpfkit.binaries.elf`.

Glob patterns attach every matching function: as one uprobe_multi link (Linux 6.6+) when the
program was loaded for it (``SEC("uprobe.multi/...")``), else one uprobe per function.

Example::

    with prog.attach_uprobe("/usr/bin/bash", "readline"):
        ...
    with prog.attach_uretprobe("c", "malloc", pid=1234):   # libc, one process
        ...
    with prog.attach_uprobe("c", "pthread_mutex_*lock"):   # several functions
        ...
"""
from __future__ import annotations

import ctypes
import errno
import os
import re
from typing import Optional, Sequence, Union

from .. import features
from .. import _sys as sc
from ..errors import AttachError, BpfError, BpfNotFoundError, BpfUsageError
from ..binaries import function_at, list_symbols, load_segments, resolve_library, symbol_offset
from .kprobe import is_pattern
from .link import Link, group_links, new_link, open_perf_event_owned, perf_event_link
from ..tracefs import pmu_retprobe_bit, pmu_type

__all__ = ["matching_functions", "attach_uprobe", "attach_uprobe_offset", "attach_uprobe_multi"]

# ref_ctr_offset (USDT semaphores) goes in the upper half of config
_REF_CTR_SHIFT = 32
_PLUS = re.compile(r"\+(0[xX][0-9a-fA-F]+|\d+)$")


def matching_functions(path: str, pattern: str) -> list[tuple[str, int]]:
    """(name, file offset) of the functions of ``path`` matching glob ``pattern``, one per offset
    (aliases such as ``__libc_malloc``/``malloc`` share one), in address order.

    Example::

        matching_functions("/usr/lib/x86_64-linux-gnu/libc.so.6", "pthread_mutex_*lock")
    """
    seen: dict[int, str] = {}
    for sym in list_symbols(path, pattern):
        if not sym.is_ifunc:
            seen.setdefault(sym.offset, sym.name)
    return [(name, off) for off, name in seen.items()]


def attach_uprobe(prog_fd: int, binary: str, symbol: Union[str, int], *, offset: int = 0,
                  pid: int = -1, retprobe: bool = False, ref_ctr_offset: int = 0,
                  cookie: int = 0, multi: bool = False) -> Link:
    """Attach to ``symbol`` (a name, ``"name+0x10"``, a glob pattern, or an int virtual address) in
    ``binary`` (a path, an executable on $PATH, or a library short name like ``"c"``). ``pid`` -1
    traces every process that maps the file. ``multi`` says the program was loaded as uprobe_multi
    (``SEC("uprobe.multi")``): the functions are then attached as one uprobe_multi link.

    A return probe (``retprobe=True``) must sit on a function's first instruction: with an offset
    the kernel would hijack whatever ``*sp`` holds there as the return address and crash the
    traced process, so that raises AttachError.

    Example::

        link = attach_uprobe(prog.fd, "c", "malloc", pid=1234)
        link = attach_uprobe(prog.fd, "/usr/bin/bash", "readline", retprobe=True)
        link = attach_uprobe(prog.fd, "./app", "handle_*", cookie=7)    # one MultiLink
    """
    pid = sc.check_pid(pid)
    sc.check_cstr("binary", os.fspath(binary))
    offset = sc.check_u64("offset", offset, hint="an offset from the symbol, in bytes")
    cookie = sc.check_u64("cookie", cookie)
    ref_ctr_offset = sc.check_u64("ref_ctr_offset", ref_ctr_offset)
    if isinstance(symbol, int) and not isinstance(symbol, bool):
        sc.check_u64("symbol", symbol, hint="a virtual address as nm prints it")
    path = resolve_library(binary)
    kind = "uretprobe" if retprobe else "uprobe"
    on = f" pid {pid}" if pid >= 0 else ""
    if isinstance(symbol, str) and is_pattern(symbol):
        if offset:
            raise BpfUsageError(f"{kind} {path}:{symbol}: offset= does not apply to a pattern; "
                                "probe one function with 'name+0x10' instead")
        funcs = matching_functions(path, symbol)
        if not funcs:
            raise BpfNotFoundError(f"no function of {path} matches {symbol!r} "
                                   f"(see bpfkit.probes.list('uprobe:{path}:*'))")
    else:
        spec = symbol if isinstance(symbol, str) else hex(symbol)
        what = f"{kind} {path}:{spec}" + (f"+{offset:#x}" if offset else "") + on
        file_off = symbol_offset(path, spec, offset)
        if retprobe:
            _check_function_entry(path, spec, offset, file_off, what)
        if not multi:
            return attach_uprobe_offset(prog_fd, path, file_off, pid=pid, retprobe=retprobe,
                                        ref_ctr_offset=ref_ctr_offset, cookie=cookie, what=what)
        funcs = [(spec, file_off)]
    desc = f"{kind} {path}:{symbol} ({len(funcs)} functions){on}"
    if multi:
        return attach_uprobe_multi(prog_fd, path, [off for _, off in funcs], retprobe=retprobe, pid=pid,
                                   cookies=[cookie] * len(funcs) if cookie else None, description=desc)
    return group_links(
        lambda f: attach_uprobe_offset(prog_fd, path, f[1], pid=pid, retprobe=retprobe, cookie=cookie,
                                       what=f"{kind} {path}:{f[0]}{on}"), funcs, desc)


def _check_function_entry(path: str, spec: str, offset: int, file_off: int, what: str) -> None:
    """Refuse a return probe that is not on a function's first instruction."""
    m = _PLUS.search(spec)
    extra = offset + (int(m.group(1), 0) if m else 0)
    func = function_at(path, file_off)
    if func is not None and func.offset != file_off:
        extra = extra or file_off - func.offset
        where = f"{func.name}+{file_off - func.offset:#x}"
    else:
        where = f"{spec}+{extra:#x}"
    if extra:
        raise AttachError(f"{what}: a return probe must be on the function's entry, not at {where}: past the "
                          "entry the kernel would take whatever *sp holds for the return address and corrupt "
                          "the traced process. Attach the uretprobe to the function itself and an uprobe "
                          "at the offset.", errno.EINVAL)


def _check_in_code(path: str, file_offset: int, what: str) -> None:
    """Refuse a file offset outside every executable PT_LOAD segment: the ELF headers, data, or
    past the end. The kernel would take it, and the probe would never fire or would patch data."""
    segs = [s for s in load_segments(path) if s.executable]
    if any(s.offset <= file_offset < s.offset + s.filesz for s in segs):
        return
    where = ", ".join(f"{s.offset:#x}-{s.offset + s.filesz:#x}" for s in segs) or "none"
    raise BpfUsageError(f"{what}: offset {file_offset:#x} is not code: it is outside every executable "
                        f"segment of {path} (file offsets {where}); probe a function, 'name+0x10', or an "
                        "address nm prints", errno.EINVAL)


def attach_uprobe_offset(prog_fd: int, path: str, file_offset: int, *, pid: int = -1,
                         retprobe: bool = False, ref_ctr_offset: int = 0, cookie: int = 0,
                         what: Optional[str] = None) -> Link:
    """Attach at a raw file offset of ``path`` (no symbol lookup, no entry check).

    Example::

        attach_uprobe_offset(prog.fd, "/usr/lib/libfoo.so", 0x1a40, pid=1234)
    """
    pid = sc.check_pid(pid)
    file_offset = sc.check_u64("offset", file_offset)
    cookie = sc.check_u64("cookie", cookie)
    ref_ctr_offset = sc.check_u64("ref_ctr_offset", ref_ctr_offset)
    kind = "uretprobe" if retprobe else "uprobe"
    what = what or f"{kind} {path}@{file_offset:#x}" + (f" pid {pid}" if pid >= 0 else "")
    _check_in_code(path, file_offset, what)
    cpath = ctypes.create_string_buffer(os.fsencode(os.path.realpath(path)))
    config = (1 << pmu_retprobe_bit("uprobe")) if retprobe else 0
    config |= ref_ctr_offset << _REF_CTR_SHIFT
    attr = sc.PerfEventAttr(type=pmu_type("uprobe"), config=config, config1=ctypes.addressof(cpath),
                            config2=file_offset, sample_period=1, wakeup_events=1)
    return perf_event_link(prog_fd, lambda: open_perf_event_owned(attr, pid=pid, cpu=0 if pid < 0 else -1, what=what),
                           what, cookie, "attach_uprobe")


def attach_uprobe_multi(prog_fd: int, binary: str, offsets: Sequence[int], *, retprobe: bool = False,
                        pid: int = -1, ref_ctr_offsets: Optional[Sequence[int]] = None,
                        cookies: Optional[Sequence[int]] = None, description: Optional[str] = None) -> Link:
    """One uprobe_multi link (BPF_TRACE_UPROBE_MULTI) at file ``offsets`` of ``binary``. The
    program must have been loaded with that attach type.

    Example::

        offs = [off for _, off in matching_functions(path, "handle_*")]
        link = attach_uprobe_multi(prog.fd, path, offs, pid=1234)
    """
    pid = sc.check_pid(pid)
    offsets = [sc.check_u64(f"offsets[{i}]", o) for i, o in enumerate(offsets)]
    if cookies is not None:
        cookies = [sc.check_u64(f"cookies[{i}]", c) for i, c in enumerate(cookies)]
    if ref_ctr_offsets is not None:
        ref_ctr_offsets = [sc.check_u64(f"ref_ctr_offsets[{i}]", r) for i, r in enumerate(ref_ctr_offsets)]
    if not offsets:
        raise BpfUsageError("offsets=[] would attach to nothing: give the file offsets to probe")
    path = resolve_library(binary)
    kind = "uretprobe.multi" if retprobe else "uprobe.multi"
    what = description or f"{kind} {path} ({len(offsets)} offsets)"
    features.require("uprobe_multi", what)
    n = len(offsets)
    for extra, label in ((ref_ctr_offsets, "ref_ctr_offsets"), (cookies, "cookies")):
        if extra is not None and len(extra) != n:
            raise AttachError(f"{what}: {len(extra)} {label} for {n} offsets")
    cpath = ctypes.create_string_buffer(os.fsencode(path))
    offs = (ctypes.c_uint64 * n)(*offsets)
    refs = (ctypes.c_uint64 * n)(*ref_ctr_offsets) if ref_ctr_offsets else None
    cks = (ctypes.c_uint64 * n)(*cookies) if cookies else None
    flags = sc.BPF_F_UPROBE_MULTI_RETURN if retprobe else 0
    # uprobe_multi: {u64 path; u64 offsets; u64 ref_ctr_offsets; u64 cookies; u32 cnt; u32 flags; u32 pid}
    words = (ctypes.addressof(cpath), ctypes.addressof(offs), ctypes.addressof(refs) if refs else 0,
             ctypes.addressof(cks) if cks else 0, n | (flags << 32), max(pid, 0))
    try:
        return new_link(lambda: sc.link_create_owned(prog_fd, 0, sc.BPF_TRACE_UPROBE_MULTI, extra=words, what=what), what)
    except BpfError as e:
        if e.errno == 22:
            raise AttachError(f"{what}: the kernel refused (EINVAL): load the program as uprobe_multi "
                              "(SEC(\"uprobe.multi\")) or attach without multi", e.errno) from None
        raise
