"""The object's BTF as :class:`~bpfkit.btf.Btf` (what ``ObjectSpec.btf`` and the numpy dtypes use),
built straight from the validated :class:`~bpfkit.loader.native.objbtf.ObjBtf` words instead of
parsing the encoded blob a second time; the usual dtypes (numbers, pointers, enums, arrays,
structs of them) are read from the words too, without making BtfTypes.

Example::

    btf = to_btf(model.btf, model.btf_raw)
    btf.datasec_dtype(".bss")
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Optional

import numpy as np

from ...btf import Btf, BtfType, Kind, Member
from ...btf.index import (KIND_ARRAY, KIND_DATASEC, KIND_ENUM, KIND_ENUM64, KIND_FLOAT, KIND_FUNC, KIND_FUNC_PROTO,
                          KIND_INT, KIND_PTR, KIND_STRUCT, KIND_UNION, KIND_VAR, MODIFIERS)
from ...btf.types import INT_SIGNED, NUMBER_SIZES, POINTER_DTYPE, int_dtype
from .objbtf import ObjBtf

__all__ = ["to_btf"]

_KINDS = [Kind(k) for k in range(len(Kind))]
_SIZED = (KIND_INT, KIND_STRUCT, KIND_UNION, KIND_ENUM, KIND_ENUM64, KIND_DATASEC, KIND_FLOAT)


def to_btf(obj: ObjBtf, raw: bytes) -> Btf:
    """A Btf with the same types as ``raw`` (the encoding of ``obj``). Its types are made from
    ``obj``'s words when first used: the dtypes of an object's maps touch a handful of its types,
    and converting every one took as long as parsing the ELF. ``obj`` must not change after this
    (the loader edits its BTF during collect, and sanitizes copies)."""
    words, name = obj.types, obj.str_at
    types: list[Optional[BtfType]] = [None] * len(words)
    types[0] = BtfType(0, Kind.VOID, "")
    # (partials pickle, lambdas do not)
    return Btf(types, raw, ids_named=partial(_ids_named, obj), make=partial(_convert_id, words, name),
               fast_dtype=partial(_word_dtype, obj, {}))


def _ids_named(obj: ObjBtf, name: str) -> list[int]:
    return obj.ids_named(name) if name else []  # (Btf.find never finds the anonymous types)


def _convert_id(words: list[list[int]], name: Callable[[int], str], tid: int) -> BtfType:
    return _convert(tid, words[tid], name)


def _convert(tid: int, w: list[int], name: Callable[[int], str]) -> BtfType:
    info = w[1]
    k, vlen, kflag = (info >> 24) & 0x1F, info & 0xFFFF, bool(info >> 31)
    t = BtfType(tid, _KINDS[k], name(w[0]))
    if k in _SIZED:
        t.size = w[2]
    else:
        t.type_id = w[2]
    if k == KIND_INT:
        v = w[3]
        t.int_encoding, t.int_offset, t.int_bits = (v >> 24) & 0xF, (v >> 16) & 0xFF, v & 0xFF
    elif k == KIND_ARRAY:
        t.type_id, t.index_type_id, t.nelems = w[3], w[4], w[5]
    elif k in (KIND_STRUCT, KIND_UNION):
        if kflag:
            t.members = [Member(name(w[i]), w[i + 1], w[i + 2] & 0xFFFFFF, w[i + 2] >> 24)
                         for i in range(3, 3 + 3 * vlen, 3)]
        else:
            t.members = [Member(name(w[i]), w[i + 1], w[i + 2]) for i in range(3, 3 + 3 * vlen, 3)]
    elif k == KIND_ENUM:
        t.signed = kflag
        t.enum_values = {name(w[i]): w[i + 1] - (1 << 32) if w[i + 1] >> 31 else w[i + 1]
                         for i in range(3, 3 + 2 * vlen, 2)}
    elif k == KIND_ENUM64:
        t.signed = kflag
        t.enum_values = {name(w[i]): (w[i + 2] << 32) | w[i + 1] for i in range(3, 3 + 3 * vlen, 3)}
    elif k == KIND_FUNC_PROTO:
        t.params = [(name(w[i]), w[i + 1]) for i in range(3, 3 + 2 * vlen, 2)]
    elif k == KIND_VAR:
        t.linkage = w[3]
    elif k == KIND_FUNC:
        t.linkage = vlen
    elif k == KIND_DATASEC:
        t.vars = [(w[i], w[i + 1], w[i + 2]) for i in range(3, 3 + 3 * vlen, 3)]
    return t


# -- dtypes from the words ----------------------------------------------------------------------
# Btf.dtype's rules (btf/types.py) for the types objects use, read from the words: None wherever
# those rules might say anything else, or refuse (bitfields, void, forward declarations,
# 16-byte floats, deep nesting, a layout numpy rejects), and Btf.dtype then decides and words the error.
# tests/test_native_loader.py checks both agree on every type of every shipped object.

_V16, _V0 = np.dtype("V16"), np.dtype("V0")
_FLOATS = {size: np.dtype(f"f{size}") for size in (2, 4, 8)}
_DEEPEST = 32  # (below Btf.dtype's own nesting limit: deeper types take its path)


def _word_dtype(obj: ObjBtf, memo: dict[int, Optional[np.dtype]], tid: int) -> Optional[np.dtype]:
    if tid in memo:
        return memo[tid]
    dt = memo[tid] = _dtype(obj, tid, 0) if 0 < tid < len(obj.types) else None
    return dt


def _dtype(obj: ObjBtf, tid: int, depth: int) -> Optional[np.dtype]:
    if not tid:
        return None  # void
    types = obj.types
    t = types[tid]
    kind = (t[1] >> 24) & 0x1F
    while kind in MODIFIERS:  # (validate() rejected modifier loops)
        tid = t[2]
        if not tid:
            return None
        t = types[tid]
        kind = (t[1] >> 24) & 0x1F
    if kind == KIND_INT:
        size = t[2]
        return int_dtype(size, (t[3] >> 24) & 0xF) if size in NUMBER_SIZES else _V16 if size == 16 else None
    if kind == KIND_PTR:
        return POINTER_DTYPE
    if kind in (KIND_ENUM, KIND_ENUM64):
        return int_dtype(t[2], INT_SIGNED if t[1] >> 31 else 0)
    if kind == KIND_FLOAT:
        return _FLOATS.get(t[2])
    if depth > _DEEPEST:
        return None
    try:
        if kind == KIND_ARRAY:
            elem, n = obj.skip_mods(t[3]), t[5]
            e = types[elem]
            if elem and (e[1] >> 24) & 0x1F == KIND_INT and e[2] == 1 and obj.name(elem) == "char":
                return np.dtype(f"S{n}") if n else _V0  # (only plain char arrays are strings)
            sub = _dtype(obj, t[3], depth + 1)
            return np.dtype((sub, (n,))) if sub is not None else None
        if kind in (KIND_STRUCT, KIND_UNION):
            names: list[str] = []
            formats: list[np.dtype] = []
            offsets: list[int] = []
            if not _members(obj, t, 0, names, formats, offsets, depth):
                return None
            return np.dtype({"names": names, "formats": formats, "offsets": offsets,
                             "itemsize": t[2]})
    except (ValueError, TypeError, OverflowError, MemoryError):
        return None
    return None


def _members(obj: ObjBtf, t: list[int], base: int, names: list[str], formats: list[np.dtype], offsets: list[int],
             depth: int) -> bool:
    types, kflag = obj.types, t[1] >> 31
    for i in range(t[1] & 0xFFFF):
        name_off, mtype, moff = t[3 + 3 * i], t[4 + 3 * i], t[5 + 3 * i]
        if kflag:
            if moff >> 24:
                return False  # a bitfield
            moff &= 0xFFFFFF
        if moff % 8:
            return False
        off = base + moff // 8
        name = obj.str_at(name_off)
        if not name:
            inner = obj.skip_mods(mtype)
            if inner and (types[inner][1] >> 24) & 0x1F in (KIND_STRUCT, KIND_UNION):
                # an anonymous struct/union: its members belong to the parent, as in C
                if depth > _DEEPEST or not _members(obj, types[inner], off, names, formats, offsets, depth + 1):
                    return False
                continue
            name = f"_anon{i}"
        dt = _dtype(obj, mtype, depth + 1)
        if dt is None:
            return False
        names.append(name)
        formats.append(dt)
        offsets.append(off)
    return True
