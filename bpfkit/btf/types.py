"""BTF types: a small pure-Python reader, and BTF → numpy dtype conversion.

BTF is how a BPF object describes its types; bpfkit uses it to give map keys,
values, global variables and ring-buffer records real numpy dtypes.

The blob may be anything (a corrupt object, a fuzzer's output): every offset, size, kind and
type reference is checked while parsing, and every walk over types is bounded, so a malformed
blob is an ObjectFormatError, never an IndexError, a hang or a RecursionError (a ``const`` that
is its own target, a struct that contains itself).

Example::

    btf = Btf.parse(raw_bytes)
    t = btf.find("event", kind=Kind.STRUCT)
    dt = btf.dtype(t.id)        # dtype([('pid', '<u4'), ('comm', 'S16')])
"""
from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence, Union

import numpy as np

from ..errors import BpfError, BpfNotFoundError, ObjectFormatError

__all__ = [
    "BTF_MAGIC", "Kind", "INT_SIGNED", "INT_CHAR", "INT_BOOL", "Member", "BtfType", "Btf", "default_dtype",
    "int_dtype", "POINTER_DTYPE", "NUMBER_SIZES", "section_dtype", "variable_dtype", "UNREADABLE",
]

BTF_MAGIC = 0xEB9F


class Kind(enum.IntEnum):
    """BTF_KIND_* values."""

    VOID = 0
    INT = 1
    PTR = 2
    ARRAY = 3
    STRUCT = 4
    UNION = 5
    ENUM = 6
    FWD = 7
    TYPEDEF = 8
    VOLATILE = 9
    CONST = 10
    RESTRICT = 11
    FUNC = 12
    FUNC_PROTO = 13
    VAR = 14
    DATASEC = 15
    FLOAT = 16
    DECL_TAG = 17
    TYPE_TAG = 18
    ENUM64 = 19


_MODIFIERS = (Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG)
# kinds whose third word is a size; for the others it is a type id
_SIZED = (Kind.INT, Kind.STRUCT, Kind.UNION, Kind.ENUM, Kind.ENUM64, Kind.DATASEC, Kind.FLOAT)
# deepest nesting of structs/arrays turned into a dtype (numpy allows 32 array dims; C code that
# nests deeper is not a map value)
_MAX_NESTING = 64

INT_SIGNED = 1 << 0
INT_CHAR = 1 << 1
INT_BOOL = 1 << 2


@dataclass
class Member:
    """A struct/union member; ``bit_offset`` from the start, ``bitfield_size`` 0 for plain members."""

    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int = 0


@dataclass
class BtfType:
    """One BTF type. Which fields are used depends on ``kind``."""

    id: int
    kind: Kind
    name: str
    size: int = 0  # INT/STRUCT/UNION/ENUM/DATASEC/FLOAT
    type_id: int = 0  # PTR/TYPEDEF/modifiers/FUNC/VAR/ARRAY element
    members: list[Member] = field(default_factory=list)  # STRUCT/UNION
    nelems: int = 0  # ARRAY
    index_type_id: int = 0  # ARRAY
    int_encoding: int = 0
    int_bits: int = 0
    int_offset: int = 0
    enum_values: dict[str, int] = field(default_factory=dict)
    signed: bool = False  # ENUM/ENUM64 kind_flag
    vars: list[tuple[int, int, int]] = field(default_factory=list)  # DATASEC: (var type id, offset, size)
    params: list[tuple[str, int]] = field(default_factory=list)  # FUNC_PROTO
    linkage: int = 0  # VAR/FUNC


class Btf:
    """Parsed BTF: ``types[i]`` is type id ``i`` (0 is void)."""

    def __init__(self, types: Sequence[Optional[BtfType]], raw: bytes = b"",
                 ids_named: Optional[Callable[[str], Sequence[int]]] = None,
                 make: Optional[Callable[[int], BtfType]] = None,
                 fast_dtype: Optional[Callable[[int], Optional[np.dtype]]] = None) -> None:
        # a None entry is made by ``make`` when first used (an object's BTF: its maps' dtypes touch
        # a few of its types, converting all of them cost as much as reading the ELF)
        self._types = types if isinstance(types, list) else list(types)
        self._make = make
        # the dtype read straight from the BTF's own words, None where the rules below must decide
        # (an object's BTF: converting its types to BtfTypes for their dtypes cost more than the rest
        # of building its spec)
        self._fast_dtype = fast_dtype
        self.raw = raw
        self._by_name: Optional[dict[str, list[int]]] = None  # name -> type ids, built on the first find()
        self._ids_named = ids_named  # or this gives them (an object's BTF: its reader searches its strings)

    @property
    def types(self) -> list[BtfType]:
        """Every type, id ``i`` at index ``i`` (0 is void)."""
        if self._make is not None:
            for tid in range(len(self._types)):
                self[tid]
            self._make = None
        return self._types  # type: ignore[return-value]  # no None is left

    @classmethod
    def parse(cls, raw: bytes, base: Optional["Btf"] = None) -> "Btf":
        """Parse a raw BTF blob (a ``.BTF`` ELF section or ``/sys/kernel/btf/*``); a malformed one
        raises ObjectFormatError saying what is wrong where.

        Example::

            btf = Btf.parse(open("/sys/kernel/btf/vmlinux", "rb").read())
        """
        raw = bytes(raw)
        try:
            types = _parse(raw, base)
        except struct.error as exc:
            raise ObjectFormatError(f"truncated BTF data: {exc}") from None
        _check_references(types, len(base.types) if base else 1)
        return cls(types, raw)

    @classmethod
    def load_vmlinux(cls, path: str = "/sys/kernel/btf/vmlinux") -> "Btf":
        """Parse the running kernel's BTF."""
        try:
            with open(path, "rb") as f:
                return cls.parse(f.read())
        except FileNotFoundError:
            raise BpfError(f"{path} not found: the kernel needs CONFIG_DEBUG_INFO_BTF=y") from None

    def __getitem__(self, type_id: int) -> BtfType:
        types = self._types
        if not 0 <= type_id < len(types):
            raise BpfNotFoundError(f"no BTF type id {type_id} (this BTF has ids 0..{len(types) - 1})")
        t = types[type_id]
        if t is None:
            assert self._make is not None
            t = types[type_id] = self._make(type_id)
        return t

    def __iter__(self) -> Iterator[BtfType]:
        return iter(self.types[1:])

    def find(self, name: str, kind: Optional[Kind] = None) -> BtfType:
        """The type called ``name`` (of ``kind``); raises BpfNotFoundError if absent."""
        if self._ids_named is not None:
            ids = self._ids_named(name)
        else:
            if self._by_name is None:
                self._by_name = {}
                for t in self.types[1:]:
                    if t.name:
                        self._by_name.setdefault(t.name, []).append(t.id)
            ids = self._by_name.get(name, ())
        for tid in ids:
            if kind is None or self[tid].kind == kind:
                return self[tid]
        raise BpfNotFoundError(f"no BTF type {name!r}" + (f" of kind {kind.name}" if kind else ""))

    def resolve(self, type_id: int) -> BtfType:
        """Skip typedefs and const/volatile/restrict/type tags."""
        t = self[type_id]
        for _ in range(len(self._types)):  # a longer chain has gone round a loop
            if t.kind not in _MODIFIERS:
                return t
            t = self[t.type_id]
        raise ObjectFormatError(f"BTF type {type_id}: its typedef/modifier chain loops back on itself")

    def size_of(self, type_id: int) -> int:
        """Size in bytes of a type."""
        scale = 1
        for _ in range(len(self._types)):  # arrays of arrays (of vars) end within as many steps
            t = self.resolve(type_id)
            if t.kind == Kind.ARRAY:
                scale *= t.nelems
            elif t.kind != Kind.VAR:
                return scale * (8 if t.kind == Kind.PTR else t.size)
            type_id = t.type_id
        raise ObjectFormatError(f"BTF type {type_id}: its array/variable chain loops back on itself")

    def type_name(self, type_id: int, _depth: int = 0) -> str:
        """A C-like spelling of a type, for messages."""
        if _depth > _MAX_NESTING:
            return "..."  # a pointer/array/modifier chain that loops: cut the spelling short
        t = self[type_id]
        if t.kind == Kind.VOID:
            return "void"
        if t.kind == Kind.PTR:
            return self.type_name(t.type_id, _depth + 1) + " *"
        if t.kind == Kind.ARRAY:
            return f"{self.type_name(t.type_id, _depth + 1)}[{t.nelems}]"
        if t.kind in (Kind.CONST, Kind.VOLATILE, Kind.RESTRICT):
            return f"{t.kind.name.lower()} {self.type_name(t.type_id, _depth + 1)}"
        prefix = {Kind.STRUCT: "struct ", Kind.UNION: "union ", Kind.ENUM: "enum ", Kind.ENUM64: "enum "}
        return prefix.get(t.kind, "") + (t.name or "<anon>")

    def dtype(self, type_id: int) -> np.dtype:
        """numpy dtype for a BTF type. Structs become structured dtypes (nested structs and arrays
        included), ``char[N]`` becomes ``S{N}``, enums their integer type, pointers ``u8``."""
        if self._fast_dtype is not None:
            dt = self._fast_dtype(type_id)
            if dt is not None:
                return dt
        return _dtype(self, type_id, (), ())

    def datasec_dtype(self, name: str, size: int = 0) -> np.dtype:
        """Structured dtype of a global-data section (``.bss``, ``.data``, ``.rodata``...):
        one field per variable, at its offset, and at least ``size`` bytes."""
        sec = self.find(name, Kind.DATASEC)
        names: list[str] = []
        formats: list[np.dtype] = []
        offsets: list[int] = []
        unreadable: dict[str, str] = {}
        for var_id, off, var_size in sec.vars:
            var = self[var_id]
            if var.kind != Kind.VAR:
                continue
            names.append(var.name)
            formats.append(variable_dtype(self, var.name, var.type_id, var_size, unreadable))
            offsets.append(off)
        return section_dtype(name, names, formats, offsets, max(sec.size, size), unreadable)


def variable_dtype(btf: "Btf", name: str, type_id: int, size: int, unreadable: dict[str, str]) -> np.dtype:
    """A global variable's dtype; raw bytes (``V{size}``) when numpy has none for its type
    (bitfields), the reason kept in ``unreadable`` for :func:`section_dtype`."""
    try:
        return btf.dtype(type_id)
    except ObjectFormatError:
        raise
    except BpfError as e:
        unreadable[name] = str(e)
        return np.dtype(f"V{size}")


UNREADABLE = "bpfkit_unreadable"  # a section dtype's metadata: variable -> why it is raw bytes


def section_dtype(section: str, names: list[str], formats: list[np.dtype], offsets: list[int],
                  size: int, unreadable: Optional[dict[str, str]] = None) -> np.dtype:
    """A global-data section's dtype: its variables at their offsets, ``size`` bytes or as far as
    the last variable reaches (a section's tail may hold no variable, a variable may be bigger
    than the section says). ``unreadable`` (variable -> reason) goes in its metadata.

    Example: ``section_dtype(".bss", ["total"], [np.dtype("u8")], [0], 8)``"""
    end = max([o + f.itemsize for o, f in zip(offsets, formats)], default=0)
    layout = {"names": names, "formats": formats, "offsets": offsets, "itemsize": max(size, end)}
    if unreadable:
        try:
            return np.dtype(layout, metadata={UNREADABLE: dict(unreadable)})  # type: ignore[call-overload]
        except (ValueError, TypeError, OverflowError, MemoryError):
            pass  # _np_dtype words the refusal
    return _np_dtype(layout, f"section {section}")


def default_dtype(size: int) -> np.dtype:
    """dtype for a key/value without BTF: a native unsigned int when the size fits, else raw bytes."""
    if size in (1, 2, 4, 8):
        return np.dtype(f"u{size}")
    return np.dtype(f"V{size}")


def _np_dtype(spec: object, where: Union[str, Callable[[], str]]) -> np.dtype:
    """np.dtype(spec), its refusals (overlapping or duplicate fields, absurd sizes) as the BTF's fault."""
    try:
        return np.dtype(spec)  # type: ignore[call-overload]
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:
        raise ObjectFormatError(f"BTF type {where if isinstance(where, str) else where()} has no numpy layout: "
                                f"{exc}") from None


NUMBER_SIZES = (1, 2, 4, 8)


# the dtypes of plain numbers, made once: (signed, size) -> dtype
_NUMBERS = {(signed, size): np.dtype(("i" if signed else "u") + str(size)) for signed in (False, True)
            for size in NUMBER_SIZES}
_U8, _BOOL, _V16 = np.dtype("u8"), np.dtype("?"), np.dtype("V16")
POINTER_DTYPE = _U8  # what a pointer reads as


def int_dtype(size: int, encoding: int) -> Optional[np.dtype]:
    """The dtype of a BTF INT of ``size`` bytes and ``encoding`` (INT_SIGNED...), None unless it is a
    plain 1/2/4/8-byte number.

    Example: ``int_dtype(4, INT_SIGNED)`` is ``dtype('int32')``"""
    if size not in NUMBER_SIZES:
        return None
    if encoding & INT_BOOL:
        return _BOOL if size == 1 else _NUMBERS[False, size]
    return _NUMBERS[bool(encoding & INT_SIGNED), size]


def _dtype(btf: Btf, type_id: int, path: tuple[str, ...], inside: tuple[int, ...]) -> np.dtype:
    t = btf.resolve(type_id)
    kind = t.kind
    if kind == Kind.INT and t.size in NUMBER_SIZES:  # the common case first, no message built
        return int_dtype(t.size, t.int_encoding)  # type: ignore[return-value]  # (a number size)
    if kind == Kind.PTR:
        return _U8

    def where() -> str:  # for messages only: spelling a type's name costs more than the dtype
        return ".".join(path) or btf.type_name(type_id)

    if t.id in inside or len(inside) > _MAX_NESTING:
        raise ObjectFormatError(f"BTF type {where()}: it contains itself (or nests deeper than {_MAX_NESTING})")
    inside = inside + (t.id,)
    if t.kind in (Kind.INT, Kind.ENUM, Kind.ENUM64, Kind.FLOAT) and t.size not in NUMBER_SIZES + (16,):
        raise ObjectFormatError(f"BTF type {where()}: a {t.kind.name} of {t.size} bytes")
    if t.kind == Kind.INT:
        return _V16
    if t.kind in (Kind.ENUM, Kind.ENUM64):
        return _NUMBERS[t.signed, t.size] if t.size != 16 else _V16
    if t.kind == Kind.FLOAT:
        return _np_dtype(f"f{t.size}", where)
    if t.kind == Kind.ARRAY:
        elem = btf.resolve(t.type_id)
        # only plain `char` arrays are strings; `signed char`/`unsigned char` (__s8/__u8) are numbers
        if elem.kind == Kind.INT and elem.size == 1 and elem.name == "char":
            return _np_dtype(f"S{t.nelems}", where) if t.nelems else np.dtype("V0")
        sub = _dtype(btf, t.type_id, path, inside)
        # nelems 0: a flexible array member, no storage in the fixed part
        return _np_dtype((sub, (t.nelems,)), where)
    if t.kind in (Kind.STRUCT, Kind.UNION):
        names: list[str] = []
        formats: list[np.dtype] = []
        offsets: list[int] = []
        _flatten_members(btf, t, 0, path, names, formats, offsets, inside)
        return _np_dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": t.size}, where)
    if t.kind == Kind.VOID:
        raise BpfError(f"{where()}: void has no dtype")
    if t.kind == Kind.FWD:
        raise BpfError(f"{where()}: forward-declared type {t.name!r} has no layout in this BTF")
    raise BpfError(f"{where()}: BTF kind {t.kind.name} has no numpy dtype")


def _flatten_members(btf: Btf, t: BtfType, base: int, path: tuple[str, ...], names: list[str],
                     formats: list[np.dtype], offsets: list[int], inside: tuple[int, ...]) -> None:
    for i, m in enumerate(t.members):
        if m.bitfield_size or m.bit_offset % 8:
            raise BpfError(
                f"{'.'.join(path + (m.name or f'<member {i}>',))}: bitfields have no numpy dtype; "
                "use plain integer members in structs read from Python, or pass dtype= explicitly")
        off = base + m.bit_offset // 8
        mt = btf.resolve(m.type_id)
        if not m.name and mt.kind in (Kind.STRUCT, Kind.UNION):
            # anonymous struct/union: its members belong to the parent, as in C
            if mt.id in inside or len(inside) > _MAX_NESTING:
                raise ObjectFormatError(f"BTF type {btf.type_name(t.id)}: it contains itself")
            _flatten_members(btf, mt, off, path, names, formats, offsets, inside + (mt.id,))
            continue
        name = m.name or f"_anon{i}"
        names.append(name)
        formats.append(_dtype(btf, m.type_id, path + (name,), inside))
        offsets.append(off)


def _parse(raw: bytes, base: Optional[Btf]) -> list[BtfType]:
    if len(raw) < 24:
        raise ObjectFormatError(f"BTF blob too short ({len(raw)} bytes; the header alone is 24)")
    magic, version, flags, hdr_len = struct.unpack_from("<HBBI", raw, 0)
    if magic != BTF_MAGIC:
        raise ObjectFormatError(f"bad BTF magic {magic:#x} (big-endian BTF is not supported)")
    if version != 1:
        raise ObjectFormatError(f"BTF version {version} is not supported (only 1 exists)")
    if not 24 <= hdr_len <= len(raw):
        raise ObjectFormatError(f"BTF header length {hdr_len} is outside 24..{len(raw)}")
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", raw, 8)
    types_start = hdr_len + type_off
    strs_start = hdr_len + str_off
    for what, start, length in (("type", types_start, type_len), ("string", strs_start, str_len)):
        if start + length > len(raw):
            raise ObjectFormatError(f"BTF {what} section ({length} bytes at {start}) runs past the "
                                    f"{len(raw)}-byte blob")
    strings = raw[strs_start: strs_start + str_len]
    base_types = base.types if base else [BtfType(0, Kind.VOID, "")]
    base_strings = b""
    if base:
        b_hdr = struct.unpack_from("<HBBIIIII", base.raw, 0)
        base_strings = base.raw[b_hdr[3] + b_hdr[6]: b_hdr[3] + b_hdr[6] + b_hdr[7]]
    base_str_len = len(base_strings)  # split BTF: string offsets continue past the base's

    def name_at(off: int) -> str:
        src, at = (base_strings, off) if off < base_str_len else (strings, off - base_str_len)
        end = src.find(b"\0", at)
        if at >= len(src) or end < 0:
            raise ObjectFormatError(f"BTF name offset {off} is outside the string section or unterminated")
        try:
            return src[at:end].decode()
        except UnicodeDecodeError:
            raise ObjectFormatError(f"BTF name at offset {off} is not UTF-8: {src[at:end][:40]!r}") from None

    types = list(base_types)
    pos = types_start
    end_pos = types_start + type_len
    unpack3 = struct.Struct("<III").unpack_from
    while pos < end_pos:  # every type is at least 12 bytes: at most type_len / 12 rounds
        name_off, info, size_or_type = unpack3(raw, pos)
        pos += 12
        vlen = info & 0xFFFF
        try:
            kind = Kind((info >> 24) & 0x1F)
        except ValueError:
            raise ObjectFormatError(f"BTF type {len(types)}: unknown kind {(info >> 24) & 0x1F}") from None
        kflag = bool(info >> 31)
        t = BtfType(len(types), kind, name_at(name_off))
        if kind in _SIZED:
            t.size = size_or_type
        else:
            t.type_id = size_or_type
        if kind == Kind.INT:
            (v,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            t.int_encoding, t.int_offset, t.int_bits = (v >> 24) & 0xF, (v >> 16) & 0xFF, v & 0xFF
        elif kind == Kind.ARRAY:
            t.type_id, t.index_type_id, t.nelems = unpack3(raw, pos)
            pos += 12
        elif kind in (Kind.STRUCT, Kind.UNION):
            for _ in range(vlen):
                m_name, m_type, m_off = unpack3(raw, pos)
                pos += 12
                if kflag:
                    t.members.append(Member(name_at(m_name), m_type, m_off & 0xFFFFFF, m_off >> 24))
                else:
                    t.members.append(Member(name_at(m_name), m_type, m_off))
        elif kind == Kind.ENUM:
            t.signed = kflag
            for _ in range(vlen):
                e_name, e_val = struct.unpack_from("<Ii", raw, pos)
                pos += 8
                t.enum_values[name_at(e_name)] = e_val
        elif kind == Kind.ENUM64:
            t.signed = kflag
            for _ in range(vlen):
                e_name, lo, hi = unpack3(raw, pos)
                pos += 12
                t.enum_values[name_at(e_name)] = (hi << 32) | lo
        elif kind == Kind.FUNC_PROTO:
            for _ in range(vlen):
                p_name, p_type = struct.unpack_from("<II", raw, pos)
                pos += 8
                t.params.append((name_at(p_name), p_type))
        elif kind == Kind.VAR:
            (t.linkage,) = struct.unpack_from("<I", raw, pos)
            pos += 4
        elif kind == Kind.FUNC:
            t.linkage = vlen
        elif kind == Kind.DATASEC:
            for _ in range(vlen):
                t.vars.append(unpack3(raw, pos))
                pos += 12
        elif kind == Kind.DECL_TAG:
            pos += 4
        if pos > end_pos:
            raise ObjectFormatError(f"BTF type {t.id} ({kind.name}) runs past the end of the type section")
        types.append(t)
    return types


def _check_references(types: list[BtfType], first: int) -> None:
    """Every type id a type refers to exists (ids from ``first`` on are the ones just parsed)."""
    n = len(types)
    for t in types[first:]:
        refs: list[int] = []
        if t.kind not in _SIZED and t.kind != Kind.VOID:
            refs.append(t.type_id)  # pointee, typedef target, return type, variable type...
        if t.kind == Kind.ARRAY:
            refs.append(t.index_type_id)
        refs += [m.type_id for m in t.members]
        refs += [p for _, p in t.params]
        refs += [v for v, _, _ in t.vars]
        bad = [r for r in refs if not 0 <= r < n]
        if bad:
            raise ObjectFormatError(f"BTF type {t.id} ({t.kind.name} {t.name!r}) refers to type id {bad[0]}, "
                                    f"but the last type is {n - 1}")
        if t.kind in (Kind.PTR, Kind.TYPEDEF, Kind.VOLATILE, Kind.CONST, Kind.RESTRICT, Kind.TYPE_TAG) \
                and t.type_id == t.id:
            raise ObjectFormatError(f"BTF type {t.id} ({t.kind.name}) refers to itself")
