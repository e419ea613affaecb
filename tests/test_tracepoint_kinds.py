"""raw_tp and tp_btf attachment, and BTF -> dtype for nested structs, arrays and unions."""
from __future__ import annotations

import logging

import numpy as np
import pytest

import bpfkit
from bpfkit import _sys as sc
from bpfkit.testing import fixtures

pytestmark = pytest.mark.root


def test_value_dtype_from_btf_nested_structs_arrays_unions() -> None:
    dt = bpfkit.open("tests/tp_kinds").maps.stats.value_dtype
    assert dt.names == ("raw_tp_hits", "tp_btf_hits", "in", "tag", "as_u32", "as_f32")
    inner = dt["in"].base
    assert dt["in"].shape == (2,)
    assert inner.names == ("kind", "small", "big")
    assert inner["small"] == np.dtype(("i1", (3,)))
    assert dt["tag"] == np.dtype("S8")
    assert dt.fields["as_u32"][1] == dt.fields["as_f32"][1]  # union members share an offset
    assert dt.itemsize == 4 + 4 + 2 * 16 + 8 + 4 + 4  # C layout, padding included


def test_bitfield_values_are_refused_with_a_clear_message_until_retyped() -> None:
    spec = bpfkit.open("tests/tp_kinds")
    assert "bitfields" in spec.maps.bits.dtype_error
    with spec.load() as obj:
        with pytest.raises(bpfkit.MapError, match="map 'bits': value type: .*bitfields.*retype"):
            obj.maps.bits[0]
        with pytest.raises(bpfkit.MapError, match="bitfields"):
            obj.maps.bits.to_numpy()
        obj.maps.bits[0] = (5 | 17 << 3).to_bytes(4, "little")  # raw bytes still go in
        assert obj.maps.bits.retype(value_dtype="u4")[0] == 5 | 17 << 3


@pytest.mark.guest  # also run inside Debian 6.1/6.12 guests: CO-RE portability
@pytest.mark.parametrize("prog,attach,field", [
    ("on_raw_sys_enter", lambda p: p.attach_raw_tracepoint("sys_enter"), "raw_tp_hits"),
    ("on_btf_sys_enter", lambda p: p.attach_btf(), "tp_btf_hits"),
    ("on_btf_sys_enter", lambda p: p.attach(), "tp_btf_hits"),
])
def test_raw_and_btf_tracepoints_count_exactly(prog, attach, field) -> None:  # type: ignore[no-untyped-def]
    n = 321
    spec = bpfkit.open("tests/tp_kinds")
    with fixtures.spawn(fixtures.syscall_target(), "getpid", str(n)) as proc:
        spec.rodata.target_pid = proc.pid
        with spec.load() as obj:
            with attach(obj.progs[prog]) as link:
                kind = sc.BPF_LINK_TYPE_NAMES[sc.link_info(link.fd).type]
                proc.finish()
            rec = obj.maps.stats[0]
    assert kind in ("raw_tracepoint", "tracing")
    assert int(rec[field]) == n
    other = "tp_btf_hits" if field == "raw_tp_hits" else "raw_tp_hits"
    assert int(rec[other]) == 0
    if field == "raw_tp_hits":
        assert int(rec["in"][1]["big"]) == 1000 + 39  # __NR_getpid via the raw arguments
    else:
        assert int(rec["in"][0]["kind"]) == 7 and int(rec["in"][0]["small"][2]) == -3
        assert rec["tag"] == b"bpfkit!" and float(rec["as_f32"]) == 1.0


def test_missing_raw_tracepoint_is_a_clear_error() -> None:
    with bpfkit.load("tests/tp_kinds") as obj:
        with pytest.raises(bpfkit.BpfNotFoundError, match="raw tracepoint 'no_such_tp' not found"):
            obj.progs.on_raw_sys_enter.attach_raw_tracepoint("no_such_tp")


def test_libbpf_messages_go_to_logging_not_stderr(caplog, capfd) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level(logging.DEBUG, logger="bpfkit.libbpf"):
        bpfkit.load("tests/tp_kinds", loader="libbpf").close()
    assert any(r.name == "bpfkit.libbpf" for r in caplog.records)
    assert "libbpf" not in capfd.readouterr().err


def test_attaching_with_the_wrong_program_type_says_what_is_needed() -> None:
    with bpfkit.load("tests/tp_kinds") as obj:
        raw = obj.progs.on_raw_sys_enter
        with pytest.raises(bpfkit.AttachError, match=r"'on_raw_sys_enter' is a raw_tracepoint program .*"
                           r"attach_tracepoint\(\) needs a tracepoint program"):
            raw.attach_tracepoint("syscalls", "sys_enter_getpid")
        with pytest.raises(bpfkit.AttachError, match=r"attach_uprobe\(\) needs a kprobe program"):
            raw.attach_uprobe("c", "malloc")
        with pytest.raises(bpfkit.AttachError, match=r"SEC\(\"raw_tp/sys_enter\"\)"):
            obj.progs.on_btf_sys_enter.attach_raw_tracepoint("sys_enter")
        assert obj.links == []
