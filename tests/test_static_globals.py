"""Global data the kernel does not mmap (issue 11): a .bss/.data holding only `static` variables and
a .rodata libbpf creates without BPF_F_MMAPABLE. Such objects load, and their variables are read
and written through map lookup/update."""
from __future__ import annotations

import os

import numpy as np
import pytest

import bpfkit
from bpfkit import _sys as sc
from bpfkit.errors import BpfError, ClosedError
from bpfkit.testing import fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")


def test_static_only_sections_are_not_mmapable() -> None:
    spec = bpfkit.open("tests/static_globals")
    for sec in (".bss", ".data", ".rodata"):
        assert not spec.maps[sec].flags & sc.BPF_F_MMAPABLE, sec


def test_load_read_and_write_through_the_map() -> None:
    n = 7
    with fixtures.spawn(fixtures.syscall_target(), "getpid", str(n)) as proc:
        spec = bpfkit.open("tests/static_globals")
        spec.rodata.target_pid = proc.pid
        spec.rodata.step = 3
        spec.data.bias = 41
        with spec.load() as obj:
            assert obj.bss.hits == 0 and obj.data.bias == 41 and obj.rodata.step == 3
            obj.data.bias = 42  # a write goes to the kernel map
            with obj.progs.on_getpid.attach():
                proc.finish()
            assert obj.bss.hits == 3 * n
            assert obj.bss.last_pid == proc.pid
            assert obj.bss.seen_bias == 42
            # the whole section as one record, read from the kernel
            arr = obj.bss.array
            assert arr["hits"][0] == 3 * n and arr.dtype.names == ("hits", "last_pid", "seen_bias")
            # a snapshot: writing into it would reach nothing, so it is read-only
            with pytest.raises(ValueError):
                arr["hits"] = 0
            obj.bss.hits = 5
            assert obj.bss.hits == 5
            key = np.zeros(1, np.uint32)
            raw = np.zeros(1, obj.bss.dtype)
            assert sc.map_lookup(obj.maps[".bss"].fd, key, raw) and raw["hits"][0] == 5
            # .rodata is frozen at load: its variables can be read, not written
            with pytest.raises(BpfError, match="read-only"):
                obj.rodata.step = 4
            assert "hits" in repr(obj.bss)
        with pytest.raises(ClosedError):
            obj.bss.hits  # noqa: B018


def test_mmapable_sections_are_still_mmapped() -> None:
    # the ordinary case keeps its zero-copy live view
    with bpfkit.load("tests/count") as obj:
        view = obj.bss.array
        obj.bss.total = 9
        assert view["total"][0] == 9
