"""The native backend: load an object's maps and programs into the kernel with bpfkit's own code,
in libbpf's order — resolve externs, load the (sanitized) BTF, create maps, relocate (CO-RE,
calls, data), load programs, fill program arrays. Hands back a
:class:`~bpfkit.loader.parts.Loaded` like the libbpf backend; on any failure every fd made so far
is closed and every map this load pinned is unpinned.

Example::

    loaded = load(model, "count", spec.programs, spec.maps, spec.sections)
    loaded.prog_fds["on_getpid"], loaded.map_fds["counts"]
"""
from __future__ import annotations

import ctypes
import os
from typing import Iterable, Optional

from ... import _sys as sc
from ...errors import LoadError
from ..globals import GlobalVars
from ..parts import Loaded, MapSpec, Namespace, ProgramSpec
from . import externs as ext_mod
from .btfload import kernel_btf, load_btf, missing_features
from .maps import MapParams, close_all, create_maps
from .model import MAP_KCONFIG, MAP_RODATA, RELO_DATA, Model, Prog
from .progload import LoadRequest, bind_map, btf_attach, load_program, section_flags
from .relocate import CoreContext, apply_core, link, relocate_data, working_copies
from .target import Target

__all__ = ["load"]


def load(model: Model, name: str, programs: Namespace[ProgramSpec], maps: Namespace[MapSpec],
         sections: dict[str, GlobalVars], *, btf_paths: Optional[list[str]] = None,
         sanitize: Optional[Iterable[str]] = None) -> Loaded:
    """Load ``model`` with the spec's edits. ``btf_paths`` resolves CO-RE against those BTF files
    instead of the running kernel's; ``sanitize`` forces BTF sanitizing as for a kernel lacking
    those features (see btfload.FEATURES), e.g. to check what an older kernel would get."""
    target = Target(btf_paths)
    fds: list[int] = []
    pinned: list[str] = []
    prog_fds: dict[str, int] = {}
    btf_fd = -1
    try:
        by_spec = {p.name: p for p in programs.values()}

        def autoload(p: Prog) -> bool:
            ps = by_spec.get(p.name)
            return ps.autoload if ps is not None else p.autoload

        needs_local = bool(model.externs) or bool(model.ext is not None and model.ext.core_relos)
        local = model.local_index() if needs_local else None
        kcfg, ext_values = ext_mod.resolve(model, target, local) if model.externs and local is not None else (None, [])
        fd_array = ext_mod.assign_fd_array(model, ext_values)
        missing = (set(sanitize) if sanitize is not None else
                   missing_features(model.btf) if model.btf is not None else set())
        params = _map_params(model, maps, sections, kcfg)
        btf_fd = load_btf(kernel_btf(model, missing), name)
        # func/line info needs BTF FUNCs: a kernel without them gets none (as libbpf does)
        with_info = btf_fd >= 0 and "func" not in missing
        # CO-RE and linking need no map: done before the maps are made, so a program that cannot
        # be linked costs no kernel work, and this Python runs before the kernel's work has
        # evicted it from the caches (the syscalls keep libbpf's order)
        codes = working_copies(model)
        poisoned = {}
        if model.ext is not None and model.ext.core_relos and local is not None:
            ctx = CoreContext(local, target.candidates)
            poisoned = apply_core(model, codes, ctx, autoload)
        linked_all = [(p, link(model, pi, codes, poisoned, with_info=with_info)) for pi, p in enumerate(model.progs)
                      if not model.is_subprog(p) and autoload(p)]
        map_fds, pinned = create_maps(model, params, btf_fd)
        fds.extend(map_fds)
        for p, linked in linked_all:
            relocate_data(model, linked, map_fds, ext_values)
        rodata = [(i, fd) for i, (m, fd) in enumerate(zip(model.maps, map_fds)) if m.origin == MAP_RODATA]
        for p, linked in linked_all:
            ps = by_spec.get(p.name)
            prog_type = ps.prog_type if ps is not None else p.prog_type
            attach_type = ps.expected_attach_type if ps is not None else p.expected_attach_type
            flags = (ps.flags if ps is not None else p.flags) | section_flags(prog_type, p.section)
            req = LoadRequest(name, p.name, p.section, prog_type, attach_type, flags, model.license,
                              model.kern_version, linked, btf_fd,
                              model.ext.func_rec_size if model.ext else 0, model.ext.line_rec_size if model.ext else 0,
                              fd_array, target_name=target.name)
            target_fn = btf_attach(prog_type, p.section)
            if target_fn is not None:
                _attach_target(req, target, target_fn)
            fd = load_program(req)
            prog_fds[p.name] = fd
            # rodata stays with the program (as libbpf binds it); one the code refers to already is
            used = {r.map_idx for r in linked.relos if r.kind == RELO_DATA}
            for ri, rfd in rodata:
                if ri not in used:
                    bind_map(fd, rfd)
        _fill_prog_arrays(model, map_fds, prog_fds)
    except BaseException:
        close_all(list(prog_fds.values()) + fds + [btf_fd])
        for path in pinned:
            try:
                os.unlink(path)
            except OSError:
                pass
        target.close()
        raise
    target.close()
    map_by_name = {}
    for m, fd in zip(model.maps, map_fds):
        map_by_name[m.real_name if m.internal else m.name] = fd
    owned = list(prog_fds.values()) + map_fds + ([btf_fd] if btf_fd >= 0 else [])

    def release() -> None:
        close_all(owned)
        owned.clear()

    return Loaded(dict(prog_fds), map_by_name, release)


def _map_params(model: Model, maps: Namespace[MapSpec], sections: dict[str, GlobalVars],
                kcfg: Optional[bytearray]) -> list[MapParams]:
    out = []
    for m in model.maps:
        key = m.real_name if m.internal else m.name
        spec = maps[key] if key in maps else None
        data: Optional[bytes] = None
        if m.origin == MAP_KCONFIG:
            data = bytes(kcfg) if kcfg is not None else None
        elif m.internal:
            gv = sections.get(m.real_name)
            data = gv._bytes()[: m.value_size] if gv is not None else m.data
        out.append(MapParams(m, spec.max_entries if spec is not None else m.max_entries,
                             spec.flags if spec is not None else m.flags, data))
    return out


def _attach_target(req: LoadRequest, target: Target, name: str) -> None:
    if req.prog_type == sc.BPF_PROG_TYPE_EXT:
        raise LoadError(f"program {req.name!r}: freplace programs need the program they replace; bpfkit's loader "
                        "does not support them yet (open with loader='libbpf')")
    if not name:
        raise LoadError(f"program {req.name!r}: SEC({req.section!r}) names no attach target; write it as "
                        f"SEC(\"{req.section}/<function>\")")
    btf_id, obj_fd = target.attach_btf_id(name, req.expected_attach_type)
    if btf_id < 0:
        kind = {sc.BPF_TRACE_RAW_TP: "raw tracepoint", sc.BPF_TRACE_ITER: "iterator",
                sc.BPF_LSM_MAC: "LSM hook"}.get(req.expected_attach_type, "kernel function")
        raise LoadError(f"program {req.name!r} (SEC({req.section!r})): the {kind} {name!r} is not in "
                        f"{target.name}'s BTF (vmlinux or modules); check the name (bpfkit list) or the kernel "
                        "version", 3)
    req.attach_btf_id, req.attach_btf_obj_fd = btf_id, obj_fd


def _fill_prog_arrays(model: Model, map_fds: list[int], prog_fds: dict[str, int]) -> None:
    for m, fd in zip(model.maps, map_fds):
        if m.map_type != sc.BPF_MAP_TYPE_PROG_ARRAY or not m.init_slots:
            continue
        for slot, prog in sorted(m.init_slots.items()):
            pfd = prog_fds.get(prog)
            if pfd is None:
                raise LoadError(f"map {m.name!r}: slot {slot} refers to program {prog!r}, which is not loaded "
                                "(autoload is off?)")
            key, value = ctypes.c_uint32(slot), ctypes.c_uint32(pfd)
            sc.map_update(fd, key, value, what=f"map {m.name!r} slot {slot} (program {prog!r})")
