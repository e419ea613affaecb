"""From a probe spec to the configuration of the prebuilt generic program (``c/tools/oneliner.bpf.c``):
which program, the record layout (and the numpy dtype that decodes it), the fetch plan for strings
behind pointers, and the filter split into the comparisons BPF evaluates and the rest Python does.

The record is ``header | value area | fetched strings``. The value area is what the probe gives
for free -- argument registers and the return value, a tracepoint's raw record, USDT arguments --
so every integer a filter or expression can name has a fixed offset there; a string named by an
expression gets a slot after it.

Example::

    plan = build_plan(parse_probe("p:c:malloc(size_t size)"), filter="size > 4096")
    plan.program, plan.conds, plan.dtype.names[:4]   # 'ol_fn', [Cond(off=0, ...)], ('ts', 'pid', ...)
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Union

import numpy as np

from ...probes.discovery import TracepointField, tracepoint_fields
from ...probes.spec import ProbeSpec, ProbeSpecError, c_type
from .expr import Expr, conjuncts, name_of, parse_expr

__all__ = ["HEADER", "HEADER_SIZE", "MAX_RECORD", "Column", "Fetch", "Cond", "Plan", "build_plan",
           "STR", "BYTES", "DATALOC", "KERNEL", "USER", "ANY", "OPS"]

# struct ol_header of oneliner.bpf.c
HEADER = np.dtype({"names": ["ts", "pid", "tid", "uid", "gid", "cpu", "ustack", "kstack", "cookie", "comm"],
                   "formats": ["<u8", "<u4", "<u4", "<u4", "<u4", "<u4", "<i4", "<i4", "<u4", "S16"],
                   "offsets": [0, 8, 12, 16, 20, 24, 28, 32, 36, 40], "itemsize": 56})
HEADER_SIZE = HEADER.itemsize
MAX_RECORD = 8192
MAX_FETCH = 8
MAX_COND = 8
MAX_USDT_ARGS = 12
STR, BYTES, DATALOC = 1, 2, 3
KERNEL, USER, ANY = 0, 1, 2
OPS = {ast.Eq: 1, ast.NotEq: 2, ast.Lt: 3, ast.LtE: 4, ast.Gt: 5, ast.GtE: 6}
OP_AND, OP_NAND = 7, 8
_FLIP = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE, ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}
FN_VALUES = 14  # args 0-5, retval, latency, entry args 0-5
HEADER_NAMES = set(HEADER.names or ())


@dataclass(frozen=True)
class Column:
    """A named value of a record: ``field`` in the record dtype; ``value_off`` its offset in the
    value area (None for header fields and strings, which BPF filters cannot compare)."""

    name: str
    field: str
    dtype: np.dtype
    value_off: Optional[int] = None


@dataclass(frozen=True)
class Fetch:
    """One row of the fetch plan (``struct ol_fetch``)."""

    src: int
    dst: int
    size: int
    kind: int
    mem: int
    len_src: int = 0xFFFF
    len_dst: int = 0


@dataclass(frozen=True)
class Cond:
    """One BPF-side comparison (``struct ol_cond``): value at ``off`` (``size`` bytes, ``signed``)
    ``op`` ``value``."""

    off: int
    size: int
    signed: bool
    op: int
    value: int


@dataclass
class Plan:
    """How one probe is traced. ``ints``/``strings`` map the names expressions may use to columns;
    ``dtype`` decodes a record; ``conds`` go to BPF, ``py_filter`` runs on decoded batches."""

    spec: ProbeSpec
    program: str
    dtype: np.dtype
    ints: dict[str, Column]
    strings: dict[str, Column]
    fetches: list[Fetch] = field(default_factory=list)
    conds: list[Cond] = field(default_factory=list)
    py_filter: Optional[Expr] = None
    filter_text: str = ""
    tp_size: int = 0
    usdt_nargs: int = 0
    paired: bool = False
    ustack: bool = False
    kstack: bool = False
    provider: str = ""  # USDT: the provider resolved from the binary's notes

    @property
    def record_size(self) -> int:
        return self.dtype.itemsize

    def rodata(self) -> dict[str, object]:
        """The ``const volatile`` settings of oneliner.bpf.c for this plan."""
        return {"ol_rec_size": self.record_size, "ol_tp_size": self.tp_size, "ol_usdt_nargs": self.usdt_nargs,
                "ol_paired": int(self.paired), "ol_ustack": int(self.ustack), "ol_kstack": int(self.kstack),
                "ol_nfetch": len(self.fetches), "ol_ncond": len(self.conds)}


class _Layout:
    """Builds the record dtype field by field."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.formats: list[object] = []
        self.offsets: list[int] = []
        self.end = HEADER_SIZE
        fields: Any = HEADER.fields or {}
        for n, f in fields.items():
            self.add(n, f[0], f[1])

    def add(self, name: str, fmt: object, offset: int) -> None:
        if name in self.names:
            return
        self.names.append(name)
        self.formats.append(fmt)
        self.offsets.append(offset)
        self.end = max(self.end, offset + np.dtype(fmt).itemsize)  # type: ignore[call-overload]

    def reserve(self, size: int, align: int = 8) -> int:
        off = (self.end + align - 1) & ~(align - 1)
        self.end = off + size
        return off

    def dtype(self) -> np.dtype:
        size = (self.end + 7) & ~7
        return np.dtype({"names": self.names, "formats": self.formats, "offsets": self.offsets, "itemsize": size})


def _int_fmt(size: int, signed: bool) -> str:
    return f"<{'i' if signed else 'u'}{size}" if size in (1, 2, 4, 8) else f"V{size}"


def build_plan(spec: ProbeSpec, *, strings: Union[str, Iterable[str]] = (), filter: Optional[str] = None,
               string_size: int = 80, ustack: bool = False, kstack: bool = False, paired: bool = False,
               bpf_filter: bool = True, filter_base: int = 0, filter_spec: str = "") -> Plan:
    """The plan for ``spec``. ``strings`` names the values to read as strings ("all": every
    ``char *`` parameter and string field); ``filter`` is a C expression (its simple ``&&``-parts
    go to BPF unless ``bpf_filter`` is False); ``paired`` adds the entry half of a return probe
    ($latency, $entry(name)).

    Example::

        build_plan(parse_probe("t:syscalls:sys_enter_openat"), strings={"filename"})
    """
    if not 1 <= string_size <= 4096:
        raise ProbeSpecError(spec.text, 0, f"string size {string_size} is out of range (1..4096)")
    lay = _Layout()
    ints: dict[str, Column] = {}
    str_src: dict[str, tuple[int, int, str]] = {}  # name -> (value offset, kind, how)
    v0 = HEADER_SIZE
    for n in ("ts", "pid", "tid", "uid", "gid", "cpu", "cookie"):
        ints[n] = Column(n, n, HEADER[n])
    strs: dict[str, Column] = {"comm": Column("comm", "comm", np.dtype("S16"))}
    tp_size = usdt_nargs = 0
    provider = ""
    mem = USER
    if spec.kind == "tracepoint":
        program = "ol_tp"
        fields = tracepoint_fields(spec.category, spec.name, common=True)
        tp_size = max((f.offset + f.size for f in fields), default=0)
        tp_size = (tp_size + 7) & ~7
        if HEADER_SIZE + tp_size > MAX_RECORD:
            raise spec.error("name", f"the record of {spec.category}:{spec.name} is {tp_size} bytes; at most "
                             f"{MAX_RECORD - HEADER_SIZE} fit")
        user_ptrs = spec.category == "syscalls"
        for f in fields:
            if f.common:
                continue
            _tp_field(f, lay, ints, strs, str_src, v0, user_ptrs)
        mem = USER if user_ptrs else ANY
        lay.end = max(lay.end, v0 + tp_size)
    elif spec.kind == "usdt":
        program = "ol_usdt"
        note_args, provider = _usdt_args(spec)
        usdt_nargs = len(note_args)
        for i, a in enumerate(note_args):
            name = f"arg{i + 1}"
            fmt = _int_fmt(a.size, a.signed)
            lay.add(name, fmt, v0 + 8 * i)
            ints[name] = Column(name, name, np.dtype(fmt), 8 * i)
            str_src[name] = (8 * i, STR, "ptr")
        lay.end = max(lay.end, v0 + 8 * max(usdt_nargs, 1))
    else:
        program = "ol_fn"
        mem = USER if spec.kind in ("uprobe", "uretprobe") else ANY
        params = spec.params or ()
        if not spec.is_return:
            for i in range(6):
                name = f"arg{i + 1}"
                lay.add(name, "<u8", v0 + 8 * i)
                ints[name] = Column(name, name, np.dtype("<u8"), 8 * i)
                str_src[name] = (8 * i, STR, "ptr")
            for i, p in enumerate(params):
                ct = p.ctype
                if p.name in HEADER_NAMES:
                    raise spec.error("signature", f"parameter name {p.name!r} is taken by a built-in value; "
                                     "rename it")
                ints[p.name] = Column(p.name, f"arg{i + 1}" if ct.pointer else p.name, np.dtype(ct.numpy), 8 * i)
                if not ct.pointer:
                    lay.add(p.name, ct.numpy, v0 + 8 * i)
                if ct.pointer:
                    str_src[p.name] = (8 * i, STR, "ptr" if not ct.string else "str")
        else:
            lay.add("retval", "<i8", v0 + 48)
            ints["retval"] = Column("retval", "retval", np.dtype("<i8"), 48)
            str_src["retval"] = (48, STR, "ptr")
            if paired:
                lay.add("latency", "<u8", v0 + 56)
                ints["latency"] = Column("latency", "latency", np.dtype("<u8"), 56)
                for i in range(6):
                    name = f"entry__arg{i + 1}"
                    lay.add(name, "<u8", v0 + 64 + 8 * i)
                    ints[name] = Column(name, name, np.dtype("<u8"), 64 + 8 * i)
                    str_src[name] = (64 + 8 * i, STR, "ptr")
                for i, p in enumerate(params):
                    ct = p.ctype
                    name = f"entry__{p.name}"
                    ints[name] = Column(name, f"entry__arg{i + 1}" if ct.pointer else name, np.dtype(ct.numpy),
                                        64 + 8 * i)
                    if not ct.pointer:
                        lay.add(name, ct.numpy, v0 + 64 + 8 * i)
                    else:
                        str_src[name] = (64 + 8 * i, STR, "str" if ct.string else "ptr")
        lay.end = max(lay.end, v0 + 8 * (FN_VALUES if paired else 7))
    # -- the filter: simple parts to BPF, the rest to Python
    expr = parse_expr(filter, filter_spec or filter, filter_base) if filter else None
    conds: list[Cond] = []
    py_parts: list[ast.expr] = []
    if expr is not None:
        for node in conjuncts(expr.tree):
            cond = _bpf_cond(node, ints, expr) if bpf_filter and len(conds) < MAX_COND else None
            if cond is None:
                py_parts.append(node)
            else:
                conds.append(cond)
        for n in expr.names:
            if n not in ints and n not in strs and n not in str_src:
                raise _unknown(expr, n, ints, str_src)
    want: set[str] = set()
    if strings == "all":
        want = {n for n, (_, _, how) in str_src.items()
                if how == "str" and (not n.startswith("args.") or n[5:] in HEADER_NAMES)}
    else:
        want = set(strings)
    if expr is not None:
        want |= expr.strings
    fetches: list[Fetch] = []
    for name in sorted(want):
        if name in strs:
            continue
        if name not in str_src:
            if name in ints:
                raise ProbeSpecError(spec.text, 0, f"{name!r} is not a pointer, so it has no string to read")
            raise ProbeSpecError(spec.text, 0, f"no value named {name!r} in {spec}; it has: "
                                 + ", ".join(sorted(set(ints) | set(str_src))))
        if len(fetches) >= MAX_FETCH:
            raise ProbeSpecError(spec.text, 0, f"at most {MAX_FETCH} strings can be read per probe")
        src, kind, _ = str_src[name]
        if any(f.src == src and f.kind == kind for f in fetches):  # args.x and x: one string
            strs[name] = next(c for k, c in strs.items() if k.removeprefix("args.") == name.removeprefix("args.")
                              and k in str_src and str_src[k][0] == src)
            continue
        len_dst = lay.reserve(8)
        dst = lay.reserve(string_size, 1)
        base_name = name.removeprefix("args.") if name.removeprefix("args.") not in HEADER_NAMES else name
        field_name = base_name if base_name not in ints or ints[base_name].field != base_name else f"{base_name}__str"
        lay.add(field_name, f"S{string_size}", dst)
        lay.add(f"{field_name}__len", "<i4", len_dst)
        strs[name] = Column(name, field_name, np.dtype(f"S{string_size}"))
        if name.startswith("args.") and name[5:] in str_src and name[5:] not in HEADER_NAMES:
            strs[name[5:]] = strs[name]
        elif f"args.{name}" in str_src:
            strs[f"args.{name}"] = strs[name]
        fetches.append(Fetch(src, dst, string_size, kind, KERNEL if kind == DATALOC else mem, 0xFFFF, len_dst))
    dtype = lay.dtype()
    if dtype.itemsize > MAX_RECORD:
        raise ProbeSpecError(spec.text, 0, f"a record of {dtype.itemsize} bytes is too large (at most {MAX_RECORD}): "
                             "read fewer or shorter strings")
    py_filter = None
    if expr is not None and py_parts:
        py_filter = Expr(expr.text, py_parts[0] if len(py_parts) == 1 else ast.BoolOp(ast.And(), py_parts),
                         expr.spec, expr.base, expr.casts, expr.names, expr.strings)
        py_filter._map = expr._map
    return Plan(spec, program, dtype, ints, strs, fetches, conds, py_filter, filter or "", tp_size, usdt_nargs,
                paired and spec.is_return, ustack, kstack, provider)


def _tp_field(f: TracepointField, lay: _Layout, ints: dict[str, Column], strs: dict[str, Column],
              str_src: dict[str, tuple[int, int, str]], v0: int, user_ptrs: bool) -> None:
    """Register tracepoint field ``f`` as ``args.NAME`` and, unless a built-in (pid, comm...) has
    that name, as ``NAME``; its record field is ``NAME`` (``args.NAME`` for those)."""
    name = f.name if f.name not in HEADER_NAMES else f"args.{f.name}"
    keys = [f"args.{f.name}"] + ([f.name] if f.name not in HEADER_NAMES else [])
    base, _, dims = f.type.partition("[")
    if "__data_loc" in base:
        lay.add(f"{name}__loc", "<u4", v0 + f.offset)
        for k in keys:
            str_src[k] = (f.offset, DATALOC, "str")
        return
    if dims:
        fmt: object = f"S{f.size}" if "char" in base and "*" not in base else _array_fmt(base, dims, f.size)
        lay.add(name, fmt, v0 + f.offset)
        if "char" in base and "*" not in base:  # a char array: a string in the record already
            for k in keys:
                strs[k] = Column(k, name, np.dtype(f"S{f.size}"))
        return
    if f.size not in (1, 2, 4, 8):
        lay.add(name, f"V{f.size}", v0 + f.offset)
        return
    pointer = "*" in base
    size, signed = f.size, f.signed and not pointer
    if not pointer and user_ptrs:
        # syscalls:sys_enter_* declare "int dfd" in an 8-byte slot holding the raw register: read
        # the declared type's bytes (little-endian: the low ones), with its sign (their formats
        # say signed:0 for every argument). Other formats give size and sign right.
        try:
            ct = c_type(base)
            if ct.size <= f.size:
                size, signed = ct.size, ct.signed
        except Exception:
            pass
    fmt = _int_fmt(size, signed)
    field_name = name if not (pointer and "char" in base) else f"{name}__ptr"
    lay.add(field_name, fmt, v0 + f.offset)
    for k in keys:
        ints[k] = Column(k, field_name, np.dtype(fmt), f.offset)
        if pointer:  # char * is a string; char ** (execve's argv) is not
            str_src[k] = (f.offset, STR, "str" if "char" in base and base.count("*") == 1 else "ptr")


def _array_fmt(base: str, dims: str, size: int) -> object:
    """A numpy sub-array for a non-char array field (``unsigned long mem_allowed[16]``): its element
    type when the declaration names a known C type of the right size, else raw bytes."""
    shape = tuple(int(d) for d in re.findall(r"\d+", dims))
    count = int(np.prod(shape)) if shape else 0
    if "*" not in base and count and size % count == 0:
        try:
            ct = c_type(base)
        except Exception:
            ct = None
        if ct is not None and ct.size == size // count and ct.size in (1, 2, 4, 8):
            return (_int_fmt(ct.size, ct.signed), shape)
    return f"V{size}"


def _usdt_args(spec: ProbeSpec) -> tuple[list, str]:
    from ...binaries import read_usdt_notes, resolve_library

    if not spec.binary:
        raise spec.error("binary", "expected a binary for the USDT probe (u:BINARY:[PROVIDER:]NAME)")
    path = resolve_library(spec.binary)
    notes = [n for n in read_usdt_notes(path) if n.name == spec.name and (not spec.provider or n.provider == spec.provider)]
    if not notes:
        from ...probes.spec import check_probe

        check_probe(spec)
        raise spec.error("name", f"no USDT probe {spec.name!r} in {path}")
    providers = sorted({n.provider for n in notes})
    if len(providers) > 1:
        raise spec.error("name", f"USDT probe {spec.name!r} exists for providers {', '.join(providers)} in {path}: "
                         f"name one, e.g. u:{spec.binary}:{providers[0]}:{spec.name}")
    args = list(notes[0].arg_specs)
    if len(args) > MAX_USDT_ARGS:
        args = args[:MAX_USDT_ARGS]
    return args, providers[0]


def _unknown(expr: Expr, name: str, ints: dict[str, Column], str_src: dict[str, tuple[int, int, str]]) -> ProbeSpecError:
    from ...probes.spec import close_names

    node = next((n for n in ast.walk(expr.tree) if name_of(n) == name), None)
    have = sorted(set(ints) | set(str_src))
    close = close_names(name, have)
    hint = (f"did you mean {' / '.join(close)}? " if close else "") + f"known names: {', '.join(have)}"
    return expr.error(f"unknown name {name!r}", node) if not hint else ProbeSpecError(
        expr.spec, expr.error("", node).pos, f"unknown name {name!r}", hint)


def _const(node: ast.AST) -> Optional[int]:
    if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        v = _const(node.operand)
        return -v if v is not None else None
    return None


def _bpf_cond(node: ast.AST, ints: dict[str, Column], expr: Expr) -> Optional[Cond]:
    """The BPF comparison for one conjunct, or None when it needs Python."""
    def col_of(n: ast.AST) -> Optional[Column]:
        name = name_of(n)
        if name is None or name in expr.strings:
            return None
        c = ints.get(name)
        return c if c is not None and c.value_off is not None and c.dtype.itemsize in (1, 2, 4, 8) else None

    def make(col: Column, op: int, value: int) -> Optional[Cond]:
        signed = col.dtype.kind == "i"
        lo, hi = (-(1 << 63), (1 << 63) - 1) if signed else (0, (1 << 64) - 1)
        if not lo <= value <= hi:
            return None  # e.g. an unsigned value against a negative constant: C's promotion, in Python
        assert col.value_off is not None
        return Cond(col.value_off, col.dtype.itemsize, signed, op, value & 0xFFFFFFFFFFFFFFFF)

    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        left, right, op = node.left, node.comparators[0], type(node.ops[0])
        col, value = col_of(left), _const(right)
        if col is None or value is None:
            col, value, op = col_of(right), _const(left), _FLIP[op]
        if col is None or value is None:
            return None
        return make(col, OPS[op], value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitAnd):
        col, value = col_of(node.left), _const(node.right)
        if col is None or value is None:
            col, value = col_of(node.right), _const(node.left)
        return make(col, OP_AND, value) if col is not None and value is not None else None
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = node.operand
        if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.BitAnd):
            col, value = col_of(inner.left), _const(inner.right)
            return make(col, OP_NAND, value) if col is not None and value is not None else None
        col = col_of(inner)
        return make(col, OPS[ast.Eq], 0) if col is not None else None
    col = col_of(node)
    return make(col, OPS[ast.NotEq], 0) if col is not None else None
