"""What can be probed, like ``bpftrace -l`` / ``-lv`` and ``stap -l``.

Patterns are ``KIND:...`` with shell globs in every part:

=============================  ============================================================
``tracepoint:CAT:NAME``        tracefs events (``-v``: their fields, from ``format``)
``rawtracepoint:NAME``         raw tracepoints / tp_btf targets (``-v``: their arguments, from BTF)
``kprobe:FUNC``                kernel functions a kprobe can attach to
``fentry:FUNC``                kernel functions with BTF that ftrace can patch (fentry/fexit targets)
``uprobe:BINARY:FUNC``         functions of an executable or library (``c`` = libc)
``usdt:BINARY:PROVIDER:NAME``  USDT probes of a binary (or of every file of ``pid=``)
``software:NAME``              software perf events; ``hardware:NAME`` hardware ones
=============================  ============================================================

Short kinds work too: ``t``, ``rt``/``tp_btf``, ``k``, ``f``/``kfunc``, ``u``, ``U``, ``s``, ``h``.
A kind this kernel cannot attach (kprobes without CONFIG_KPROBES, fentry where trampolines are
refused, hardware events without a PMU) raises FeatureNotSupported saying why, rather than an empty
list that reads as "no such function"; hardware events the PMU cannot count are left out.

Example::

    bpfkit.probes.list("tracepoint:sched:sched_switch")
    bpfkit.probes.tracepoint_fields("syscalls", "sys_enter_openat")   # see args->filename
    bpfkit.probes.tracepoint_fields("sched_switch")                   # raw tracepoint: preempt, prev, next...
    $ bpfkit list -v 'tracepoint:syscalls:sys_enter_open*'   # the CLI: bpfkit.tools.list
"""
from __future__ import annotations

import fnmatch
import logging
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Optional

import numpy as np

from .. import _sys as sc
from .. import features
from ..errors import BpfError, BpfNotFoundError, BpfUsageError, FeatureNotSupported, ObjectFormatError
from ..tracefs import available_filter_functions, permission_error, tracefs_root

if TYPE_CHECKING:
    from ..btf import Btf

__all__ = ["ProbeInfo", "TracepointField", "fields_dtype", "list_probes", "parse_tracepoint_format",
           "raw_tracepoint_args", "tracepoint_dtype", "tracepoint_fields"]

log = logging.getLogger("bpfkit.probes")

_KINDS = {
    "tracepoint": "tracepoint", "t": "tracepoint", "tp": "tracepoint",
    "rawtracepoint": "rawtracepoint", "raw_tracepoint": "rawtracepoint", "rt": "rawtracepoint",
    "raw_tp": "rawtracepoint", "tp_btf": "rawtracepoint",
    "kprobe": "kprobe", "k": "kprobe", "kretprobe": "kprobe", "kr": "kprobe",
    "fentry": "fentry", "fexit": "fentry", "kfunc": "fentry", "kretfunc": "fentry", "f": "fentry",
    "uprobe": "uprobe", "u": "uprobe", "uretprobe": "uprobe", "ur": "uprobe",
    "usdt": "usdt", "U": "usdt",
    "software": "software", "s": "software", "hardware": "hardware", "h": "hardware",
}


@dataclass(frozen=True)
class TracepointField:
    """One field of a tracepoint record, as ``format`` describes it, or one argument of a raw
    tracepoint (``offset`` is then its 8-byte slot in the ``u64 args[]`` context).

    ``type`` is the C declaration's type (``const char *``, ``char[16]``, ``__data_loc char[]``),
    ``common`` marks the ``common_*`` header every record starts with.

    Example::

        [f.declaration for f in tracepoint_fields("sched_switch")]   # ['bool preempt;', ...]
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
    """A probe found by :func:`list_probes`. ``str()`` gives the bpftrace-style name.

    Example::

        [p] = list_probes("tracepoint:sched:sched_switch")
        str(p), p.target, p.name     # ('tracepoint:sched:sched_switch', 'sched', 'sched_switch')
    """

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
    ``format`` file, in record order; ``common=True`` includes the ``common_*`` header. A bare
    name without category (``"sched_switch"``) is a raw tracepoint: its arguments, see
    :func:`raw_tracepoint_args`.

    Example::

        [f.declaration for f in tracepoint_fields("syscalls:sys_enter_openat")]
        # ['int __syscall_nr;', 'int dfd;', 'const char * filename;', 'int flags;', 'umode_t mode;']
    """
    if name is None:
        if ":" not in category:
            return raw_tracepoint_args(category)
        category, _, name = category.partition(":")
    path = os.path.join(_events_dir(), category, name, "format")
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        raise BpfNotFoundError(f"tracepoint {category}:{name} not found; list them with "
                               f"bpfkit.probes.list('tracepoint:{category}:*')") from None
    except PermissionError:
        raise permission_error(path, "tracepoint formats") from None
    return [f for f in parse_tracepoint_format(text) if common or not f.common]


# a record field beyond this offset or size is not a tracepoint's (records fit in a page or two)
_MAX_FIELD = 1 << 20


def parse_tracepoint_format(text: str) -> list[TracepointField]:
    """The fields a tracefs ``format`` file lists, in record order (``common_*`` ones included);
    lines that are not fields are skipped, a field line that makes no sense (a huge offset or
    size) raises ObjectFormatError.

    Example::

        parse_tracepoint_format(open(".../sched_switch/format").read())[4].name   # 'prev_comm'
    """
    out = []
    for line in text.splitlines():
        m = _FIELD.match(line)
        if not m:
            continue
        decl = m.group("decl").strip()
        d = _DECL.match(decl)
        ftype, fname = (d.group("type") + d.group("dims"), d.group("name")) if d else (decl, decl)
        if len(m.group("off")) > 9 or len(m.group("size")) > 9:
            off = size = _MAX_FIELD + 1
        else:
            off, size = int(m.group("off")), int(m.group("size"))
        if off > _MAX_FIELD or size > _MAX_FIELD:
            raise ObjectFormatError(f"tracepoint format field {fname!r}: offset {off} / size {size} is not a "
                                    "tracepoint record's")
        out.append(TracepointField(fname, ftype.strip(), off, size, m.group("sgn") == "1",
                                   fname.startswith("common_")))
    return out


def tracepoint_dtype(category: str, name: Optional[str] = None) -> np.dtype:
    """A numpy dtype for the raw record of a tracepoint (the ``ctx`` a tracepoint program gets):
    integers by size and sign, ``char[N]`` as ``S{N}``, other arrays as sub-arrays, pointers and
    ``__data_loc`` fields as unsigned integers. A bare raw tracepoint name gives the ``u64 args[]``
    a raw_tp program sees, one 8-byte slot per argument.

    Example::

        dt = tracepoint_dtype("sched:sched_switch"); dt["prev_comm"]   # dtype('S16')
        tracepoint_dtype("sys_enter")["id"]                             # dtype('int64')
    """
    fields = tracepoint_fields(category, name, common=True)
    return fields_dtype(fields, raw=name is None and ":" not in category)


def fields_dtype(fields: list[TracepointField], raw: bool = False) -> np.dtype:
    """The record dtype of tracepoint ``fields`` (see :func:`tracepoint_dtype`); ``raw``: the
    ``u64 args[]`` of a raw tracepoint. Fields that cannot share a record (the same name twice,
    absurd array dimensions) raise ObjectFormatError.

    Example::

        fields_dtype(parse_tracepoint_format(text))
    """
    names: list[str] = []
    formats: list[object] = []
    offsets: list[int] = []
    for f in fields:
        base, _, dims = f.type.partition("[")
        n_elems = [int(x) for x in re.findall(r"\[(\d{1,7})\]", "[" + dims)] if dims else []
        if n_elems and "char" in base and "*" not in base and "__data_loc" not in base:
            fmt: object = f"S{f.size}"
        elif n_elems and "__data_loc" not in base:
            total = math.prod(n_elems)  # Python ints: np.prod wraps at 2**63 into a negative element size
            if total > max(f.size, 1):
                raise ObjectFormatError(f"tracepoint field {f.name[:60]!r}: {f.type[:80]!r} has {total} "
                                        f"elements in {f.size} bytes")
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
    size = 8 * len(fields) if raw else max((f.offset + f.size for f in fields), default=0)
    try:
        return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": size})
    except (ValueError, TypeError, OverflowError) as exc:
        raise ObjectFormatError(f"tracepoint fields {', '.join(names)[:200]} do not make a record: {exc}") from None


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


# -- raw tracepoints (BTF) ---------------------------------------------------------------

_BTF_DIR = "/sys/kernel/btf"
_TRACE_TYPEDEF = re.compile(rb"(?<=\0)btf_trace_([A-Za-z0-9_]+)(?=\0)")


@lru_cache(maxsize=1)
def _raw_tracepoint_owners() -> dict[str, str]:
    """Raw tracepoint name -> BTF object declaring it (``vmlinux`` or a module). Every raw
    tracepoint has a ``btf_trace_NAME`` typedef; scanning the string sections is enough to
    list them without parsing every module's BTF."""
    out: dict[str, str] = {}
    try:
        objs = sorted(os.listdir(_BTF_DIR), key=lambda n: n != "vmlinux")
    except OSError:
        return out
    for obj in objs:
        try:
            with open(os.path.join(_BTF_DIR, obj), "rb") as f:
                raw = f.read()
        except OSError:
            continue
        for m in _TRACE_TYPEDEF.finditer(raw):
            out.setdefault(m.group(1).decode(), obj)
    return out


@lru_cache(maxsize=8)
def _module_btf(obj: str) -> "Btf":
    from ..btf import Btf, vmlinux_btf

    if obj == "vmlinux":
        return vmlinux_btf()
    with open(os.path.join(_BTF_DIR, obj), "rb") as f:
        return Btf.parse(f.read(), base=vmlinux_btf())


def _c_type(btf: "Btf", type_id: int) -> str:
    return btf.type_name(type_id).replace("* *", "**")


def _is_signed(btf: "Btf", type_id: int) -> bool:
    from ..btf import INT_SIGNED, Kind

    t = btf.resolve(type_id)
    if t.kind == Kind.INT:
        return bool(t.int_encoding & INT_SIGNED)
    return t.kind in (Kind.ENUM, Kind.ENUM64) and t.signed


def raw_tracepoint_args(name: str) -> list[TracepointField]:
    """Arguments a raw tracepoint or tp_btf program gets for tracepoint ``name``, like
    ``bpftrace -lv rawtracepoint:NAME``: the kernel's ``TP_PROTO`` from BTF (the ``btf_trace_NAME``
    typedef, names from ``__bpf_trace_NAME``), without the leading ``void *`` the kernel passes
    itself. ``offset`` is the argument's slot in the ``u64 args[]`` context (8 bytes each).

    Example::

        [f.declaration for f in raw_tracepoint_args("sched_switch")]
        # ['bool preempt;', 'struct task_struct * prev;', 'struct task_struct * next;',
        #  'unsigned int prev_state;']
    """
    from ..btf import Kind

    owner = _raw_tracepoint_owners().get(name)
    if owner is None:
        raise BpfNotFoundError(f"raw tracepoint {name!r} not found: no btf_trace_{name} in the kernel's BTF "
                               f"({_BTF_DIR}); list them with bpfkit.probes.list('rawtracepoint:*')")
    btf = _module_btf(owner)
    proto = btf.resolve(btf.find(f"btf_trace_{name}", Kind.TYPEDEF).id)
    if proto.kind == Kind.PTR:
        proto = btf.resolve(proto.type_id)
    if proto.kind != Kind.FUNC_PROTO:
        raise BpfError(f"btf_trace_{name} in {owner} BTF is not a function pointer (it is {proto.kind.name})")
    params = proto.params[1:]  # the first is the tracepoint's void *data, not the program's
    names = [n for n, _ in params]
    try:
        impl = btf[btf.find(f"__bpf_trace_{name}", Kind.FUNC).type_id]
        if len(impl.params) == len(proto.params):
            names = [n for n, _ in impl.params[1:]]
    except BpfNotFoundError:
        pass
    return [TracepointField(pname or f"arg{i}", _c_type(btf, tid), 8 * i, btf.size_of(tid), _is_signed(btf, tid))
            for i, (pname, (_, tid)) in enumerate(zip(names, params))]


def _raw_tracepoints(pattern: str) -> list[str]:
    names = _raw_tracepoint_owners()
    if not names:  # no BTF: tracefs events, minus the syscall ones that are not raw tracepoints
        return sorted({n for c, n in _tracepoints("*", pattern) if c != "syscalls"})
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))


def _require(what: str, feature: str) -> None:
    """FeatureNotSupported saying why, when this kernel cannot attach ``what`` at all: an empty
    listing would read as "no such function"."""
    ok, reason = features.check(feature)
    if not ok:
        raise FeatureNotSupported(f"not listing {what}, this machine cannot use them: {reason}",
                                  feature=features.status(feature).name)


def _openable_hardware(names: list[str]) -> list[str]:
    """The hardware events this machine's PMU can count (a PMU need not have every generic one)."""
    from .perf_events import open_event, resolve_event

    out = []
    for name in names:
        try:
            os.close(open_event(resolve_event(name), pid=0, flags=sc.PERF_ATTR_DISABLED
                                | sc.PERF_ATTR_EXCLUDE_KERNEL | sc.PERF_ATTR_EXCLUDE_HV))
        except BpfError:
            continue
        out.append(name)
    return out


# -- the listing -----------------------------------------------------------------

def _split(rest: str, n: int) -> list[str]:
    """Split ``rest`` on ':' into n parts, padding with '*' (a binary path may not contain ':')."""
    parts = rest.split(":")
    if len(parts) > n:  # extra colons belong to the first part (e.g. none in practice) - join them
        parts = [":".join(parts[: len(parts) - n + 1])] + parts[len(parts) - n + 1:]
    return parts + ["*"] * (n - len(parts))


def _binary_targets(pattern: str, pid: Optional[int]) -> list[str]:
    from ..binaries import resolve_library
    from ..binaries import mapped_files

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
    from ..binaries import resolve_library

    try:
        return resolve_library(name)
    except BpfError:
        return ""


def list_probes(pattern: str = "tracepoint:*", *, pid: Optional[int] = None, verbose: bool = False) -> list[ProbeInfo]:
    """Probes matching ``pattern`` (see the module docs); ``verbose`` adds tracepoint fields, raw
    tracepoint arguments and USDT argument specs. ``pid`` searches the binaries a process has
    mapped (uprobe/usdt).

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
        for n in _raw_tracepoints(rest.rpartition(":")[2] or "*"):  # also [CATEGORY:]NAME
            args: tuple[TracepointField, ...] = ()
            if verbose:
                try:
                    args = tuple(raw_tracepoint_args(n))
                except BpfError:
                    pass  # listed from tracefs on a kernel without BTF
            out.append(ProbeInfo("rawtracepoint", "", n, args))
    elif kind == "kprobe":
        from .kprobe import kernel_functions

        _require("kprobes", "kprobes")
        out = [ProbeInfo("kprobe", "", f) for f in kernel_functions(rest or "*")]
    elif kind == "fentry":
        _require("fentry targets", "fentry")
        out = [ProbeInfo("fentry", "", f) for f in _btf_functions(rest or "*")]
    elif kind == "uprobe":
        from ..binaries import list_symbols

        binary, func = _split(rest, 2)
        for path in _binary_targets(binary, pid):
            try:
                syms = list_symbols(path, func)
            except BpfError:
                continue  # e.g. a mapped file that is not ELF
            names = list(dict.fromkeys(s.name for s in syms))
            out.extend(ProbeInfo("uprobe", path, n) for n in names)
    elif kind == "usdt":
        from ..binaries import read_usdt_notes

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
        from .perf_events import HARDWARE_EVENTS, SOFTWARE_EVENTS

        table = SOFTWARE_EVENTS if kind == "software" else HARDWARE_EVENTS
        names = [n for n in table if fnmatch.fnmatchcase(n, rest or "*")]
        if kind == "hardware" and names:
            _require("hardware events", "hw_pmu")
            names = _openable_hardware(names)
        out = [ProbeInfo(kind, "", n) for n in names]
    return out


def _btf_functions(pattern: str) -> list[str]:
    """Functions with vmlinux BTF that ftrace can patch (fentry needs both); every BTF function
    where the kernel does not let us read ``available_filter_functions``."""
    from ..btf import Kind, vmlinux_btf

    rx = re.compile(fnmatch.translate(pattern))
    names = {t.name for t in vmlinux_btf() if t.kind == Kind.FUNC and rx.match(t.name)}
    traceable = available_filter_functions()
    if traceable is None:
        log.warning("fentry: available_filter_functions is not readable, listing every BTF function; some of "
                    "them (notrace, inlined) will refuse to attach")
        return sorted(names)
    return sorted(names & traceable)
