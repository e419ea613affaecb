"""An object's own BTF, editable: what the loader fixes up (data section sizes and variable offsets,
extern sections), marks (hidden functions as static) and sanitizes for older kernels before it
hands the BTF to the kernel.

Each type is kept as its list of u32 words, so an edit is a word change and :meth:`ObjBtf.encode`
is a concatenation. :meth:`ObjBtf.parse` validates everything the loader (or libbpf) would later
follow: every type id and string offset in range, known kinds, sane integers, no modifier or
by-value containment loops. A blob that fails is an :class:`~bpfkit.errors.ObjectFormatError`.

Example::

    btf = ObjBtf.parse(elf.find(".BTF").data)
    btf.name(1), btf.kind(1)
    raw = btf.encode()
"""
from __future__ import annotations

import struct
import sys
from array import array
from itertools import chain, islice
from operator import itemgetter
from typing import Optional

from ...btf.index import (KIND_ARRAY, KIND_DATASEC, KIND_DECL_TAG, KIND_ENUM, KIND_ENUM64, KIND_FLOAT, KIND_FUNC,
                          KIND_FUNC_PROTO, KIND_FWD, KIND_INT, KIND_NAMES, KIND_PTR, KIND_STRUCT, KIND_UNION, KIND_VAR,
                          MODIFIERS, header)
from ...errors import ObjectFormatError

__all__ = ["ObjBtf", "info_word"]

_MAX_TYPES = 1 << 20
_MAX_VLEN = 0xFFFF
_SIZED = frozenset((KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_DATASEC, KIND_FLOAT))
_REFS = MODIFIERS | {KIND_PTR, KIND_FUNC, KIND_VAR, KIND_DECL_TAG}  # one reference, in the third word
_NONVOID_REFS = {KIND_FUNC, KIND_VAR, KIND_DECL_TAG}  # the _REFS that may not point at void
_CHAINED = MODIFIERS | {KIND_VAR}  # the _REFS a loop can run through
_FOLLOWED = MODIFIERS | {KIND_VAR, KIND_DECL_TAG}  # resolve_size looks through these
# validate's table of the _REFS: (kind, may it be void, can a loop run through it)
_ONE_REF = tuple((k, k not in _NONVOID_REFS, k in _CHAINED) for k in sorted(_REFS))
_NAME_OFF = itemgetter(0)


def _bad(kinds: list[int], tid: int, why: str) -> ObjectFormatError:
    return ObjectFormatError(f"corrupt BTF: type [{tid}] ({KIND_NAMES[kinds[tid]]}): {why}")


def _refs_ok(kinds: list[int], n: int, tid: int, ids: list[int], what: str, void_ok: bool) -> None:
    for t in ids:
        if t >= n or (t == 0 and not void_ok):
            raise _bad(kinds, tid, f"{what} refers to type id {t} (there are {n - 1} types)")


def _names_ok(kinds: list[int], slen: int, tid: int, offs: list[int]) -> None:
    for off in offs:
        if off >= slen:
            raise _bad(kinds, tid, f"name offset {off} is outside the string section ({slen} bytes)")


def info_word(kind: int, vlen: int = 0, kflag: bool = False) -> int:
    """A type's info word: vlen, kind and kind flag."""
    return (int(kflag) << 31) | (kind << 24) | vlen


# words after the three common ones, per kind: (fixed, per vlen entry)
_EXTRA = [(0, 0)] * len(KIND_NAMES)
for _k in (KIND_INT, KIND_VAR, KIND_DECL_TAG):
    _EXTRA[_k] = (1, 0)
_EXTRA[KIND_ARRAY] = (3, 0)
for _k in (KIND_STRUCT, KIND_UNION, KIND_DATASEC, KIND_ENUM64):
    _EXTRA[_k] = (0, 3)
for _k in (KIND_ENUM, KIND_FUNC_PROTO):
    _EXTRA[_k] = (0, 2)


class ObjBtf:
    """Type id ``i`` is ``types[i]`` (``types[0]`` is void, an empty list)."""

    def __init__(self, types: list[list[int]], strings: bytearray) -> None:
        self.types = types
        self.strings = strings
        self._str_index: Optional[dict[bytes, int]] = None
        self._strs: Optional[dict[int, str]] = None  # offset -> decoded string
        self._by_off: Optional[dict[int, list[int]]] = None  # name offset -> type ids
        self._by_off_len = 0
        self._lookups = 0
        self.needed: Optional[frozenset[str]] = None  # BTF features the types use (btfload), once

    # -- parse / encode --------------------------------------------------------------
    @classmethod
    def parse(cls, raw: bytes) -> "ObjBtf":
        """Parse and validate an object's ``.BTF`` section."""
        hdr_len, type_off, type_len, str_off, str_len = header(raw)
        strings = bytearray(raw[hdr_len + str_off: hdr_len + str_off + str_len])
        if not strings or strings[0] != 0 or strings[-1] != 0:
            raise ObjectFormatError("BTF string section must start with an empty string and end with a NUL")
        words = list(struct.unpack_from(f"<{type_len // 4}I", raw, hdr_len + type_off))
        types: list[list[int]] = [[]]
        kinds = [0]
        p, n, n_kinds, extra = 0, len(words), len(KIND_NAMES), _EXTRA
        while p < n:
            if p + 3 > n:
                raise ObjectFormatError(f"BTF type [{len(types)}] is cut off by the end of the type section")
            info = words[p + 1]
            kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
            if not 1 <= kind < n_kinds:
                raise ObjectFormatError(f"BTF type [{len(types)}] has unknown kind {kind}")
            fixed, each = extra[kind]
            end = p + 3 + fixed + each * vlen
            if end > n:
                raise ObjectFormatError(f"BTF type [{len(types)}] ({KIND_NAMES[kind]}, vlen {vlen}) runs past the "
                                        "end of the type section")
            types.append(words[p:end])
            kinds.append(kind)
            p = end
        if len(types) > _MAX_TYPES:  # (checked once: the section's size already bounds the loop)
            raise ObjectFormatError("BTF has more than a million types")
        btf = cls(types, strings)
        btf.validate(kinds)
        return btf

    def encode(self) -> bytes:
        """The raw BTF blob (header, types, strings)."""
        words = array("I", chain.from_iterable(self.types))  # (4-byte on every Linux ABI)
        if sys.byteorder == "big":
            words.byteswap()  # the object's BTF is little-endian, as the reader required
        body = words.tobytes()
        hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(body), len(body), len(self.strings))
        return hdr + body + bytes(self.strings)

    def copy(self) -> "ObjBtf":
        return ObjBtf([list(t) for t in self.types], bytearray(self.strings))

    # -- reading ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.types)

    def kind(self, tid: int) -> int:
        return (self.types[tid][1] >> 24) & 0x1F if tid else 0

    def vlen(self, tid: int) -> int:
        return self.types[tid][1] & 0xFFFF if tid else 0

    def kflag(self, tid: int) -> bool:
        return bool(self.types[tid][1] >> 31) if tid else False

    def str_at(self, off: int) -> str:
        strs = self._strs
        if strs is None:
            strs = self._strs = {}
        s = strs.get(off)
        if s is None:  # decoded on first use: most strings are source lines for line info
            end = self.strings.find(b"\0", off)
            s = strs[off] = self.strings[off:end].decode(errors="replace")
        return s

    def name(self, tid: int) -> str:
        return self.str_at(self.types[tid][0]) if tid else ""

    def ref(self, tid: int) -> int:
        """size_or_type word: the referenced type of PTR/TYPEDEF/modifiers/FUNC/VAR."""
        return self.types[tid][2]

    def skip_mods(self, tid: int) -> int:
        while self.kind(tid) in MODIFIERS:  # loops were rejected by validate()
            tid = self.ref(tid)
        return tid

    def ids_named(self, name: str) -> list[int]:
        """Type ids called ``name``, in id order. The name is searched for in the string section
        (in C) and matched to the types by its offset (decoding every type's name into an index
        cost more than all the lookups an open makes); from the third lookup on, by an index of
        the types by name offset."""
        if not name:
            return [tid for tid in range(1, len(self.types)) if not self.name(tid)]
        key, strings = b"\0" + name.encode() + b"\0", self.strings
        offs = []
        pos = strings.find(key)
        while pos >= 0:  # (a string section may hold a name twice)
            offs.append(pos + 1)
            pos = strings.find(key, pos + 1)
        if not offs:
            return []
        types = self.types
        self._lookups += 1
        if self._lookups <= 2 and self._by_off is None:
            # opening an object looks up a name or two: one scan each is cheaper than an index
            return [tid for tid, t in enumerate(types) if t and t[0] in offs]
        if self._by_off is None or self._by_off_len != len(types):  # (rebuilt when types are added)
            by_off: dict[int, list[int]] = {}
            for tid in range(1, len(types)):
                by_off.setdefault(types[tid][0], []).append(tid)
            self._by_off, self._by_off_len = by_off, len(types)
        if len(offs) == 1:
            return list(self._by_off.get(offs[0], ()))
        return sorted(tid for off in offs for tid in self._by_off.get(off, ()))

    def find(self, name: str, kind: Optional[int] = None) -> int:
        """First type (of ``kind``) called ``name``; -1 if none."""
        for tid in self.ids_named(name):
            if self.name(tid) == name and (kind is None or self.kind(tid) == kind):  # names may have been edited
                return tid
        return -1

    def resolve_size(self, tid: int) -> int:
        """Size in bytes (libbpf's btf__resolve_size); -1 when the type has no size."""
        nelems = 1
        types = self.types
        for _ in range(32):
            if not tid:
                return -1  # void
            t = types[tid]
            kind = (t[1] >> 24) & 0x1F
            if kind in _SIZED:
                return nelems * t[2]
            if kind == KIND_PTR:
                return nelems * 8
            if kind in _FOLLOWED:
                tid = t[2]
            elif kind == KIND_ARRAY:
                nelems *= t[5]
                tid = t[3]
            else:
                return -1
        return -1

    def align_of(self, tid: int) -> int:
        """Alignment in bytes (libbpf's btf__align_of); 0 when it has none."""
        for _ in range(32):
            kind = self.kind(tid)
            if kind in (KIND_INT, KIND_ENUM, KIND_ENUM64, KIND_FLOAT):
                return min(8, self.types[tid][2])
            if kind == KIND_PTR:
                return 8
            if kind in MODIFIERS:
                tid = self.ref(tid)
            elif kind == KIND_ARRAY:
                tid = self.types[tid][3]
            elif kind in (KIND_STRUCT, KIND_UNION):
                t = self.types[tid]
                best = 1
                for i in range(self.vlen(tid)):
                    mtype, moff = t[3 + 3 * i + 1], t[3 + 3 * i + 2]
                    a = self.align_of(mtype)
                    if a <= 0:
                        return a
                    best = max(best, a)
                    bits = moff >> 24 if self.kflag(tid) else 0
                    bit_off = moff & 0xFFFFFF if self.kflag(tid) else moff
                    if bits == 0 and bit_off % (8 * a):
                        return 1  # packed
                return 1 if t[2] % best else best
            else:
                return 0
        return 0

    # -- editing ------------------------------------------------------------------------
    def add_string(self, s: str) -> int:
        """Offset of ``s`` in the string section, appending it if absent."""
        if self._str_index is None:
            self._str_index = {}
            pos = 0
            raw = bytes(self.strings)
            for part in raw.split(b"\0"):
                self._str_index.setdefault(part, pos)
                pos += len(part) + 1
        b = s.encode()
        off = self._str_index.get(b)
        if off is None:
            off = len(self.strings)
            self.strings += b + b"\0"
            self._str_index[b] = off
            if self._strs is not None:
                self._strs[off] = s
        return off

    def add_type(self, words: list[int]) -> int:
        self.types.append(words)
        return len(self.types) - 1

    def set_info(self, tid: int, kind: int, vlen: int, kflag: bool = False) -> None:
        self.types[tid][1] = info_word(kind, vlen, kflag)

    # -- validation ---------------------------------------------------------------------
    def validate(self, kinds: Optional[list[int]] = None) -> None:
        """Check every reference, name offset and per-kind field, and that no modifier chain or
        by-value containment loops; raise ObjectFormatError. ``kinds``: each type's kind, if known."""
        types = self.types
        n = len(types)
        slen = len(self.strings)
        if kinds is None:
            kinds = [0] + [(t[1] >> 24) & 0x1F for t in types[1:]]
        # the checks go kind by kind: a kind whose types all have one reference is checked with one
        # max() in C, and the rest loop over their own types only, with no per-type dispatch. The
        # helpers that word an error run only for a bad value (module functions: a closure would
        # put this function's locals in cells)
        groups: list[list[int]] = [[] for _ in KIND_NAMES]
        for tid, kind in enumerate(kinds):
            groups[kind].append(tid)
        if n > 1 and max(map(_NAME_OFF, islice(types, 1, None))) >= slen:
            for tid in range(1, n):
                _names_ok(kinds, slen, tid, [types[tid][0]])
        # what each type holds by value or names through a modifier (for the loop check below)
        edges: list[list[int]] = [[]] * n
        for kind, void_ok, chained in _ONE_REF:
            ids = groups[kind]
            if not ids:
                continue
            refs = [types[tid][2] for tid in ids]
            if max(refs) >= n or (not void_ok and 0 in refs):
                for tid in ids:
                    _refs_ok(kinds, n, tid, [types[tid][2]], "it", void_ok)
            if chained:
                for tid, ref in zip(ids, refs):
                    edges[tid] = [ref]
        for tid in groups[KIND_VAR]:
            if types[tid][3] > 2:
                raise _bad(kinds, tid, f"unknown variable linkage {types[tid][3]}")
        for tid in groups[KIND_INT]:
            t = types[tid]
            enc, off, bits = (t[3] >> 24) & 0xF, (t[3] >> 16) & 0xFF, t[3] & 0xFF
            if t[2] not in (1, 2, 4, 8, 16) or bits > 128 or off + bits > t[2] * 8 or enc not in (0, 1, 2, 4):
                raise _bad(kinds, tid, f"invalid integer (size {t[2]}, offset {off}, bits {bits}, encoding {enc})")
        for tid in groups[KIND_ARRAY]:
            t = types[tid]
            if not (0 < t[3] < n and 0 < t[4] < n):
                _refs_ok(kinds, n, tid, [t[3], t[4]], "its element or index", False)
            edges[tid] = [t[3]]
        for tid in groups[KIND_STRUCT] + groups[KIND_UNION]:
            t = types[tid]
            if t[1] & 0xFFFF:
                if max(t[3::3]) >= slen:
                    _names_ok(kinds, slen, tid, t[3::3])
                members = edges[tid] = t[4::3]
                if max(members) >= n or 0 in members:
                    _refs_ok(kinds, n, tid, members, "a member", False)
        for kind, step in ((KIND_ENUM, 2), (KIND_ENUM64, 3)):
            for tid in groups[kind]:
                t = types[tid]
                if t[1] & 0xFFFF and max(t[3::step]) >= slen:
                    _names_ok(kinds, slen, tid, t[3::step])
                if t[2] not in (1, 2, 4, 8):
                    raise _bad(kinds, tid, f"enum size {t[2]}")
        for tid in groups[KIND_FUNC_PROTO]:
            t = types[tid]
            if t[2] >= n:
                _refs_ok(kinds, n, tid, [t[2]], "its return type", True)
            if t[1] & 0xFFFF:
                if max(t[3::2]) >= slen:
                    _names_ok(kinds, slen, tid, t[3::2])
                if max(t[4::2]) >= n:
                    _refs_ok(kinds, n, tid, t[4::2], "a parameter", True)
        for tid in groups[KIND_FUNC]:
            t = types[tid]
            if kinds[t[2]] != KIND_FUNC_PROTO:
                raise _bad(kinds, tid, f"a function's type must be a func_proto, not {KIND_NAMES[kinds[t[2]]]}")
            if t[1] & 0xFFFF > 2:
                raise _bad(kinds, tid, f"unknown function linkage {t[1] & 0xFFFF}")
        for tid in groups[KIND_DATASEC]:
            vars_ = edges[tid] = types[tid][3::3]
            if vars_ and (max(vars_) >= n or 0 in vars_):
                _refs_ok(kinds, n, tid, vars_, "a variable", False)
            for vt in vars_:
                if kinds[vt] not in (KIND_VAR, KIND_FUNC):
                    raise _bad(kinds, tid, f"a variable is a {KIND_NAMES[kinds[vt]]}, not a var")
        for tid in groups[KIND_FWD]:
            if types[tid][1] & 0xFFFF:
                raise _bad(kinds, tid, "a forward declaration has members")
        self._check_loops(edges)

    def _check_loops(self, edges: list[list[int]]) -> None:
        """Modifier chains and by-value containment (struct in itself, array of itself) must end:
        libbpf and the loader follow them without a bound. ``edges[tid]``: what ``tid`` holds."""
        # Kahn's algorithm: what is left after peeling off every type nothing unpeeled contains
        # lies on a loop or under one (one pass over plain lists, no per-type iterators)
        n = len(edges)
        indeg = [0] * n
        for out in edges:
            for e in out:
                indeg[e] += 1
        ready = [tid for tid in range(1, n) if not indeg[tid]]
        left = n - 1
        while ready:
            tid = ready.pop()
            left -= 1
            for e in edges[tid]:
                if e:
                    indeg[e] -= 1
                    if not indeg[e]:
                        ready.append(e)
        if left:
            # every leftover type is contained by a leftover one: walk back until one repeats (on the loop)
            contained_by = {e: tid for tid in range(1, n) if indeg[tid] for e in edges[tid] if indeg[e]}
            tid = next(iter(contained_by.values()))
            seen = set()
            while tid not in seen:
                seen.add(tid)
                tid = contained_by[tid]
            raise ObjectFormatError(f"corrupt BTF: type [{tid}] ({KIND_NAMES[self.kind(tid)]}) contains "
                                    "itself (a modifier or by-value loop)")
