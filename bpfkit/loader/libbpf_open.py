"""Opening an object with libbpf: its programs, maps and global data as spec parts.

libbpf parses the ELF (``bpf_object__open_mem``); what it reports becomes :class:`ProgramSpec` /
:class:`MapSpec` entries with numpy dtypes from the object's BTF. Sections this libbpf version
does not know get their program type from bpfkit's section table, as a newer libbpf would.

Example::

    parts = parse(elf_bytes, "count")
    parts.programs["on_getpid"].section     # 'tracepoint/syscalls/sys_enter_getpid'
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Optional

from .. import _sys as sc
from ..btf import Btf, Kind
from ..errors import ObjectFormatError
from ..sections import find
from . import libbpf as lb
from .dtypes import datasec_dtype, map_dtypes, record_types
from .globals import GlobalVars
from .parts import MapSpec, Once, ProgramSpec
from .precheck import check_object

__all__ = ["Parsed", "parse"]

_MAX_MAP_VALUE = 1 << 30  # KMALLOC_MAX_SIZE-ish: larger sizes are corrupt words, not maps


@dataclass
class Parsed:
    """An object's parts as a backend read them."""

    programs: dict[str, ProgramSpec]
    maps: dict[str, MapSpec]
    sections: dict[str, GlobalVars]
    btf: Optional[Btf]


def parse(data: bytes, name: str) -> Parsed:
    """Read ``data`` (a ``.bpf.o``) with libbpf into spec parts; ObjectFormatError if bpfkit's checks or
    libbpf refuse it."""
    check_object(data, name)  # libbpf 1.1 crashes on some corrupt BTF: it sees only checked objects
    obj, keep = lb.open_object(data, name)
    try:
        return _read(obj, name)
    except (UnicodeDecodeError, ValueError, TypeError, OverflowError) as e:
        # what libbpf accepted but bpfkit's checks did not cover (a non-UTF-8 name...): still a typed error
        raise ObjectFormatError(f"{name}: malformed BPF object: {e}") from None
    finally:
        lb.lib.bpf_object__close(obj)
        del keep


def _read(obj: object, name: str) -> Parsed:
    raw_btf = lb.object_btf(obj)
    btf = Btf.parse(raw_btf) if raw_btf else None
    programs: dict[str, ProgramSpec] = {}
    for p in lb.programs(obj):
        t = lb.lib.bpf_program__type(p)
        pname = lb.string(lb.lib.bpf_program__name(p))
        programs[pname] = ProgramSpec(
            name=pname, section=lb.string(lb.lib.bpf_program__section_name(p)),
            type=lb.prog_type_name(t), prog_type=t,
            expected_attach_type=lb.lib.bpf_program__expected_attach_type(p),
            insn_count=int(lb.lib.bpf_program__insn_cnt(p)), autoload=bool(lb.lib.bpf_program__autoload(p)),
            flags=int(lb.lib.bpf_program__flags(p)))
        _fill_from_table(programs[pname])
    maps: dict[str, MapSpec] = {}
    sections: dict[str, GlobalVars] = {}
    records = Once(partial(record_types, btf))  # (looked for only if a ring or perf buffer asks)
    for m in lb.maps(obj):
        mname = lb.string(lb.lib.bpf_map__name(m))
        internal = bool(lb.lib.bpf_map__is_internal(m))
        spec = MapSpec(
            name=mname, map_type=lb.lib.bpf_map__type(m), key_size=lb.lib.bpf_map__key_size(m),
            value_size=lb.lib.bpf_map__value_size(m), max_entries=lb.lib.bpf_map__max_entries(m),
            flags=lb.lib.bpf_map__map_flags(m), key_type_id=lb.lib.bpf_map__btf_key_type_id(m),
            value_type_id=lb.lib.bpf_map__btf_value_type_id(m), internal=internal, libbpf_name=mname)
        if max(spec.key_size, spec.value_size) > _MAX_MAP_VALUE:
            raise ObjectFormatError(f"{name}: map {mname!r} declares a {spec.key_size}-byte key and a "
                                    f"{spec.value_size}-byte value; no kernel takes over {_MAX_MAP_VALUE}")
        if internal:
            spec.section = _section_of(mname, btf)
            spec.name = spec.section
            if spec.section != ".kconfig" and btf is not None and spec.value_size:
                dt = datasec_dtype(btf, spec.section, spec.value_size)
                buf = bytearray(spec.value_size)
                init = lb.initial_value(m)
                buf[: len(init)] = init
                spec.value_dtype = dt
                sections[spec.section] = GlobalVars(buf, dt, spec.section, owner=buf)
        else:
            spec.key_dtype, spec.value_dtype, spec.dtype_error, spec.record_dtype = map_dtypes(
                btf, mname, spec.map_type, spec.key_type_id, spec.key_size, spec.value_type_id, spec.value_size,
                records)
        maps[spec.name] = spec
    return Parsed(programs, maps, sections, btf)


def _fill_from_table(ps: ProgramSpec) -> None:
    """Programs in sections this libbpf does not know (it reports BPF_PROG_TYPE_UNSPEC: e.g.
    ``uprobe.multi``, ``tcx/ingress`` on libbpf 1.1) get the type, attach type and flags the
    section table gives, as a newer libbpf would."""
    m = find(ps.section)
    if m is None:
        return
    d = m.definition
    ps.flags |= d.prog_flags  # sleepable sections say so in the spec (libbpf adds the flag only at load)
    if ps.prog_type != sc.BPF_PROG_TYPE_UNSPEC:
        return
    ps.prog_type, ps.expected_attach_type = d.prog_type, d.attach_type
    ps.type = sc.PROG_TYPE_NAMES[ps.prog_type]


def _section_of(map_name: str, btf: Optional[Btf]) -> str:
    """libbpf names internal maps '<obj prefix>.<section>'; recover the section."""
    if btf is not None:
        secs = sorted((t.name for t in btf if t.kind == Kind.DATASEC), key=len, reverse=True)
        for sec in secs:
            if map_name.endswith(sec) or map_name.endswith(sec[: len(map_name)]):
                return sec
    dot = map_name.find(".")
    return map_name[dot:] if dot >= 0 else map_name
