"""The native loader against libbpf, object by object: the spec parts bpfkit's reader gives are the
values libbpf reports, and loading with either backend puts the same thing in the kernel — the
translated instructions of every program (map references as names), func/line info, every map's
definition, key/value BTF and initial contents. Objects one backend refuses, the other refuses too,
with the same typed error.

The objects are every object the package ships: the suite's own and the loader corpus
(c/tests/corpus: every map, section, relocation and extern kind, BCC-book tool shapes). Marked
`guest`: tests/test_guest_kernels.py runs the load comparison inside Debian's 6.1 and 6.12 too.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import bpfkit
from bpfkit.shipped import shipped_objects

from _loader_diff import differences, open_spec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")

OBJECTS = sorted(shipped_objects())


def _libbpf_parse(data: bytes, name: str):  # type: ignore[no-untyped-def]
    from bpfkit.loader import libbpf_open

    return libbpf_open.parse(data, name)


def _btf_rows(btf):  # type: ignore[no-untyped-def]
    if btf is None:
        return None
    return [(t.kind, t.name, t.size, t.type_id, [(m.name, m.type_id, m.bit_offset, m.bitfield_size) for m in t.members],
             t.nelems, t.vars, t.linkage, t.params, t.enum_values) for t in btf]


@pytest.mark.parametrize("name", OBJECTS)
def test_spec_parts_are_what_libbpf_reports(name: str) -> None:
    data = shipped_objects()[name].read_bytes()
    obj = name.rsplit("/", 1)[-1]
    lib = _libbpf_parse(data, obj)
    nat = open_spec(data, obj)
    assert list(nat.programs) == list(lib.programs)
    for pname, ps in lib.programs.items():
        assert nat.programs[pname] == ps
    assert list(nat.maps) == list(lib.maps)
    for mname, ms in lib.maps.items():
        mine = nat.maps[mname]
        for f in ("name", "map_type", "key_size", "value_size", "max_entries", "flags", "key_type_id",
                  "value_type_id", "internal", "section", "libbpf_name", "dtype_error"):
            assert getattr(mine, f) == getattr(ms, f), (mname, f)
        for f in ("key_dtype", "value_dtype", "record_dtype"):
            assert getattr(mine, f) == getattr(ms, f), (mname, f)
    assert list(nat.sections) == list(lib.sections)
    for sec, gv in lib.sections.items():
        assert nat.sections[sec].dtype == gv.dtype
        assert nat.sections[sec].array.tobytes() == gv.array.tobytes()
    assert _btf_rows(nat.btf) == _btf_rows(lib.btf)


@pytest.mark.guest
@pytest.mark.parametrize("name", OBJECTS)
def test_both_loaders_put_the_same_object_in_the_kernel(name: str) -> None:
    spec = open_spec(str(shipped_objects()[name]))
    diffs, lib, nat = differences(spec)
    assert diffs == [], "\n".join(diffs)
    if lib.error is not None:
        # refused by both, as the same typed error (e.g. fentry where trampolines are not allowed)
        assert isinstance(nat.error, bpfkit.BpfError)
        return
    wanted = {p.name for p in spec.programs.values() if p.autoload}
    assert set(nat.progs) == wanted and wanted
    for prog in nat.progs.values():
        assert prog["xlated"] and prog["btf"] and prog["func_info"] >= 1 and prog["line_info"] >= 1
    assert set(nat.maps) == set(spec.maps)


def test_map_in_map_and_program_array_slots_are_filled() -> None:
    from bpfkit import _sys as sc
    from bpfkit.loader.native import backend

    spec = open_spec("tests/corpus/maps_kinds")
    loaded = backend.load(spec.model, spec.name, spec.programs, spec.maps, spec.sections)
    try:
        fds = loaded.map_fds
        ids = {n: sc.map_info(fd).id for n, fd in fds.items()}
        got = np.zeros(1, np.uint32)
        for slot, inner in ((0, "m_inner_a"), (2, "m_inner_b")):
            assert sc.map_lookup(fds["m_outer_array"], np.array([slot], np.uint32), got)
            assert got[0] == ids[inner]
        assert not sc.map_lookup(fds["m_outer_array"], np.array([1], np.uint32), got)
        for slot, prog in ((1, "tail_a"), (3, "tail_b")):
            assert sc.map_lookup(fds["m_progs"], np.array([slot], np.uint32), got)
            assert got[0] == sc.prog_info(loaded.prog_fds[prog]).id
        # the ring buffer's size was rounded up to a power-of-2 number of pages, as libbpf does
        assert sc.map_info(fds["m_ring"]).max_entries == 8192
        assert sc.map_info(fds["m_perf"]).max_entries == sc.possible_cpus()
    finally:
        loaded.close()
