"""Opening an object with bpfkit's own reader: its programs, maps and global data as spec parts,
the same values libbpf reports for them (``loader/libbpf_open.py`` does it through libbpf; the
differential tests compare the two).

This is the one parser behind ``bpfkit.open()`` for both backends, so a malformed object is an
:class:`~bpfkit.errors.ObjectFormatError` before any byte of it reaches libbpf.

Example::

    parts = parse(elf_bytes, "count")
    parts.programs["on_getpid"].section     # 'tracepoint/syscalls/sys_enter_getpid'
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import partial
from typing import Callable, Optional, TypeVar

import numpy as np

from ... import _sys as sc
from ...btf.index import KIND_PTR, KIND_VAR
from ...btf import Btf
from ...btf.types import section_dtype, variable_dtype
from ...errors import BpfError, FeatureNotSupported, ObjectFormatError
from ..dtypes import RECORD_MARKER, datasec_dtype, map_dtypes
from ..globals import GlobalVars
from ..parts import MapDtypes, MapSpec, Once, ProgramSpec, value_dtype_of
from .btfconv import to_btf
from .collect import collect
from .model import MAP_KCONFIG, MapDef, Model

__all__ = ["Parsed", "parse"]

T = TypeVar("T")


@dataclass
class Parsed:
    """An object's parts, and the model the native backend loads from."""

    programs: dict[str, ProgramSpec]
    maps: dict[str, MapSpec]
    sections: dict[str, GlobalVars]
    btf: Optional[Btf]
    model: Model


_GAPS = (ValueError, IndexError, KeyError, TypeError, OverflowError, UnicodeDecodeError, RecursionError,
         struct.error)


def parse(data: bytes, name: str) -> Parsed:
    """Read ``data`` (a ``.bpf.o``) into spec parts; ObjectFormatError if it is malformed."""
    return _malformed_if_gap(name, partial(_parse, data, name))


def _malformed_if_gap(obj_name: str, read: Callable[[], T]) -> T:
    """``read()``, for the reader and the dtypes it makes later. Its checks should catch
    everything first; this keeps a gap from becoming a raw exception (e.g. BTF whose layout numpy
    cannot express)."""
    try:
        return read()
    except (ObjectFormatError, FeatureNotSupported):
        raise
    except (BpfError, *_GAPS) as e:
        raise ObjectFormatError(f"BPF object {obj_name!r} is malformed: {e}") from None


def _record_types(model: Model, btf: Optional[Btf]) -> dict[str, np.dtype]:
    """What loader/dtypes.record_types finds (bpfkit.h's record-type markers), from the object's
    BTF words: only the data sections' variables are looked at, not every type."""
    out: dict[str, np.dtype] = {}
    obj = model.btf
    if obj is None or btf is None or RECORD_MARKER.encode() not in obj.strings:
        return out
    types, cut = obj.types, len(RECORD_MARKER)
    for sid in model.datasec_ids:
        t = types[sid]
        for vt in t[3:3 + 3 * (t[1] & 0xFFFF):3]:
            name = obj.name(vt)
            if not name.startswith(RECORD_MARKER) or (types[vt][1] >> 24) & 0x1F != KIND_VAR:
                continue
            ptr = obj.skip_mods(types[vt][2])
            if obj.kind(ptr) == KIND_PTR:
                try:
                    out[name[cut:]] = btf.dtype(obj.ref(ptr))
                except BpfError:
                    pass
    return out


def _section_dtype(model: Model, btf: Btf, section: str, size: int) -> np.dtype:
    """loader/dtypes.datasec_dtype, with the section's variables read from the object's words
    instead of converting each to a BtfType (tests/test_native_loader.py checks both agree)."""
    obj, sid = model.btf, model.datasecs.get(section, -1)
    if obj is None or sid < 0:
        return datasec_dtype(btf, section, size)
    t = obj.types[sid]
    names: list[str] = []
    formats: list[np.dtype] = []
    offsets: list[int] = []
    unreadable: dict[str, str] = {}
    for i in range(3, 3 + 3 * obj.vlen(sid), 3):
        vt = t[i]
        if obj.kind(vt) == KIND_VAR:
            name = obj.name(vt)
            names.append(name)
            formats.append(variable_dtype(btf, name, obj.ref(vt), t[i + 2], unreadable))
            offsets.append(t[i + 1])
    return section_dtype(section, names, formats, offsets, max(t[2], size), unreadable)


def _parse(data: bytes, name: str) -> Parsed:
    model = collect(data, name)
    btf = to_btf(model.btf, model.btf_raw) if model.btf is not None else None
    programs: dict[str, ProgramSpec] = {}
    for p in model.entry_progs():
        programs[p.name] = ProgramSpec.from_reader(
            name=p.name, section=p.section, type=sc.PROG_TYPE_NAMES.get(p.prog_type, str(p.prog_type)),
            prog_type=p.prog_type, expected_attach_type=p.expected_attach_type, insn_count=p.insn_count,
            autoload=p.autoload, flags=p.flags)
    maps: dict[str, MapSpec] = {}
    sections: dict[str, GlobalVars] = {}
    # the dtypes are made when first asked for (MapSpec): Once makes each map's, and the record
    # types are looked for once for all of them
    records: Once[dict[str, np.dtype]] = Once(partial(_record_types, model, btf))
    for m in model.maps:
        mname = m.real_name if m.internal else m.name
        make: Callable[[], MapDtypes] = _no_dtypes
        section_btf = btf if m.internal and m.origin != MAP_KCONFIG and m.value_size > 0 else None
        if section_btf is not None:
            make = partial(_section_dtypes, model, section_btf, m)
        elif not m.internal:
            make = partial(map_dtypes, btf, m.name, m.map_type, m.key_type_id, m.key_size, m.value_type_id,
                           m.value_size, records)
        dtypes = Once(partial(_malformed_if_gap, name, make))
        if section_btf is not None:
            buf = bytearray(m.data)
            sections[mname] = GlobalVars(buf, partial(value_dtype_of, dtypes), mname, owner=buf, lazy=True)
        maps[mname] = MapSpec.from_reader(dtypes, name=mname, map_type=m.map_type, key_size=m.key_size,
                                          value_size=m.value_size, max_entries=m.max_entries, flags=m.flags,
                                          key_type_id=m.key_type_id, value_type_id=m.value_type_id,
                                          internal=m.internal, libbpf_name=m.libbpf_name,
                                          section=m.real_name if m.internal else "")
    return Parsed(programs, maps, sections, btf, model)


# -- the dtypes, when first asked for ------------------------------------------------------------

def _no_dtypes() -> MapDtypes:
    return MapDtypes(None, None, "", None)


def _section_dtypes(model: Model, btf: Btf, m: MapDef) -> MapDtypes:
    dt = _section_dtype(model, btf, m.real_name, m.value_size)
    if dt.itemsize != m.value_size:
        raise ObjectFormatError(f"section {m.real_name}: its variables' layout is {dt.itemsize} "
                                f"bytes, the section {m.value_size}")
    return MapDtypes(None, dt, "", None)

