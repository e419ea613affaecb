"""What can be probed, like ``bpftrace -l`` / ``-lv`` and ``stap -l``.

Patterns are ``KIND:...`` with shell globs in every part:

=============================  ============================================================
``tracepoint:CAT:NAME``        tracefs events (``-v``: their fields, from ``format``)
``rawtracepoint:NAME``         the same tracepoints by raw name
``kprobe:FUNC``                kernel functions a kprobe can attach to
``fentry:FUNC``                kernel functions in vmlinux BTF (fentry/fexit targets)
``uprobe:BINARY:FUNC``         functions of an executable or library (``c`` = libc)
``usdt:BINARY:PROVIDER:NAME``  USDT probes of a binary (or of every file of ``pid=``)
``software:NAME``              software perf events; ``hardware:NAME`` hardware ones
=============================  ============================================================

Short kinds work too: ``t``, ``rt``, ``k``, ``f``/``kfunc``, ``u``, ``U``, ``s``, ``h``.

Example::

    bpfkit.probes.list("tracepoint:sched:sched_switch")
    bpfkit.probes.tracepoint_fields("syscalls", "sys_enter_openat")   # see args->filename
    $ bpfkit list -v 'tracepoint:syscalls:sys_enter_open*'   # the CLI: bpfkit.tools.list
"""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..errors import BpfError, BpfNotFoundError, BpfUsageError
from ..tracefs import tracefs_root

__all__ = ["ProbeInfo", "TracepointField", "list_probes", "tracepoint_dtype", "tracepoint_fields"]

_KINDS = {
    "tracepoint": "tracepoint", "t": "tracepoint", "tp": "tracepoint",
    "rawtracepoint": "rawtracepoint", "raw_tracepoint": "rawtracepoint", "rt": "rawtracepoint",
    "raw_tp": "rawtracepoint",
    "kprobe": "kprobe", "k": "kprobe", "kretprobe": "kprobe", "kr": "kprobe",
    "fentry": "fentry", "fexit": "fentry", "kfunc": "fentry", "kretfunc": "fentry", "f": "fentry",
    "uprobe": "uprobe", "u": "uprobe", "uretprobe": "uprobe", "ur": "uprobe",
    "usdt": "usdt", "U": "usdt",
    "software": "software", "s": "software", "hardware": "hardware", "h": "hardware",
}


@dataclass(frozen=True)
class TracepointField:
    """One field of a tracepoint record, as ``format`` describes it.

    ``type`` is the C declaration's type (``const char *``, ``char[16]``, ``__data_loc char[]``),
    ``common`` marks the ``common_*`` header every record starts with.
    """

    name: str
    type: str
    offset: int
    size: int
    signed: bool
    common: bool = False

    @property
    def declaration(self) -> str:
        """The field as C, e.g. ``const char * filename;``."""
        base, _, dims = self.type.partition("[")
        return f"{base} {self.name}{'[' + dims if dims else ''};"


@dataclass(frozen=True)
class ProbeInfo:
    """A probe found by :func:`list_probes`. ``str()`` gives the bpftrace-style name."""

    kind: str
    target: str
    name: str
    fields: tuple[TracepointField, ...] = field(default=(), compare=False)
    args: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.target}:{self.name}" if self.target else f"{self.kind}:{self.name}"


# -- tracepoints ---------------------------------------------------------------

_FIELD = re.compile(r"^\s*field:(?P<decl>.+?);\s*offset:(?P<off>\d+);\s*size:(?P<size>\d+);\s*signed:(?P<sgn>\d+);")
_DECL = re.compile(r"^(?P<type>.*?)\s*\b(?P<name>[A-Za-z_]\w*)\s*(?P<dims>(?:\[[^\]]*\])*)$")


def _events_dir() -> str:
    return os.path.join(tracefs_root(), "events")


def tracepoint_fields(category: str, name: Optional[str] = None, *, common: bool = False) -> list[TracepointField]:
    """Fields of tracepoint ``category:name`` (or one ``"category:name"`` string) from its
    ``format`` file, in record order; ``common=True`` includes the ``common_*`` header.

    Example::

        [f.declaration for f in tracepoint_fields("syscalls:sys_enter_openat")]
        # ['int __syscall_nr;', 'int dfd;', 'const char * filename;', 'int flags;', 'umode_t mode;']
    """
    if name is None:
        category, _, name = category.partition(":")
    path = os.path.join(_events_dir(), category, name, "format")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        raise BpfNotFoundError(f"tracepoint {category}:{name} not found; list them with "
                               f"bpfkit.probes.list('tracepoint:{category}:*')") from None
    except PermissionError:
        raise BpfError(f"cannot read {path}: reading tracepoint formats needs root") from None
    out = []
    for line in text.splitlines():
        m = _FIELD.match(line)
        if not m:
            continue
        decl = m.group("decl").strip()
        d = _DECL.match(decl)
        ftype, fname = (d.group("type") + d.group("dims"), d.group("name")) if d else (decl, decl)
        is_common = fname.startswith("common_")
        if is_common and not common:
            continue
        out.append(TracepointField(fname, ftype.strip(), int(m.group("off")), int(m.group("size")),
                                   m.group("sgn") == "1", is_common))
    return out


def tracepoint_dtype(category: str, name: Optional[str] = None) -> np.dtype:
    """A numpy dtype for the raw record of a tracepoint (the ``ctx`` a tracepoint program gets):
    integers by size and sign, ``char[N]`` as ``S{N}``, other arrays as sub-arrays, pointers and
    ``__data_loc`` fields as unsigned integers.

    Example::

        dt = tracepoint_dtype("sched:sched_switch"); dt["prev_comm"]   # dtype('S16')
    """
    fields = tracepoint_fields(category, name, common=True)
    names, formats, offsets = [], [], []
    for f in fields:
        base, _, dims = f.type.partition("[")
        n_elems = [int(x) for x in re.findall(r"\[(\d+)\]", "[" + dims)] if dims else []
        if n_elems and "char" in base and "*" not in base and "__data_loc" not in base:
            fmt: object = f"S{f.size}"
        elif n_elems and "__data_loc" not in base:
            total = int(np.prod(n_elems))
            elem = f.size // total if total else f.size
            fmt = (np.dtype(f"{'i' if f.signed else 'u'}{elem}") if elem in (1, 2, 4, 8) else np.dtype(f"V{elem}"),
                   tuple(n_elems))
        elif f.size in (1, 2, 4, 8):
            fmt = f"{'i' if f.signed else 'u'}{f.size}"
        else:
            fmt = f"V{f.size}"
        names.append(f.name)
        formats.append(fmt)
        offsets.append(f.offset)
    size = max((f.offset + f.size for f in fields), default=0)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": size})


def _tracepoints(cat_pat: str, name_pat: str) -> list[tuple[str, str]]:
    root = _events_dir()
    out = []
    for cat in sorted(os.listdir(root)):
        if not fnmatch.fnmatchcase(cat, cat_pat) or not os.path.isdir(os.path.join(root, cat)):
            continue
        for name in sorted(os.listdir(os.path.join(root, cat))):
            if fnmatch.fnmatchcase(name, name_pat) and os.path.isdir(os.path.join(root, cat, name)):
                out.append((cat, name))
    return out


# -- the listing -----------------------------------------------------------------

def _split(rest: str, n: int) -> list[str]:
    """Split ``rest`` on ':' into n parts, padding with '*' (a binary path may not contain ':')."""
    parts = rest.split(":")
    if len(parts) > n:  # extra colons belong to the first part (e.g. none in practice) - join them
        parts = [":".join(parts[: len(parts) - n + 1])] + parts[len(parts) - n + 1:]
    return parts + ["*"] * (n - len(parts))


def _binary_targets(pattern: str, pid: Optional[int]) -> list[str]:
    from .elf import resolve_library
    from .procfs import mapped_files

    if pid is not None:
        files = mapped_files(pid)
        if pattern in ("", "*"):
            return files
        return [p for p in files if fnmatch.fnmatchcase(p, pattern) or fnmatch.fnmatchcase(os.path.basename(p), pattern)
                or os.path.realpath(p) == _try_resolve(pattern)]
    if not pattern or any(c in pattern for c in "*?["):
        raise BpfUsageError("give a binary (path, program name or library like 'c'), or pid= to search a process")
    return [resolve_library(pattern)]


def _try_resolve(name: str) -> str:
    from .elf import resolve_library

    try:
        return resolve_library(name)
    except BpfError:
        return ""


def list_probes(pattern: str = "tracepoint:*", *, pid: Optional[int] = None, verbose: bool = False) -> list[ProbeInfo]:
    """Probes matching ``pattern`` (see the module docs); ``verbose`` adds tracepoint fields and
    USDT argument specs. ``pid`` searches the binaries a process has mapped (uprobe/usdt).

    Example::

        [str(p) for p in list_probes("tracepoint:sched:sched_*")]
        list_probes("usdt:*", pid=1234)
    """
    kind_s, sep, rest = pattern.partition(":")
    if not sep:
        kind_s, rest = "tracepoint", pattern if ":" in pattern else f"*:{pattern}"
    kind = _KINDS.get(kind_s)
    if kind is None and sep and rest.count(":") == 0 and _tracepoints(kind_s, "*"):
        kind, rest = "tracepoint", pattern  # "sched:sched_switch", as perf spells tracepoints
    if kind is None:
        raise BpfUsageError(f"unknown probe kind {kind_s!r} in {pattern!r}; use one of "
                         "tracepoint, rawtracepoint, kprobe, fentry, uprobe, usdt, software, hardware")
    out: list[ProbeInfo] = []
    if kind == "tracepoint":
        cat, name = _split(rest, 2)
        for c, n in _tracepoints(cat, name):
            fields = tuple(tracepoint_fields(c, n)) if verbose else ()
            out.append(ProbeInfo("tracepoint", c, n, fields))
    elif kind == "rawtracepoint":
        for c, n in _tracepoints("*", rest or "*"):
            out.append(ProbeInfo("rawtracepoint", "", n))
        out = sorted(set(out), key=lambda p: p.name)
    elif kind == "kprobe":
        from .kprobe import kernel_functions

        out = [ProbeInfo("kprobe", "", f) for f in kernel_functions(rest or "*")]
    elif kind == "fentry":
        out = [ProbeInfo("fentry", "", f) for f in _btf_functions(rest or "*")]
    elif kind == "uprobe":
        from .elf import list_symbols

        binary, func = _split(rest, 2)
        for path in _binary_targets(binary, pid):
            try:
                syms = list_symbols(path, func)
            except BpfError:
                continue  # e.g. a mapped file that is not ELF
            names = list(dict.fromkeys(s.name for s in syms))
            out.extend(ProbeInfo("uprobe", path, n) for n in names)
    elif kind == "usdt":
        from .usdt_spec import read_usdt_notes

        binary, prov, name = _split(rest, 3)
        for path in _binary_targets(binary, pid):
            try:
                notes = read_usdt_notes(path)
            except BpfError:
                continue
            seen = set()
            for note in notes:
                key = (note.provider, note.name)
                if key in seen or not (fnmatch.fnmatchcase(note.provider, prov) and fnmatch.fnmatchcase(note.name, name)):
                    continue
                seen.add(key)
                out.append(ProbeInfo("usdt", path, f"{note.provider}:{note.name}", args=note.args if verbose else ""))
    else:
        from .perf_event import HARDWARE_EVENTS, SOFTWARE_EVENTS

        table = SOFTWARE_EVENTS if kind == "software" else HARDWARE_EVENTS
        out = [ProbeInfo(kind, "", n) for n in table if fnmatch.fnmatchcase(n, rest or "*")]
    return out


def _btf_functions(pattern: str) -> list[str]:
    from ..btf import Kind, vmlinux_btf

    rx = re.compile(fnmatch.translate(pattern))
    return sorted({t.name for t in vmlinux_btf() if t.kind == Kind.FUNC and rx.match(t.name)})
