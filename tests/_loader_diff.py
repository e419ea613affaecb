"""Load one object with both backends and describe what the kernel got, so the two can be compared:
each program's translated instructions (map references as map names), func/line info counts and
attach target; each map's definition, key/value BTF type names and initial contents.

Used by tests/test_loader_differential.py; kept importable on its own for debugging::

    .venv/bin/python -c "import tests._loader_diff as d; print(d.differences(d.open_spec('tests/count')))"
"""
from __future__ import annotations

import ctypes
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import bpfkit
from bpfkit import _sys as sc
from bpfkit.btf.index import BtfIndex
from bpfkit.loader.parts import Loaded

_LD_IMM64 = 0x18


@dataclass
class Outcome:
    """A backend's load: what the kernel holds, or the error it raised."""

    progs: dict[str, dict[str, Any]] = field(default_factory=dict)
    maps: dict[str, dict[str, Any]] = field(default_factory=dict)
    error: Optional[BaseException] = None


def open_spec(source: Union[str, bytes], name: Optional[str] = None) -> bpfkit.ObjectSpec:
    return bpfkit.open(source, name, loader="native")


def _prog_info(fd: int) -> tuple[sc.ProgInfo, bytes, list[int], bytes, bytes]:
    """The program's info, translated instructions, map ids, and func/line info records as the
    kernel keeps them (instruction offsets, BTF ids, source lines)."""
    info = sc.prog_info(fd)
    n_insns, n_maps = info.xlated_prog_len, info.nr_map_ids
    buf = ctypes.create_string_buffer(n_insns)
    ids = (ctypes.c_uint32 * max(n_maps, 1))()
    funcs = ctypes.create_string_buffer(max(info.nr_func_info * info.func_info_rec_size, 1))
    lines = ctypes.create_string_buffer(max(info.nr_line_info * info.line_info_rec_size, 1))
    info2 = sc.ProgInfo(xlated_prog_len=n_insns, xlated_prog_insns=ctypes.addressof(buf), nr_map_ids=n_maps,
                        map_ids=ctypes.addressof(ids), nr_func_info=info.nr_func_info,
                        func_info_rec_size=info.func_info_rec_size, func_info=ctypes.addressof(funcs),
                        nr_line_info=info.nr_line_info, line_info_rec_size=info.line_info_rec_size,
                        line_info=ctypes.addressof(lines))
    sc.obj_info(fd, info2, "prog")
    return (info2, buf.raw[: info2.xlated_prog_len], list(ids[: info2.nr_map_ids]),
            funcs.raw[: info.nr_func_info * info.func_info_rec_size],
            lines.raw[: info.nr_line_info * info.line_info_rec_size])


def _normalized(insns: bytes, map_names: dict[int, str]) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    i = 0
    n = len(insns) // 8
    while i < n:
        code, regs, off, imm = struct.unpack_from("<BBhi", insns, i * 8)
        src = regs >> 4
        if code == _LD_IMM64 and i + 1 < n and src in (sc.BPF_PSEUDO_MAP_FD, sc.BPF_PSEUDO_MAP_VALUE):
            _, _, _, imm2 = struct.unpack_from("<BBhi", insns, (i + 1) * 8)
            out.append((code, regs, off, "map:" + map_names.get(imm, f"?{imm}"), imm2))
            i += 2
            continue
        out.append((code, regs, off, imm))
        i += 1
    return out


def _btf_names(btf_id: int, *type_ids: int) -> tuple[str, ...]:
    if not btf_id:
        return tuple("" for _ in type_ids)
    idx = BtfIndex.parse(sc.btf_raw_by_id(btf_id))
    return tuple(f"{idx.kind_name(t)} {idx.name(t)}" if t else "" for t in type_ids)


def snapshot(loaded: Loaded, spec: bpfkit.ObjectSpec) -> Outcome:
    out = Outcome()
    ids: dict[int, str] = {}
    for name, fd in loaded.map_fds.items():
        if fd < 0:
            continue
        info = sc.map_info(fd)
        ids[info.id] = name
        m: dict[str, Any] = {
            "type": info.type, "key_size": info.key_size, "value_size": info.value_size,
            "max_entries": info.max_entries, "flags": info.map_flags, "name": info.name.decode(),
            "map_extra": info.map_extra, "btf": bool(info.btf_id),
            "key/value types": _btf_names(info.btf_id, info.btf_key_type_id, info.btf_value_type_id),
        }
        ms = spec.maps[name]
        if ms.internal:
            value = ctypes.create_string_buffer(info.value_size)
            sc.map_lookup(fd, ctypes.c_uint32(0), value)
            m["contents"] = value.raw
        out.maps[name] = m
    for name, fd in loaded.prog_fds.items():
        if fd < 0:
            continue  # not loaded (autoload off): libbpf reports a negative fd for it
        info, insns, map_ids, func_recs, line_recs = _prog_info(fd)
        out.progs[name] = {
            "type": info.type, "name": info.name.decode(), "gpl": info.gpl_compatible,
            "xlated": _normalized(insns, ids), "maps": sorted(ids.get(i, f"?{i}") for i in map_ids),
            "func_info": info.nr_func_info, "line_info": info.nr_line_info, "btf": bool(info.btf_id),
            "func_info records": func_recs, "line_info records": line_recs,
            "attach_btf_id": info.attach_btf_id, "verified_insns": info.verified_insns,
        }
    return out


def load_with(spec: bpfkit.ObjectSpec, loader: str, **kw: Any) -> Outcome:
    """Load ``spec`` with one backend (``native`` or ``libbpf``) and snapshot it, then close it."""
    try:
        if loader == "libbpf":
            from bpfkit.loader import libbpf_load

            loaded = libbpf_load.load(spec.elf, spec.name, spec.programs, spec.maps, spec.sections)
        else:
            from bpfkit.loader.native import backend

            loaded = backend.load(spec.model, spec.name, spec.programs, spec.maps, spec.sections, **kw)
    except bpfkit.BpfError as e:
        return Outcome(error=e)
    try:
        return snapshot(loaded, spec)
    finally:
        loaded.close()


def differences(spec: bpfkit.ObjectSpec, **native_kw: Any) -> tuple[list[str], Outcome, Outcome]:
    """What differs between the two backends' loads of ``spec`` ([] when nothing)."""
    lib = load_with(spec, "libbpf")
    nat = load_with(spec, "native", **native_kw)
    diffs: list[str] = []
    if (lib.error is None) != (nat.error is None):
        diffs.append(f"libbpf: {lib.error!r}; native: {nat.error!r}")
        return diffs, lib, nat
    if lib.error is not None:
        if type(lib.error) is not type(nat.error):
            diffs.append(f"both refused, as different errors: libbpf {lib.error!r}; native {nat.error!r}")
        return diffs, lib, nat
    for kind, a, b in (("program", lib.progs, nat.progs), ("map", lib.maps, nat.maps)):
        if set(a) != set(b):
            diffs.append(f"{kind}s: libbpf {sorted(a)} native {sorted(b)}")
        for name in sorted(set(a) & set(b)):
            for key in a[name]:
                if a[name][key] != b[name][key]:
                    diffs.append(f"{kind} {name} {key}: " + _first_diff(a[name][key], b[name][key]))
    return diffs, lib, nat


def _first_diff(a: Any, b: Any) -> str:
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b)):
            if x != y:
                return f"#{i} libbpf {x} native {y} (lengths {len(a)}/{len(b)})"
        return f"lengths {len(a)}/{len(b)}"
    if isinstance(a, bytes) and isinstance(b, bytes) and len(a) > 64:
        at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return f"first difference at byte {at}: libbpf {a[at:at + 16]!r} native {b[at:at + 16]!r} " \
               f"(lengths {len(a)}/{len(b)})"
    return f"libbpf {a!r} native {b!r}"


def root() -> bool:
    return os.geteuid() == 0
