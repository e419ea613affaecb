"""A numpy index over a raw BTF blob: what a loader needs from kernel-sized BTF without building a
Python object per type.

vmlinux BTF holds ~130k types; :class:`~bpfkit.btf.types.Btf` turns each into a dataclass (about a
second). :class:`BtfIndex` keeps the blob and five arrays (kind, vlen, kind flag, name offset,
size-or-type) plus each record's position, and decodes a type's members, parameters or enumerators
only when asked. Names are found by searching the string section, so a CO-RE relocation touches
only its candidates. Split (module) BTF continues a base index's type ids and string offsets.

Example::

    idx = BtfIndex.parse(open("/sys/kernel/btf/vmlinux", "rb").read())
    tid = idx.find("task_struct", KIND_STRUCT)
    [idx.str_at(m[0]) for m in idx.members(tid)][:3]      # ['thread_info', '__state', 'saved_state']
    idx.candidates("task_struct___old", (KIND_STRUCT,))     # ids whose essential name is task_struct
"""
from __future__ import annotations

import mmap
import struct
from typing import Optional, Sequence, Union

import numpy as np

from ..errors import ObjectFormatError

__all__ = [
    "BtfIndex", "essential_name", "KIND_VOID", "KIND_INT", "KIND_PTR", "KIND_ARRAY", "KIND_STRUCT", "KIND_UNION",
    "KIND_ENUM", "KIND_FWD", "KIND_TYPEDEF", "KIND_VOLATILE", "KIND_CONST", "KIND_RESTRICT", "KIND_FUNC",
    "KIND_FUNC_PROTO", "KIND_VAR", "KIND_DATASEC", "KIND_FLOAT", "KIND_DECL_TAG", "KIND_TYPE_TAG", "KIND_ENUM64",
    "KIND_NAMES", "MODIFIERS", "header", "Composite", "Buffer",
]

Buffer = Union[bytes, mmap.mmap]  # a BTF blob: bytes, or the kernel's BTF file mapped read-only

KIND_VOID, KIND_INT, KIND_PTR, KIND_ARRAY, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_FWD = range(8)
KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_FUNC, KIND_FUNC_PROTO, KIND_VAR = range(8, 15)
KIND_DATASEC, KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64 = range(15, 20)
KIND_NAMES = ("void", "int", "ptr", "array", "struct", "union", "enum", "fwd", "typedef", "volatile", "const",
              "restrict", "func", "func_proto", "var", "datasec", "float", "decl_tag", "type_tag", "enum64")
# skipped when resolving a type to what it is (libbpf's skip_mods_and_typedefs)
MODIFIERS = frozenset((KIND_TYPEDEF, KIND_VOLATILE, KIND_CONST, KIND_RESTRICT, KIND_TYPE_TAG))

BTF_MAGIC = 0xEB9F
_MAX_DEPTH = 32  # modifier chains and nested arrays longer than this are malformed (libbpf's limit)

# record length in u32 words after the 3-word header: fixed part, and words per vlen entry
_FIXED = np.zeros(32, np.uint32)
_FIXED[[KIND_INT, KIND_VAR, KIND_DECL_TAG]] = 1
_FIXED[KIND_ARRAY] = 3
_PER = np.zeros(32, np.uint32)
_PER[[KIND_STRUCT, KIND_UNION, KIND_DATASEC, KIND_ENUM64]] = 3
_PER[[KIND_ENUM, KIND_FUNC_PROTO]] = 2
_VALID_KIND = np.zeros(32, bool)
_VALID_KIND[1:20] = True
_HAS_SIZE = frozenset((KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_DATASEC, KIND_FLOAT))


def essential_name(name: str) -> str:
    """A name without its ``___flavor`` suffix (everything from the last ``X___Y`` separator), as
    CO-RE matches names: ``task_struct___old`` -> ``task_struct``.

    Example::

        essential_name("task_struct___pre_5_14")   # 'task_struct'
    """
    for i in range(len(name) - 5, -1, -1):
        if name[i] != "_" and name[i + 1:i + 4] == "___" and name[i + 4] != "_":
            return name[:i + 1]
    return name


def header(raw: Buffer) -> tuple[int, int, int, int, int]:
    """(hdr_len, type_off, type_len, str_off, str_len) of a raw BTF blob, checked against its size."""
    if len(raw) < 24:
        raise ObjectFormatError(f"BTF blob of {len(raw)} bytes is shorter than its 24-byte header")
    magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", raw, 0)
    if magic != BTF_MAGIC:
        raise ObjectFormatError(f"bad BTF magic {magic:#x} (expected {BTF_MAGIC:#x}; big-endian BTF is not "
                                "supported)")
    if version != 1:
        raise ObjectFormatError(f"unsupported BTF version {version}")
    if hdr_len < 24 or hdr_len > len(raw):
        raise ObjectFormatError(f"BTF header length {hdr_len} is outside the blob ({len(raw)} bytes)")
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", raw, 8)
    if type_off % 4 or type_len % 4:
        raise ObjectFormatError("BTF type section is not 4-byte aligned")
    for what, off, size in (("type", type_off, type_len), ("string", str_off, str_len)):
        if hdr_len + off + size > len(raw):
            raise ObjectFormatError(f"BTF {what} section ({off}+{size}) runs past the end of the blob")
    if type_off + type_len > str_off and str_off + str_len > type_off:
        raise ObjectFormatError("BTF type and string sections overlap")
    return hdr_len, type_off, type_len, str_off, str_len


class Composite:
    """A struct or union's members, decoded: parallel lists, ``first`` maps a name to its first
    member index, ``anonymous`` lists the unnamed members (embedded structs/unions) in order."""

    __slots__ = ("names", "types", "bit_offs", "bit_sizes", "first", "anonymous")

    def __init__(self, names: list[str], types: list[int], bit_offs: list[int], bit_sizes: list[int]) -> None:
        self.names, self.types, self.bit_offs, self.bit_sizes = names, types, bit_offs, bit_sizes
        self.first: dict[str, int] = {}
        self.anonymous: list[int] = []
        for i, n in enumerate(names):
            if not n:
                self.anonymous.append(i)
            else:
                self.first.setdefault(n, i)


class BtfIndex:
    """Parsed-on-demand BTF. Type ids are global: a split BTF's first id is its base's count.
    Accessors raise :class:`ObjectFormatError` for ids or offsets outside the data."""

    def __init__(self, raw: Buffer, strings: bytes, words: np.ndarray, starts: np.ndarray,
                 base: Optional["BtfIndex"] = None) -> None:
        self.raw = raw
        self.base = base
        self.strings = strings
        self.words = words
        self.start_id: int = base.count if base is not None else 1
        self.str_base = len(base.strings) if base is not None else 0
        self.starts = starts
        # kind and name offset of every type: what candidate search filters on (the rest of a record
        # is decoded per type, on demand)
        self.kinds = ((words[starts + 1] >> 24) & 0x1F).astype(np.uint8) if len(starts) else np.zeros(0, np.uint8)
        self.name_offs = words[starts] if len(starts) else np.zeros(0, np.uint32)
        self.count: int = self.start_id + len(starts)
        # a typed view of the same bytes (numpy scalars are slow to index one by one)
        self._mv = memoryview(words.view(np.uint8)).cast("I")  # type: ignore[arg-type]
        self._kind_list: Optional[list[int]] = None
        self._sarr: Optional[np.ndarray] = None
        self._composites: dict[int, Composite] = {}
        self._candidates: dict[tuple[str, tuple[int, ...]], list[int]] = {}
        self._kind_ids: dict[Optional[tuple[int, ...]], np.ndarray] = {}

    # -- construction ---------------------------------------------------------------
    @classmethod
    def parse(cls, raw: Buffer, base: Optional["BtfIndex"] = None) -> "BtfIndex":
        """Index a raw BTF blob (``.BTF`` section, ``/sys/kernel/btf/*``); ``base`` for split BTF."""
        hdr_len, type_off, type_len, str_off, str_len = header(raw)
        strings = raw[hdr_len + str_off: hdr_len + str_off + str_len]
        if base is None and (not strings or strings[0] != 0):
            raise ObjectFormatError("BTF string section must start with an empty string")
        if strings and strings[-1] != 0:
            raise ObjectFormatError("BTF string section is not NUL-terminated")
        words = np.frombuffer(raw, dtype="<u4", count=type_len // 4, offset=hdr_len + type_off)
        return cls(raw, strings, words, _record_starts(words), base)

    @classmethod
    def from_arrays(cls, raw: Buffer, starts: np.ndarray, base: Optional["BtfIndex"] = None) -> "BtfIndex":
        """Rebuild from a cached record-start array; raises ObjectFormatError if it does not fit ``raw``."""
        hdr_len, type_off, type_len, str_off, str_len = header(raw)
        words = np.frombuffer(raw, dtype="<u4", count=type_len // 4, offset=hdr_len + type_off)
        starts = np.asarray(starts, dtype=np.int64)
        if not _starts_fit(words, starts, quick=True):
            raise ObjectFormatError("cached BTF index does not match the BTF data")
        return cls(raw, raw[hdr_len + str_off: hdr_len + str_off + str_len], words, starts, base)

    # -- basics -----------------------------------------------------------------------
    def _own(self, tid: int) -> int:
        i = tid - self.start_id
        if i < 0 or tid >= self.count:
            raise ObjectFormatError(f"BTF type id {tid} is out of range (1..{self.count - 1})")
        return i

    def kind(self, tid: int) -> int:
        """BTF_KIND_* of type ``tid`` (0 for void)."""
        if tid < self.start_id:
            return 0 if tid == 0 or self.base is None else self.base.kind(tid)
        if self._kind_list is None:
            self._kind_list = self.kinds.tolist()
        try:
            return self._kind_list[tid - self.start_id]
        except IndexError:
            raise ObjectFormatError(f"BTF type id {tid} is out of range (1..{self.count - 1})") from None

    def _head(self, tid: int) -> tuple["BtfIndex", int]:
        """(the index that owns tid, the word position of its record)."""
        if tid < self.start_id and self.base is not None:
            return self.base._head(tid)
        if tid == 0:
            raise ObjectFormatError("BTF type id 0 (void) has no record")
        return self, int(self.starts[self._own(tid)])

    def info(self, tid: int) -> tuple[int, int, bool, int, int]:
        """(kind, vlen, kind_flag, name_off, size_or_type) of a type; void is all zeros."""
        if tid == 0:
            return 0, 0, False, 0, 0
        owner, p = self._head(tid)
        name_off, info, st = owner._mv[p], owner._mv[p + 1], owner._mv[p + 2]
        return (info >> 24) & 0x1F, info & 0xFFFF, bool(info >> 31), name_off, st

    def str_at(self, off: int) -> str:
        """The string at offset ``off`` of the (base + own) string sections."""
        if off < self.str_base and self.base is not None:
            return self.base.str_at(off)
        s = self.strings
        off -= self.str_base
        if not 0 <= off < len(s):
            raise ObjectFormatError(f"BTF string offset {off + self.str_base} is out of range")
        end = s.find(b"\0", off)
        try:
            return s[off:end].decode()
        except UnicodeDecodeError:
            raise ObjectFormatError(f"BTF string at offset {off + self.str_base} is not UTF-8") from None

    def name(self, tid: int) -> str:
        """Name of a type ('' for anonymous types and void)."""
        return self.str_at(self.info(tid)[3]) if tid else ""

    def size(self, tid: int) -> int:
        """The size field of INT/STRUCT/UNION/ENUM/ENUM64/DATASEC/FLOAT."""
        return self.info(tid)[4]

    def ref(self, tid: int) -> int:
        """The type a PTR/TYPEDEF/modifier/FUNC/VAR/DECL_TAG refers to."""
        t = self.info(tid)[4]
        if t >= self.count:
            raise ObjectFormatError(f"BTF type [{tid}] refers to type id {t}, out of range")
        return t

    def _extra(self, tid: int, n: int) -> tuple[int, ...]:
        owner, p = self._head(tid)
        end = p + 3 + n
        if end > len(owner._mv):
            raise ObjectFormatError(f"BTF type [{tid}] runs past the type section")
        return tuple(owner._mv[p + 3:end])

    # -- kind-specific data -------------------------------------------------------------
    def int_info(self, tid: int) -> tuple[int, int, int]:
        """(encoding, bit offset, bits) of an INT."""
        (v,) = self._extra(tid, 1)
        return (v >> 24) & 0x0F, (v >> 16) & 0xFF, v & 0xFF

    def array(self, tid: int) -> tuple[int, int, int]:
        """(element type, index type, nelems) of an ARRAY."""
        elem, index, n = self._extra(tid, 3)
        if elem >= self.count or index >= self.count:
            raise ObjectFormatError(f"BTF array [{tid}] refers to a type id out of range")
        return elem, index, n

    def members(self, tid: int) -> list[tuple[int, int, int]]:
        """(name_off, type, offset) of a STRUCT/UNION's members; ``offset`` is the raw word (with
        the kind flag set: bitfield size << 24 | bit offset)."""
        vlen = self.info(tid)[1]
        w = self._extra(tid, 3 * vlen)
        out = [(w[i], w[i + 1], w[i + 2]) for i in range(0, 3 * vlen, 3)]
        for _, t, _ in out:
            if t >= self.count:
                raise ObjectFormatError(f"BTF struct [{tid}] has a member of type id {t}, out of range")
        return out

    def member_bits(self, tid: int, idx: int) -> tuple[int, int]:
        """(bit offset, bitfield size) of member ``idx``, honouring the kind flag."""
        c = self.composite(tid)
        if not 0 <= idx < len(c.types):
            raise ObjectFormatError(f"BTF struct [{tid}] has no member #{idx}")
        return c.bit_offs[idx], c.bit_sizes[idx]

    def composite(self, tid: int) -> "Composite":
        """A STRUCT/UNION's members decoded once (names, types, bit offsets and sizes, a name index):
        CO-RE walks the same few kernel structs over and over."""
        c = self._composites.get(tid)
        if c is None:
            _, vlen, kflag, _, _ = self.info(tid)
            w = self._extra(tid, 3 * vlen)
            offs = w[2::3]
            types = list(w[1::3])
            for t in types:
                if t >= self.count:
                    raise ObjectFormatError(f"BTF struct [{tid}] has a member of type id {t}, out of range")
            c = Composite([self.str_at(n) for n in w[0::3]], types,
                          [o & 0xFFFFFF for o in offs] if kflag else list(offs),
                          [o >> 24 for o in offs] if kflag else [0] * vlen)
            self._composites[tid] = c
        return c

    def enum_values(self, tid: int) -> list[tuple[int, int]]:
        """(name_off, value) of an ENUM/ENUM64's enumerators; signed when the kind flag is set."""
        kind, vlen, kflag, _, _ = self.info(tid)
        if kind == KIND_ENUM:
            w = self._extra(tid, 2 * vlen)
            vals = [(w[i], w[i + 1]) for i in range(0, 2 * vlen, 2)]
            return [(n, v - (1 << 32) if kflag and v >> 31 else v) for n, v in vals]
        w = self._extra(tid, 3 * vlen)
        vals = [(w[i], w[i + 1] | (w[i + 2] << 32)) for i in range(0, 3 * vlen, 3)]
        return [(n, v - (1 << 64) if kflag and v >> 63 else v) for n, v in vals]

    def params(self, tid: int) -> list[tuple[int, int]]:
        """(name_off, type) of a FUNC_PROTO's parameters."""
        vlen = self.info(tid)[1]
        w = self._extra(tid, 2 * vlen)
        out = [(w[i], w[i + 1]) for i in range(0, 2 * vlen, 2)]
        for _, t in out:
            if t >= self.count:
                raise ObjectFormatError(f"BTF func_proto [{tid}] has a parameter of type id {t}, out of range")
        return out

    def var_linkage(self, tid: int) -> int:
        """Linkage of a VAR (0 static, 1 global, 2 extern)."""
        return self._extra(tid, 1)[0]

    def datasec_vars(self, tid: int) -> list[tuple[int, int, int]]:
        """(var type, offset, size) of a DATASEC's variables."""
        vlen = self.info(tid)[1]
        w = self._extra(tid, 3 * vlen)
        return [(w[i], w[i + 1], w[i + 2]) for i in range(0, 3 * vlen, 3)]

    # -- resolution ---------------------------------------------------------------------
    def skip_mods(self, tid: int) -> int:
        """Follow typedefs and const/volatile/restrict/type tags to the type they name."""
        for _ in range(_MAX_DEPTH):
            if self.kind(tid) not in MODIFIERS:
                return tid
            tid = self.ref(tid)
        raise ObjectFormatError(f"BTF modifier chain at type [{tid}] is too long (a loop?)")

    def resolve_size(self, tid: int) -> int:
        """Size in bytes of a type (libbpf's btf__resolve_size); ObjectFormatError if it has none."""
        nelems = 1
        for _ in range(_MAX_DEPTH):
            kind = self.kind(tid)
            if kind in _HAS_SIZE:
                size = self.size(tid)
                break
            if kind == KIND_PTR:
                size = 8
                break
            if kind in MODIFIERS or kind in (KIND_VAR, KIND_DECL_TAG):
                tid = self.ref(tid)
            elif kind == KIND_ARRAY:
                tid, _, n = self.array(tid)
                nelems *= n
            else:
                raise ObjectFormatError(f"BTF type [{tid}] ({KIND_NAMES[kind]}) has no size")
        else:
            raise ObjectFormatError(f"BTF type [{tid}]: too deeply nested to size")
        total = nelems * size
        if total > 0xFFFFFFFF:
            raise ObjectFormatError(f"BTF type [{tid}] is larger than 4 GiB")
        return total

    def kind_name(self, tid: int) -> str:
        return KIND_NAMES[self.kind(tid)] if self.kind(tid) < len(KIND_NAMES) else "unknown"

    # -- search -------------------------------------------------------------------------
    def _str_array(self) -> np.ndarray:
        if self._sarr is None:
            self._sarr = np.frombuffer(self.strings, dtype=np.uint8)
        return self._sarr

    def _bytes_at(self, offs: np.ndarray, length: int) -> np.ndarray:
        """``length`` bytes of the string section at each (global) offset, 0-padded past the end."""
        if self.base is not None and len(offs) and int(offs.min()) < self.str_base:
            own = offs >= self.str_base
            out = np.zeros((len(offs), length), np.uint8)
            out[own] = self._bytes_at(offs[own], length)
            out[~own] = self.base._bytes_at(offs[~own], length)
            return out
        arr = self._str_array()
        pos = (offs.astype(np.int64) - self.str_base)[:, None] + np.arange(length)
        inside = pos < len(arr)
        return np.where(inside, arr[np.minimum(pos, len(arr) - 1)], 0).astype(np.uint8)

    def _ids_of_kinds(self, kinds: Optional[Sequence[int]]) -> np.ndarray:
        key = tuple(sorted(kinds)) if kinds is not None else None
        ids = self._kind_ids.get(key)
        if ids is None:
            if key is None:
                ids = np.arange(len(self.kinds), dtype=np.int64)
            else:
                want = np.zeros(32, bool)
                want[list(key)] = True
                ids = np.flatnonzero(want[self.kinds])
            self._kind_ids[key] = ids
        return ids

    def _named(self, name: bytes, kinds: Optional[Sequence[int]], flavored: bool) -> np.ndarray:
        """Own type ids (of ``kinds``) named exactly ``name`` or, if ``flavored``, ``name___*``."""
        sel = self._ids_of_kinds(kinds)
        if not len(sel) or not name:
            return np.zeros(0, np.int64)
        offs = self.name_offs[sel]
        first = self._bytes_at(offs, 1)[:, 0]
        sel, offs = sel[first == name[0]], offs[first == name[0]]
        if not len(sel):
            return sel + self.start_id
        got = self._bytes_at(offs, len(name) + 4)
        body = (got[:, :len(name)] == np.frombuffer(name, np.uint8)).all(axis=1)
        end = got[:, len(name)]
        keep = body & (end == 0)
        if flavored:
            keep |= body & (got[:, len(name):len(name) + 3] == ord("_")).all(axis=1)
        return sel[keep] + self.start_id

    def find(self, name: str, kind: Optional[int] = None, own_only: bool = False) -> int:
        """The first type called ``name`` (of ``kind``), base types first; -1 if none
        (libbpf's btf__find_by_name_kind)."""
        if self.base is not None and not own_only:
            found = self.base.find(name, kind)
            if found > 0:
                return found
        ids = self._named(name.encode(), None if kind is None else (kind,), flavored=False)
        return int(ids[0]) if len(ids) else -1

    def candidates(self, local_name: str, kinds: Sequence[int]) -> list[int]:
        """Own type ids of a kind in ``kinds`` whose essential name equals ``local_name``'s, ascending
        (libbpf's CO-RE candidate search, in one BTF)."""
        ess = essential_name(local_name)
        if not ess:
            return []
        key = (ess, tuple(sorted(kinds)))
        found = self._candidates.get(key)
        if found is None:
            found = [tid for tid in self._named(ess.encode(), kinds, flavored=True).tolist()
                     if essential_name(self.name(tid)) == ess]
            self._candidates[key] = found
        return list(found)

    def type_ids(self) -> range:
        """The ids of this BTF's own types."""
        return range(self.start_id, self.count)


def _record_starts(words: np.ndarray) -> np.ndarray:
    """Word position of every type record. The walk is sequential (a record's length depends on its
    kind and vlen), so the lengths a record would have at every word are computed in bulk first."""
    n = len(words)
    if n == 0:
        return np.zeros(0, np.int64)
    kinds = ((words >> 24) & 0x1F).astype(np.intp)
    lengths = (_PER[kinds] * (words & 0xFFFF) + (3 + _FIXED[kinds])).tolist()
    valid = _VALID_KIND[kinds].tolist()
    starts: list[int] = []
    add = starts.append
    p = 0
    last = n - 2
    while p < last:
        if not valid[p + 1]:
            raise ObjectFormatError(f"BTF type #{len(starts) + 1} has unknown kind "
                                    f"{(int(words[p + 1]) >> 24) & 0x1F}")
        add(p)
        p += lengths[p + 1]
    if p != n:
        raise ObjectFormatError(f"BTF type #{len(starts) + 1} runs past the end of the type section")
    return np.asarray(starts, dtype=np.int64)


def _starts_fit(words: np.ndarray, starts: np.ndarray, quick: bool = False) -> bool:
    """Whether ``starts`` are the record positions of ``words``. ``quick`` checks an evenly spread
    sample of 4096 records (a cache whose content hash matched can only be damaged, not stale)."""
    n = len(words)
    if len(starts) == 0:
        return n == 0
    if starts[0] != 0 or starts[-1] + 3 > n or (len(starts) > 1 and not bool((np.diff(starts[::997]) > 0).all())):
        return False
    if quick and len(starts) > 8192:
        # strictly increasing (a step of 2+ records), so no np.unique: on numpy 2 it imports numpy.ma
        pick = np.linspace(0, len(starts) - 1, 4096).astype(np.int64)
        nxt = np.append(starts, n)[pick + 1]
        info = words[starts[pick] + 1]
        kinds = ((info >> 24) & 0x1F).astype(np.intp)
        lengths = _PER[kinds].astype(np.int64) * (info & 0xFFFF) + 3 + _FIXED[kinds]
        return bool(_VALID_KIND[kinds].all() and np.array_equal(starts[pick] + lengths, nxt))
    info = words[starts + 1]
    kinds = ((info >> 24) & 0x1F).astype(np.intp)
    lengths = _PER[kinds].astype(np.int64) * (info & 0xFFFF) + 3 + _FIXED[kinds]
    ends = starts + lengths
    return bool(_VALID_KIND[kinds].all() and np.array_equal(ends[:-1], starts[1:]) and ends[-1] == n)
