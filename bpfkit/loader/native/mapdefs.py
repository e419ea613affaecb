"""BTF-defined maps: the ``struct { __uint(type, ...); __type(key, ...); ... } name SEC(".maps")``
declarations of ``bpf_helpers.h``, read the way libbpf reads them (integers are encoded as the
length of an array behind a pointer), and the ``__array(values, ...)`` initialisers of
map-in-map and program-array maps (``.rel.maps``).

Example::

    maps = user_maps(btf, maps_section, btf.find(".maps", KIND_DATASEC))
    maps[0].map_type, maps[0].key_size    # (BPF_MAP_TYPE_HASH, 4)
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Optional

from ... import _sys as sc
from ...btf.index import KIND_ARRAY, KIND_DATASEC, KIND_FUNC_PROTO, KIND_NAMES, KIND_PTR, KIND_STRUCT, KIND_VAR
from ...errors import ObjectFormatError
from .elf import ElfObject, Section
from .model import MAP_USER, PIN_BY_NAME, MapDef, map_def_error
from .objbtf import ObjBtf

__all__ = ["user_maps", "collect_map_slots", "adjust_ringbuf_size"]

_MAP_IN_MAP = (sc.BPF_MAP_TYPE_ARRAY_OF_MAPS, sc.BPF_MAP_TYPE_HASH_OF_MAPS)
# the plain integer attributes of a definition: member name -> MapDef field
_INT_ATTRS = {"type": "map_type", "max_entries": "max_entries", "map_flags": "flags", "numa_node": "numa_node",
              "map_extra": "map_extra"}
_VAR_GLOBAL = 1


def _int_field(btf: ObjBtf, map_name: str, mtype: int, field: str) -> int:
    """``int (*field)[N]`` encodes N."""
    t = btf.skip_mods(mtype)
    if btf.kind(t) != KIND_PTR:
        raise map_def_error(map_name, f"attribute {field!r}: expected a pointer, got {KIND_NAMES[btf.kind(t)]}")
    arr = btf.ref(t)
    if btf.kind(arr) != KIND_ARRAY:
        raise map_def_error(map_name, f"attribute {field!r}: expected an array, got {KIND_NAMES[btf.kind(arr)]}")
    return btf.types[arr][5]


def _parse_def(btf: ObjBtf, map_name: str, def_id: int, m: MapDef, outer: bool) -> None:
    """Fill ``m`` from struct ``def_id``; an ``__array(values, struct {...})`` inner definition
    becomes ``m.inner`` (``outer`` is False when parsing an inner definition itself)."""
    t = btf.types[def_id]
    vlen = btf.vlen(def_id)
    for i in range(vlen):
        name = btf.str_at(t[3 + 3 * i])
        mtype = t[4 + 3 * i]
        attr = _INT_ATTRS.get(name)
        if attr is not None:
            setattr(m, attr, _int_field(btf, map_name, mtype, name))
        elif name in ("key_size", "value_size"):
            sz = _int_field(btf, map_name, mtype, name)
            attr = name
            if getattr(m, attr) and getattr(m, attr) != sz:
                raise map_def_error(map_name, f"conflicting {name.replace('_', ' ')} {getattr(m, attr)} != {sz}")
            setattr(m, attr, sz)
        elif name in ("key", "value"):
            if btf.kind(mtype) != KIND_PTR:
                raise map_def_error(map_name, f"{name} spec is not a pointer: {KIND_NAMES[btf.kind(mtype)]}")
            target = btf.ref(mtype)
            sz = btf.resolve_size(target)
            if sz < 0:
                raise map_def_error(map_name, f"can't determine {name} size for type [{target}]")
            cur = getattr(m, f"{name}_size")
            if cur and cur != sz:
                raise map_def_error(map_name, f"conflicting {name} size {cur} != {sz}")
            setattr(m, f"{name}_size", sz)
            setattr(m, f"{name}_type_id", target)
        elif name == "values":
            is_mim = m.map_type in _MAP_IN_MAP
            is_prog_array = m.map_type == sc.BPF_MAP_TYPE_PROG_ARRAY
            desc = "map-in-map inner" if is_mim else "prog-array value"
            if not outer:
                raise map_def_error(map_name, "multi-level inner maps are not supported")
            if i != vlen - 1:
                raise map_def_error(map_name, f"'{name}' member should be last")
            if not is_mim and not is_prog_array:
                raise map_def_error(map_name, "'values' needs a map-in-map or prog-array map type")
            if m.value_size and m.value_size != 4:
                raise map_def_error(map_name, f"conflicting value size {m.value_size} != 4")
            m.value_size = 4
            if btf.kind(mtype) != KIND_ARRAY or btf.types[mtype][5]:
                raise map_def_error(map_name, f"{desc} spec is not a zero-sized array")
            ptr = btf.skip_mods(btf.types[mtype][3])
            if btf.kind(ptr) != KIND_PTR:
                raise map_def_error(map_name, f"{desc} def is of unexpected kind {KIND_NAMES[btf.kind(ptr)]}")
            target = btf.skip_mods(btf.ref(ptr))
            if is_prog_array:
                if btf.kind(target) != KIND_FUNC_PROTO:
                    raise map_def_error(map_name, f"prog-array value def is of unexpected kind "
                                        f"{KIND_NAMES[btf.kind(target)]}")
                continue
            if btf.kind(target) != KIND_STRUCT:
                raise map_def_error(map_name, f"map-in-map inner def is of unexpected kind "
                                    f"{KIND_NAMES[btf.kind(target)]}")
            inner = MapDef(name=f"{map_name}.inner", origin=MAP_USER, sec_idx=m.sec_idx)
            _parse_def(btf, inner.name, target, inner, False)
            m.inner = inner
        elif name == "pinning":
            if not outer:
                raise map_def_error(map_name, "inner def can't be pinned")
            val = _int_field(btf, map_name, mtype, name)
            if val not in (0, PIN_BY_NAME):
                raise map_def_error(map_name, f"invalid pinning value {val}")
            m.pinning = val
        else:
            # libbpf opens strictly: an unknown field is probably a typo that would otherwise be ignored
            raise map_def_error(map_name, f"unknown field {name!r} in its definition")
    if m.map_type == sc.BPF_MAP_TYPE_UNSPEC:
        raise map_def_error(map_name, "map type isn't specified")


@lru_cache(maxsize=1)
def _page_size() -> int:
    return os.sysconf("SC_PAGE_SIZE")


def adjust_ringbuf_size(size: int) -> int:
    """Ring buffers need a power-of-2 multiple of the page size: round up as libbpf does."""
    page = _page_size()
    if size == 0 or (size % page == 0 and (size // page) & (size // page - 1) == 0):
        return size
    mul = 1
    while mul <= 0xFFFFFFFF // page:
        if mul * page > size:
            return mul * page
        mul <<= 1
    return size


def user_maps(btf: Optional[ObjBtf], sec: Section, sec_id: int) -> list[MapDef]:
    """Maps declared in ``.maps`` (ELF section ``sec``, BTF DATASEC ``sec_id``), in declaration order."""
    if btf is None:
        raise ObjectFormatError("the object declares maps in .maps but has no BTF (compile with -g)")
    if sec_id < 0:
        raise ObjectFormatError("DATASEC '.maps' not found in the object's BTF")
    out = []
    t = btf.types[sec_id]
    for i in range(btf.vlen(sec_id)):
        var_id, off, size = t[3 + 3 * i: 6 + 3 * i]
        name = btf.name(var_id)
        if not name:
            raise ObjectFormatError(f"map #{i} in .maps has an empty name")
        if off + size > len(sec.data):
            raise map_def_error(name, "BTF data is corrupted (its definition lies outside .maps)")
        if btf.kind(var_id) != KIND_VAR:
            raise map_def_error(name, f"unexpected var kind {KIND_NAMES[btf.kind(var_id)]}")
        if btf.types[var_id][3] != _VAR_GLOBAL:
            raise map_def_error(name, "only global map definitions are supported (not static or extern)")
        def_id = btf.skip_mods(btf.ref(var_id))
        if btf.kind(def_id) != KIND_STRUCT:
            raise map_def_error(name, f"unexpected def kind {KIND_NAMES[btf.kind(def_id)]}")
        if btf.types[def_id][2] > size:
            raise map_def_error(name, "invalid def size")
        m = MapDef(name=name, origin=MAP_USER, sec_idx=sec.index, sec_offset=off, btf_var_idx=i)
        _parse_def(btf, name, def_id, m, True)
        if m.map_type in (sc.BPF_MAP_TYPE_RINGBUF, sc.BPF_MAP_TYPE_USER_RINGBUF):
            m.max_entries = adjust_ringbuf_size(m.max_entries)
        if m.inner is not None and m.inner.map_type in (sc.BPF_MAP_TYPE_RINGBUF, sc.BPF_MAP_TYPE_USER_RINGBUF):
            m.inner.max_entries = adjust_ringbuf_size(m.inner.max_entries)
        if m.pinning == PIN_BY_NAME:
            m.pin_path = f"/sys/fs/bpf/{name}"
        out.append(m)
    return out


def collect_map_slots(btf: ObjBtf, elf: ElfObject, rel_sec: Section, maps_sec: Section, sec_id: int,
                      maps: list[MapDef], prog_names: dict[str, tuple[int, int, bool]]) -> None:
    """``.rel.maps``: which slot of which map-in-map / prog-array map points at which map or program.
    ``sec_id``: the .maps DATASEC; ``prog_names``: entry program name -> (section index, byte offset,
    is a subprogram)."""
    if sec_id < 0:
        raise ObjectFormatError("DATASEC '.maps' not found in the object's BTF")
    vars_ = btf.types[sec_id][3:]
    for i, rel in enumerate(elf.rels(rel_sec)):
        if rel.sym >= len(elf.symbols):
            raise ObjectFormatError(f".maps relo #{i}: symbol {rel.sym} not found")
        sym = elf.symbols[rel.sym]
        owner = None
        for m in maps:
            if m.sec_idx != maps_sec.index or m.btf_var_idx < 0:
                continue
            off, size = vars_[3 * m.btf_var_idx + 1], vars_[3 * m.btf_var_idx + 2]
            if off <= rel.offset and rel.offset + 8 <= off + size:
                owner = m
                break
        if owner is None:
            raise ObjectFormatError(f".maps relo #{i}: cannot find the map '{sym.name}' at offset {rel.offset}")
        if owner.map_type in _MAP_IN_MAP:
            if sym.shndx != maps_sec.index:
                raise ObjectFormatError(f".maps relo #{i}: '{sym.name}' isn't a BTF-defined map")
            if owner.map_type == sc.BPF_MAP_TYPE_HASH_OF_MAPS and owner.key_size != 4:
                raise map_def_error(owner.name, "a hash-of-maps should have a 4-byte key")
            if not any(m.name == sym.name for m in maps):
                raise ObjectFormatError(f".maps relo #{i}: '{sym.name}' isn't a valid map reference")
        elif owner.map_type == sc.BPF_MAP_TYPE_PROG_ARRAY:
            found = prog_names.get(sym.name)
            if found is None:
                raise ObjectFormatError(f".maps relo #{i}: '{sym.name}' isn't a valid program reference")
            if found[2] or (found[0], found[1]) != (sym.shndx, sym.value):
                raise ObjectFormatError(f".maps relo #{i}: '{sym.name}' isn't an entry-point program")
        else:
            raise map_def_error(owner.name, "only map-in-map and prog-array maps take initial values")
        def_id = btf.skip_mods(btf.ref(vars_[3 * owner.btf_var_idx]))
        vlen = btf.vlen(def_id)
        if vlen == 0 or btf.str_at(btf.types[def_id][3 + 3 * (vlen - 1)]) != "values":
            raise map_def_error(owner.name, "initial values need a 'values' member last in its definition")
        moff_word = btf.types[def_id][3 + 3 * (vlen - 1) + 2]
        moff = (moff_word & 0xFFFFFF if btf.kflag(def_id) else moff_word) // 8
        rel_off = rel.offset - vars_[3 * owner.btf_var_idx + 1]
        if rel_off < moff or (rel_off - moff) % 8:
            raise map_def_error(owner.name, f"initial value #{i} is not at a 'values' slot")
        owner.init_slots[(rel_off - moff) // 8] = sym.name
