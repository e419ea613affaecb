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
from typing import Any, Optional

import numpy as np

from ... import _sys as sc
from ...btf.index import KIND_PTR, KIND_VAR
from ...btf import Btf
from ...errors import BpfError, FeatureNotSupported, ObjectFormatError
from ..dtypes import RECORD_MARKER, btf_dtype, datasec_dtype
from ..globals import GlobalVars
from ..parts import MapSpec, ProgramSpec
from .btfconv import to_btf
from .collect import collect
from .model import MAP_KCONFIG, Model

__all__ = ["Parsed", "parse"]


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
    try:
        return _parse(data, name)
    except (ObjectFormatError, FeatureNotSupported):
        raise
    except (BpfError, *_GAPS) as e:
        # the reader's checks should catch everything first; this keeps a gap from becoming a raw
        # exception (e.g. BTF whose layout numpy cannot express)
        raise ObjectFormatError(f"BPF object {name!r} is malformed: {e}") from None


def _record_types(model: Model, btf: Optional[Btf]) -> dict[str, np.dtype]:
    """What loader/dtypes.record_types finds (bpfkit.h's record-type markers), from the object's
    BTF words: only the marker variables are looked at."""
    out: dict[str, np.dtype] = {}
    obj = model.btf
    if obj is None or btf is None:
        return out
    for tid, t in enumerate(obj.types):
        if not t or (t[1] >> 24) & 0x1F != KIND_VAR or not obj.name(tid).startswith(RECORD_MARKER):
            continue
        ptr = obj.skip_mods(obj.ref(tid))
        if obj.kind(ptr) == KIND_PTR:
            try:
                out[obj.name(tid)[len(RECORD_MARKER):]] = btf.dtype(obj.ref(ptr))
            except BpfError:
                pass
    return out


def _parse(data: bytes, name: str) -> Parsed:
    model = collect(data, name)
    btf = to_btf(model.btf, model.btf_raw) if model.btf is not None else None
    programs: dict[str, ProgramSpec] = {}
    for p in model.entry_progs():
        programs[p.name] = ProgramSpec(
            name=p.name, section=p.section, type=sc.PROG_TYPE_NAMES.get(p.prog_type, str(p.prog_type)),
            prog_type=p.prog_type, expected_attach_type=p.expected_attach_type, insn_count=p.insn_count,
            autoload=p.autoload, flags=p.flags)
    maps: dict[str, MapSpec] = {}
    sections: dict[str, GlobalVars] = {}
    records = _record_types(model, btf)
    for m in model.maps:
        extra: dict[str, Any] = {}
        name = m.name
        if m.internal:
            name = extra["section"] = m.real_name
            if m.origin != MAP_KCONFIG and btf is not None and m.value_size:
                dt = extra["value_dtype"] = datasec_dtype(btf, m.real_name, m.value_size)
                if dt.itemsize != m.value_size:
                    raise ObjectFormatError(f"section {m.real_name}: its variables' layout is {dt.itemsize} "
                                            f"bytes, the section {m.value_size}")
                buf = bytearray(m.data)
                sections[m.real_name] = GlobalVars(buf, dt, m.real_name, owner=buf)
        else:
            extra["key_dtype"], kerr = btf_dtype(btf, m.key_type_id, m.key_size)
            extra["value_dtype"], verr = btf_dtype(btf, m.value_type_id, m.value_size)
            errs = [f"{what} type: {e}" for what, e in (("key", kerr), ("value", verr)) if e]
            if errs:
                extra["dtype_error"] = f"map {m.name!r}: " + "; ".join(errs)
            extra["record_dtype"] = records.get(m.name)
        maps[name] = MapSpec.from_reader(name=name, map_type=m.map_type, key_size=m.key_size,
                                         value_size=m.value_size, max_entries=m.max_entries, flags=m.flags,
                                         key_type_id=m.key_type_id, value_type_id=m.value_type_id,
                                         internal=m.internal, libbpf_name=m.libbpf_name, **extra)
    return Parsed(programs, maps, sections, btf, model)
