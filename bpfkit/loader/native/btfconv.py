"""The object's BTF as :class:`~bpfkit.btf.Btf` (what ``ObjectSpec.btf`` and the numpy dtypes use),
built straight from the validated :class:`~bpfkit.loader.native.objbtf.ObjBtf` words instead of
parsing the encoded blob a second time.

Example::

    btf = to_btf(model.btf, model.btf_raw)
    btf.datasec_dtype(".bss")
"""
from __future__ import annotations

from functools import partial
from typing import Callable, Optional

from ...btf import Btf, BtfType, Kind, Member
from ...btf.index import (KIND_ARRAY, KIND_DATASEC, KIND_ENUM, KIND_ENUM64, KIND_FLOAT, KIND_FUNC, KIND_FUNC_PROTO,
                          KIND_INT, KIND_STRUCT, KIND_UNION, KIND_VAR)
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
    return Btf(types, raw, ids_named=partial(_ids_named, obj), make=partial(_convert_id, words, name))


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
