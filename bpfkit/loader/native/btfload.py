"""The object's BTF as the kernel gets it: hidden global functions marked static, then kinds this
kernel does not know rewritten into ones it does (libbpf's sanitizer, so objects built by a newer
clang load on older kernels), then BPF_BTF_LOAD.

A kernel that refuses the BTF anyway does not stop the load (as with libbpf): maps are made
without type information and programs without func/line info, and the reason is logged.

Example::

    blob = kernel_btf(model, missing=missing_features(model.btf))
    fd = load_btf(blob, "count")        # -1 if the kernel refused it
"""
from __future__ import annotations

import logging
from typing import Iterable, Optional

from ... import _sys as sc
from ...btf.index import (KIND_CONST, KIND_DATASEC, KIND_DECL_TAG, KIND_ENUM, KIND_ENUM64, KIND_FLOAT, KIND_FUNC,
                          KIND_FUNC_PROTO, KIND_INT, KIND_STRUCT, KIND_TYPE_TAG, KIND_TYPEDEF, KIND_UNION, KIND_VAR)
from ...errors import BpfError
from .model import Model
from .objbtf import ObjBtf, info_word
from .target import all_btf_kinds_known, btf_kind_supported

__all__ = ["FEATURES", "needed_features", "missing_features", "kernel_btf", "sanitize", "load_btf"]

_log = logging.getLogger("bpfkit.loader")
FEATURES = ("func", "global_func", "datasec", "float", "decl_tag", "type_tag", "enum64")
_FUNC_STATIC, _FUNC_GLOBAL = 0, 1


def needed_features(btf: ObjBtf) -> set[str]:
    """The BTF features (keys of :data:`FEATURES`) the object's BTF uses."""
    need = set()
    for t in btf.types[1:]:
        info = t[1]
        kind = (info >> 24) & 0x1F
        if kind in (KIND_FUNC, KIND_FUNC_PROTO):
            need.add("func")
            if kind == KIND_FUNC and info & 0xFFFF == _FUNC_GLOBAL:
                need.add("global_func")
        elif kind in (KIND_VAR, KIND_DATASEC):
            need.add("datasec")
        elif kind == KIND_FLOAT:
            need.add("float")
        elif kind == KIND_DECL_TAG:
            need.add("decl_tag")
        elif kind == KIND_TYPE_TAG:
            need.add("type_tag")
        elif kind == KIND_ENUM64 or (kind == KIND_ENUM and info >> 31):
            need.add("enum64")
    return need


def missing_features(btf: ObjBtf) -> set[str]:
    """The features the object's BTF uses that this kernel lacks (each probed once per process)."""
    if all_btf_kinds_known():
        return set()  # no type needs looking at
    if btf.needed is None:
        btf.needed = frozenset(needed_features(btf))
    return {f for f in btf.needed if not btf_kind_supported(f)}


def sanitize(btf: ObjBtf, missing: Iterable[str]) -> None:
    """Rewrite, in place, what a kernel lacking ``missing`` features would refuse (libbpf's rules)."""
    missing = set(missing)
    if not missing:
        return
    placeholder = 0
    for tid in range(1, len(btf)):
        t = btf.types[tid]
        kind, vlen = btf.kind(tid), btf.vlen(tid)
        if ("datasec" in missing and kind == KIND_VAR) or ("decl_tag" in missing and kind == KIND_DECL_TAG):
            t[1], t[2], t[3] = info_word(KIND_INT), 1, 8  # a 1-byte int: never bigger than what it replaces
        elif "datasec" in missing and kind == KIND_DATASEC:
            t[0] = btf.add_string(btf.name(tid).replace(".", "_"))
            t[1] = info_word(KIND_STRUCT, vlen)
            words = []
            for i in range(vlen):
                vt, off, _ = t[3 + 3 * i: 6 + 3 * i]
                words += [btf.types[vt][0], vt, off * 8]
            t[3:] = words
        elif "func" in missing and kind == KIND_FUNC_PROTO:
            t[1], t[2] = info_word(KIND_ENUM, vlen), 4
        elif "func" in missing and kind == KIND_FUNC:
            t[1] = info_word(KIND_TYPEDEF)
        elif "global_func" in missing and kind == KIND_FUNC:
            t[1] = info_word(KIND_FUNC, _FUNC_STATIC)
        elif "float" in missing and kind == KIND_FLOAT:
            t[0], t[1] = 0, info_word(KIND_STRUCT)
        elif "type_tag" in missing and kind == KIND_TYPE_TAG:
            t[0], t[1] = 0, info_word(KIND_CONST)
        elif "enum64" in missing and kind == KIND_ENUM:
            t[1] = info_word(KIND_ENUM, vlen)
        elif "enum64" in missing and kind == KIND_ENUM64:
            if not placeholder:
                placeholder = btf.add_type([btf.add_string("enum64_placeholder"), info_word(KIND_INT), 1, 8])
            t[1] = info_word(KIND_UNION, vlen)
            for i in range(vlen):
                t[4 + 3 * i], t[5 + 3 * i] = placeholder, 0


def kernel_btf(model: Model, missing: Optional[Iterable[str]] = None) -> Optional[bytes]:
    """The blob to load for ``model`` (None without BTF): static-marked, then sanitized for
    ``missing`` (default: what this kernel lacks)."""
    if model.btf is None:
        return None
    missing = missing_features(model.btf) if missing is None else set(missing)
    if not missing and not [p for p in model.progs if p.mark_static and model.is_subprog(p)]:
        return model.btf_raw  # nothing to change: the open-time encoding is the kernel's
    btf = model.btf.copy()
    for p in model.progs:
        if not (p.mark_static and model.is_subprog(p)):
            continue
        for tid in range(1, len(btf)):
            if btf.kind(tid) == KIND_FUNC and btf.vlen(tid) == _FUNC_GLOBAL and btf.name(tid) == p.name:
                btf.types[tid][1] = info_word(KIND_FUNC, _FUNC_STATIC)
                break
    sanitize(btf, missing)
    return btf.encode()


def load_btf(blob: Optional[bytes], obj_name: str) -> int:
    """BPF_BTF_LOAD; -1 (and a logged warning) if the kernel refuses it."""
    if blob is None:
        return -1
    try:
        return sc.btf_load(blob, f"BTF of {obj_name!r}")
    except BpfError as e:
        _log.warning("%s: the kernel refused the object's BTF (%s); loading without it: maps get no key/value "
                     "types and verifier logs no source lines", obj_name, e)
        return -1
