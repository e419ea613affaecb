"""Maps refuse what would crash or lie (issue 11): object dtypes (pointers into this process written
into the kernel), unpinning anything that is not on bpffs once resolved, names the kernel would cut
(more than 15 bytes, a NUL inside, characters it refuses with a bare EINVAL)."""
from __future__ import annotations

import os
import uuid
import warnings

import numpy as np
import pytest

import bpfkit
from bpfkit import _sys as sc
from bpfkit.errors import BpfNotFoundError, BpfUsageError, MapError
from bpfkit.maps import Map

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create BPF maps")

BPFFS = "/sys/fs/bpf"


def _map_count() -> int:
    # this process's fds: the machine's map ids move with other users' tests
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("value", [object, "O", np.dtype([("n", "u8"), ("o", "O")]), np.dtype(("O", (2,)))])
def test_create_refuses_object_dtypes(value: object) -> None:
    before = _map_count()
    with pytest.raises(BpfUsageError, match="Python objects"):
        Map.create("hash", "u4", value, 4)
    with pytest.raises(BpfUsageError, match="Python objects"):
        Map.create("array", value, "u8", 4)
    assert _map_count() == before


def test_retype_and_spec_refuse_object_dtypes() -> None:
    with Map.create("array", "u4", "u8", 4) as m:
        with pytest.raises(BpfUsageError, match="Python objects"):
            m.retype(value_dtype=object)
        assert m.value_dtype == np.dtype("u8")
        m[0] = 5
        assert m[0] == 5
    spec = bpfkit.open("tests/count")
    with pytest.raises(BpfUsageError, match="Python objects"):
        spec.maps.counts.value_dtype = object


def test_plain_structs_and_bytes_are_fine() -> None:
    dt = np.dtype([("n", "u8"), ("comm", "S16"), ("vals", "i4", (4,))])
    with Map.create("hash", "u4", dt, 4) as m:
        m[1] = (7, b"abc", [1, 2, 3, 4])
        assert m[1]["n"] == 7 and m[1]["comm"] == b"abc"


def test_unpin_refuses_paths_outside_bpffs(tmp_path) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    sneaky = f"{BPFFS}/{'../' * 8}{str(victim).lstrip('/')}"
    assert os.path.realpath(sneaky) == str(victim)
    with pytest.raises(BpfUsageError, match="not on a bpf filesystem"):
        Map.unpin(sneaky)
    with pytest.raises(BpfUsageError, match="not on a bpf filesystem"):
        Map.unpin(victim)
    # a symlink inside bpffs' parent chain pointing out is resolved too
    link = tmp_path / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(BpfUsageError, match="not on a bpf filesystem"):
        Map.unpin(link / "victim")
    assert victim.read_text() == "keep me"


def test_pin_outside_bpffs_says_so_not_needs_root(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with Map.create("array", "u4", "u8", 1) as m:
        with pytest.raises(BpfUsageError) as ei:
            m.pin(tmp_path / "pinned")
        assert "not on a bpf filesystem" in str(ei.value) and "needs root" not in str(ei.value)
        with pytest.raises(BpfUsageError, match="not on a bpf filesystem"):
            Map.from_pinned(tmp_path / "pinned")


def test_pin_unpin_round_trip_on_bpffs() -> None:
    path = f"{BPFFS}/bpfkit_rel_{uuid.uuid4().hex[:12]}"
    with Map.create("array", "u4", "u8", 2) as m:
        m[1] = 42
        m.pin(path)
        try:
            with Map.from_pinned(path) as again:
                assert again[1] == 42
        finally:
            Map.unpin(path)
    assert not os.path.exists(path)
    with pytest.raises(BpfNotFoundError, match="nothing pinned"):
        Map.unpin(path)


def test_nul_bytes_are_refused() -> None:
    before = _map_count()
    with Map.create("array", "u4", "u8", 1) as m:
        with pytest.raises(BpfUsageError, match="NUL"):
            m.pin(f"{BPFFS}/bpfkit_rel\0evil")
        with pytest.raises(BpfUsageError, match="NUL"):
            Map.unpin(f"{BPFFS}/bpfkit_rel\0evil")
    with pytest.raises(BpfUsageError, match="NUL"):
        Map.create("array", "u4", "u8", 1, name="a\0b")
    with bpfkit.load("tests/testrun_progs") as obj:
        with pytest.raises(BpfUsageError, match="NUL"):
            obj.progs.raw_args_probe.attach_raw_tracepoint("sys_enter\0junk")
        with pytest.raises(BpfUsageError, match="at most 127"):
            obj.progs.raw_args_probe.attach_raw_tracepoint("sys_enter" + "x" * 200)
        assert obj.links == []
    with bpfkit.load("tests/probes_uprobe") as obj:
        with pytest.raises(BpfUsageError, match="NUL"):
            obj.progs.on_any.attach_uprobe("/usr/bin/true\0/../bash", "main")
    assert _map_count() == before


def test_long_map_name_warns_naming_the_limit() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with Map.create("array", "u4", "u8", 1, name="a_rather_long_map_name") as m:
            assert m.info().name == "a_rather_long_m"
    [w] = [w for w in caught if issubclass(w.category, bpfkit.maps.NameTruncatedWarning)]
    assert "15" in str(w.message) and "a_rather_long_map_name" in str(w.message)
    assert w.filename == __file__  # points at the caller


def test_map_name_characters_the_kernel_refuses() -> None:
    with pytest.raises(BpfUsageError, match="letters, digits"):
        Map.create("array", "u4", "u8", 1, name="my-map")


def test_create_error_is_a_map_error_still() -> None:
    # the dtype errors that were MapError stay so
    with pytest.raises(MapError):
        Map.create("array", "u4", "not a dtype", 1)
