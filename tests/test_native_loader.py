"""The native loader's own behaviour: errors in bpfkit's words (which map or program, which CO-RE
relocation on which kernel), the verifier log kept whole, BTF sanitizing for older kernels, pinned
maps, extern values, refusals of malformed objects (the same ones libbpf refuses), no leaked fds,
and ``bpfkit core-report``."""
from __future__ import annotations

import ctypes
import dataclasses
import errno
import os
import re
import signal
import struct
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import bpfkit
from bpfkit import _sys as sc
from bpfkit.btf.index import KIND_DATASEC, KIND_DECL_TAG, KIND_ENUM64, KIND_FLOAT, KIND_TYPE_TAG, KIND_VAR, BtfIndex
from bpfkit.btf.kernel_index import vmlinux_index
from bpfkit.loader.native import backend, btfload, progload
from bpfkit.loader.native.elf import ElfObject
from bpfkit.loader.native.objbtf import ObjBtf
from bpfkit.shipped import find_object

from _loader_diff import differences, load_with, open_spec

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")

HEADERS = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_core_read.h>\n'


def _compile(src: str) -> str:
    return str(bpfkit.compile(HEADERS + textwrap.dedent(src)))


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- errors ---------------------------------------------------------------------------------------

def test_unresolved_core_relocation_names_the_field_and_the_kernel() -> None:
    path = _compile("""
        struct task_struct___pre514 { long state; } __attribute__((preserve_access_index));
        SEC("raw_tp/sys_enter")
        int unguarded(void *ctx)
        {
            struct task_struct___pre514 *t = (void *)bpf_get_current_task();
            return BPF_CORE_READ(t, state) != 0;
        }
        char LICENSE[] SEC("license") = "GPL";
    """)
    # the kernel's BTF is mapped once per process (the mapping holds a descriptor): not a leak, so map
    # it before counting, as it is when another test ran first
    vmlinux_index()
    before = _open_fds()
    with pytest.raises(bpfkit.VerifierError) as ei:
        bpfkit.load(path, loader="native")
    msg = str(ei.value)
    assert "CO-RE relocation #0" in msg and "<byte_off> task_struct___pre514->state" in msg
    assert f"kernel {os.uname().release}" in msg and "has no compatible field 'state'" in msg
    assert ei.value.program == "unguarded" and "unknown#195896080" in ei.value.log
    assert _open_fds() == before  # the maps and BTF made before the refusal are closed
    with pytest.raises(bpfkit.VerifierError):  # libbpf refuses it too
        bpfkit.load(path, loader="libbpf")


def test_verifier_log_is_kept_whole_when_it_outgrows_the_first_buffer() -> None:
    path = _compile("""
        SEC("raw_tp/sys_enter")
        int long_walk(void *ctx)
        {
            __u64 sum = 0;
            for (int i = 0; i < 2000; i++)
                sum += i ^ (sum >> 3);
            return *(int *)(long)sum;   /* rejected only at the end of a long path */
        }
        char LICENSE[] SEC("license") = "GPL";
    """)
    with pytest.raises(bpfkit.VerifierError) as ei:
        bpfkit.load(path, loader="native")
    log = ei.value.log
    assert len(log) > progload.LOG_START  # grew past the first buffer on ENOSPC
    assert any(line.startswith("0: ") for line in log.split("\n")[:4])  # the head is there, not only a tail
    assert "invalid mem access" in log and "invalid mem access" in str(ei.value)


def _with_timer(interval: float, action: Callable[[], None]) -> int:
    """Run ``action`` with SIGALRM every ``interval`` seconds; returns how many arrived."""
    fired = []
    old = signal.signal(signal.SIGALRM, lambda *_: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
    try:
        action()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return len(fired)


@pytest.mark.parametrize("loader", ["native", "libbpf"])
def test_a_signal_that_stops_the_verifier_is_retried(loader: str) -> None:
    """The verifier gives up with EAGAIN when a signal is pending (a profiler's timer, a child's
    exit). Each backend loads again, as libbpf does, so a process with a busy timer still loads."""
    def loads() -> None:
        for _ in range(300):
            bpfkit.load("tests/count", loader=loader).close()

    assert _with_timer(0.0003, loads) > 300  # it fired during the loads, ~2 a load


def test_a_verifier_interrupted_on_every_try_says_so() -> None:
    # ~12 ms of verification (a 4000-round loop walked whole): a signal every 0.3 ms stops each try
    path = _compile("""
        SEC("raw_tp/sys_enter")
        int slow_walk(void *ctx)
        {
            __u64 sum = 0;
            for (int i = 0; i < 4000; i++)
                sum += i ^ (sum >> 3);
            return sum & 1;
        }
        char LICENSE[] SEC("license") = "GPL";
    """)
    bpfkit.load(path, loader="native").close()  # it loads when left alone
    caught: list[BaseException] = []

    def load() -> None:
        try:
            bpfkit.load(path, loader="native").close()
        except bpfkit.LoadError as e:
            caught.append(e)

    _with_timer(0.0003, load)
    assert len(caught) == 1 and caught[0].errno == errno.EAGAIN
    assert f"interrupted by a signal {sc.PROG_LOAD_ATTEMPTS} times in a row (EAGAIN)" in str(caught[0])
    assert "program 'slow_walk'" in str(caught[0])


def test_refused_map_is_named_with_its_definition() -> None:
    spec = bpfkit.open("tests/count", loader="native")
    spec.maps.events.max_entries = 3000  # not a power-of-2 number of pages
    before = _open_fds()
    with pytest.raises(bpfkit.LoadError, match=r"map 'events' \(ringbuf, .*max_entries 3000.*power-of-2"):
        spec.load()
    assert _open_fds() == before


def test_unknown_section_and_missing_attach_target_are_explained() -> None:
    path = _compile("""
        SEC("bpfkit_not_a_section") int odd(void *ctx) { return 0; }
        SEC("tp_btf/bpfkit_no_such_tracepoint") int nowhere(void *ctx) { return 0; }
        char LICENSE[] SEC("license") = "GPL";
    """)
    spec = bpfkit.open(path, loader="native")
    spec.programs.nowhere.autoload = False
    with pytest.raises(bpfkit.LoadError, match="names no program type"):
        spec.load()
    spec.programs.nowhere.autoload, spec.programs.odd.autoload = True, False
    with pytest.raises(bpfkit.LoadError, match="raw tracepoint 'bpfkit_no_such_tracepoint' is not in"):
        spec.load()


# -- the object's Btf -------------------------------------------------------------------------------

def test_object_btf_is_made_on_use_and_equals_a_full_parse_of_its_encoding() -> None:
    # the spec's Btf converts a type from the loader's words when first asked for it: every
    # shipped object's types must come out as Btf.parse reads the same blob, and opening must not
    # have converted them all
    from bpfkit.btf import Btf
    from bpfkit.shipped import shipped_objects

    objects = shipped_objects()
    assert len(objects) > 30
    for name, path in objects.items():
        spec = bpfkit.open(path)
        btf = spec.btf
        assert btf is not None, name
        made = sum(t is not None for t in btf._types)
        assert made < len(btf._types), f"{name}: opening converted all {made} types"
        full = Btf.parse(btf.raw)
        assert len(btf.types) == len(full.types), name
        for ours, theirs in zip(btf.types, full.types):
            assert ours == theirs, f"{name}: type [{theirs.id}] differs"
        for t in full.types[1:]:
            if t.name:
                assert btf.find(t.name).id == full.find(t.name).id, f"{name}: find({t.name!r})"


def test_specs_from_the_reader_equal_the_checked_constructors_and_refuse_bad_fields() -> None:
    # the reader builds MapSpec/ProgramSpec without the per-field edit checks; what it builds must
    # equal the checked constructor's result, and a field it does not know (or lacks) is a TypeError
    from bpfkit.loader.parts import MapSpec, ProgramSpec

    spec = open_spec("tests/count")
    for ms in spec.maps.values():
        assert ms == MapSpec(**{f.name: getattr(ms, f.name) for f in dataclasses.fields(MapSpec)}), ms.name
    for ps in spec.programs.values():
        assert ps == ProgramSpec(**vars(ps)), ps.name
    with pytest.raises(TypeError, match=r"MapSpec.from_reader: unknown fields \['colour'\]"):
        MapSpec.from_reader(name="m", map_type=1, key_size=4, value_size=8, max_entries=1, flags=0, colour=1)
    with pytest.raises(TypeError, match=r"ProgramSpec.from_reader: .*missing \['insn_count'\]"):
        ProgramSpec.from_reader(name="p", section="xdp", type="xdp", prog_type=6, expected_attach_type=0)


def test_dtypes_are_made_on_first_use_and_equal_the_eager_ones() -> None:
    from bpfkit.loader.dtypes import btf_dtype

    spec = bpfkit.open("tests/count", loader="native")
    assert not {"key_dtype", "value_dtype", "record_dtype"} & vars(spec.maps.counts).keys()  # open made none
    with spec.load() as obj:
        live = obj.maps.counts
        assert live._pending is not None  # nor did load
        assert live.key_dtype == btf_dtype(spec.btf, spec.maps.counts.key_type_id, 4)[0] == np.dtype("u4")
        assert live.value_dtype == np.dtype("u8") and live._pending is None
        assert live.record_dtype is None  # only ring and perf buffers carry records
        assert obj.maps.events.record_dtype.names == ("pid", "seq", "ts", "comm")
        assert obj.maps.events.record_dtype == spec.maps.events.record_dtype
        assert obj.bss.dtype == spec.btf.datasec_dtype(".bss") == spec.sections[".bss"].dtype
        assert obj.data.in_value == 7 and obj.bss.total == 0 and obj.rodata.multiplier == 1
        assert spec.maps[".data"].value_dtype == obj.data.dtype


def test_spec_dtype_edits_reach_the_maps_loaded_after_them_only() -> None:
    spec = bpfkit.open("tests/count", loader="native")
    spec.maps.counts.value_dtype = np.dtype("i8")
    with spec.load() as obj:
        spec.maps.counts.value_dtype = np.dtype("f8")  # after load: not this object's
        obj.maps.counts[3] = -2
        assert obj.maps.counts.value_dtype == np.dtype("i8") and obj.maps.counts[3] == -2
        assert obj.maps.counts.key_dtype == np.dtype("u4")  # the rest from BTF
    with spec.load() as obj:
        assert obj.maps.counts.value_dtype == np.dtype("f8")


@pytest.mark.parametrize("loader", ["native", "libbpf"])
def test_a_global_numpy_cannot_express_is_raw_bytes_named_on_use(loader: str) -> None:
    # a struct with bitfields has no numpy dtype: the object still opens and loads, the section's
    # other variables read as usual, and reading that one says why and where its bytes are
    path = _compile("""
        struct flags { unsigned int a:3; unsigned int b:5; };
        struct flags g_flags;
        __u64 plain = 5;
        SEC("tracepoint/syscalls/sys_enter_getpid")
        int set_flags(void *ctx) { g_flags.a = 5; g_flags.b = 17; plain = 42; return 0; }
        char LICENSE[] SEC("license") = "GPL";
    """)
    spec = bpfkit.open(path, loader=loader)
    assert "g_flags=<4 raw bytes>" in repr(spec.bss)
    with spec.load() as obj:
        with obj.progs.set_flags.attach_tracepoint("syscalls", "sys_enter_getpid"):
            os.getpid()
        assert obj.data.plain == 42
        with pytest.raises(bpfkit.MapError, match=r"\.bss\.g_flags: a: bitfields have no numpy dtype.*"
                                                  r"\.bss\.array\['g_flags'\]"):
            obj.bss.g_flags
        with pytest.raises(bpfkit.MapError, match="bitfields"):
            obj.bss.g_flags = 1
        assert obj.bss.array["g_flags"][0].tobytes() == struct.pack("<I", 5 | 17 << 3)


def test_section_and_record_dtypes_from_the_words_equal_the_general_path() -> None:
    # parse reads a global variable of a plain number/pointer type, and bpfkit.h's record markers,
    # straight from the object's words: every shipped object's section and record dtypes must be
    # what loader/dtypes gives from a full Btf.parse of the same BTF
    from bpfkit.btf import Btf
    from bpfkit.loader.dtypes import datasec_dtype, record_types
    from bpfkit.shipped import shipped_objects

    checked = records = 0
    for name, path in shipped_objects().items():
        spec = bpfkit.open(path)
        assert spec.btf is not None, name
        full = Btf.parse(spec.btf.raw)
        for sec, gv in spec.sections.items():
            assert gv.dtype == datasec_dtype(full, sec, spec.maps[sec].value_size), f"{name}: {sec}"
            checked += 1
        want = record_types(full)
        for m in spec.maps.values():
            if m.map_type in (sc.BPF_MAP_TYPE_RINGBUF, sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY):
                assert m.record_dtype == want.get(m.name), f"{name}: {m.name}"
                records += m.record_dtype is not None
    assert checked > 50 and records > 10, (checked, records)


def test_object_btf_checks_name_the_broken_type() -> None:
    # the object's BTF is checked in one pass (references, per-kind fields, the loop check's edges):
    # each defect below must be refused naming its type, and the intact BTF must pass
    from bpfkit.btf.index import KIND_CONST, KIND_INT, KIND_STRUCT, KIND_TYPEDEF
    from bpfkit.loader.native.objbtf import info_word

    def blob(*types: list[int]) -> bytes:
        strings = b"\0a\0b\0"
        words = struct.pack(f"<{sum(map(len, types))}I", *[w for t in types for w in t])
        return struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(words), len(words), len(strings)) + words + strings

    u32 = [1, info_word(KIND_INT), 4, 32]
    ObjBtf.parse(blob(u32, [3, info_word(KIND_VAR), 1, 1], [0, info_word(KIND_STRUCT, 1), 4, 1, 1, 0]))
    cases = {
        "type [2] (var): unknown variable linkage 3": (u32, [3, info_word(KIND_VAR), 1, 3]),
        "type [2] (const): it refers to type id 9": (u32, [0, info_word(KIND_CONST), 9]),
        r"type \[\d\] \((const|typedef)\) contains itself": (u32, [0, info_word(KIND_CONST), 3],
                                                           [0, info_word(KIND_TYPEDEF), 2]),
        r"type \[2\] \(struct\) contains itself": (u32, [0, info_word(KIND_STRUCT, 1), 4, 1, 2, 0]),
        "type [2] (struct): a member refers to type id 0": (u32, [0, info_word(KIND_STRUCT, 1), 4, 1, 0, 0]),
        "type [1] (int): invalid integer": ([1, info_word(KIND_INT), 3, 32],),
    }
    for want, types in cases.items():
        with pytest.raises(bpfkit.ObjectFormatError, match=want if "\\" in want else re.escape(want)):
            ObjBtf.parse(blob(*types))


def _odd_types(btf: ObjBtf) -> None:
    """Append what clang 14 does not emit, for the dtype test: signed enums, ENUM64, 16-byte ints
    and floats, a kflag struct with a bitfield and one without, an array of a typedef'd char."""
    from bpfkit.btf.index import KIND_ENUM, KIND_FLOAT, KIND_INT, KIND_STRUCT, KIND_TYPEDEF, KIND_ARRAY
    from bpfkit.loader.native.objbtf import info_word

    name = btf.add_string
    u32 = btf.add_type([name("bpfkit_u32"), info_word(KIND_INT), 4, 32])
    char = btf.add_type([name("char"), info_word(KIND_INT), 1, (2 << 24) | 8])
    chr_t = btf.add_type([name("bpfkit_char_t"), info_word(KIND_TYPEDEF), char])
    btf.add_type([name("bpfkit_e64"), info_word(KIND_ENUM64, 1, kflag=True), 8, name("BPFKIT_BIG"), 0, 1])
    btf.add_type([name("bpfkit_signed"), info_word(KIND_ENUM, 1, kflag=True), 2, name("BPFKIT_MINUS"), 0xFFFFFFFF])
    btf.add_type([name("bpfkit_i128"), info_word(KIND_INT), 16, (1 << 24) | 128])
    for size in (2, 4, 8, 16):
        btf.add_type([name(f"bpfkit_f{size}"), info_word(KIND_FLOAT), size])
    btf.add_type([name("bpfkit_bits"), info_word(KIND_STRUCT, 2, kflag=True), 4,
                  name("lo"), u32, (3 << 24) | 0, name("hi"), u32, (5 << 24) | 3])
    btf.add_type([name("bpfkit_kflag_plain"), info_word(KIND_STRUCT, 2, kflag=True), 8,
                  name("a"), u32, 0, name("b"), u32, 32])
    btf.add_type([0, info_word(KIND_ARRAY), 0, chr_t, u32, 6])


def test_dtypes_read_from_the_words_equal_the_general_rules_for_every_type() -> None:
    # the object's Btf reads the common dtypes straight from the loader's words (btfconv); for
    # every type of every shipped object, and types clang 14 does not write, that must be what
    # Btf.dtype's own rules give, or nothing (they then decide, and word any refusal)
    from bpfkit.btf import Btf
    from bpfkit.loader.native import btfconv
    from bpfkit.shipped import shipped_objects

    read = total = 0
    for name, path in shipped_objects().items():
        obj = open_spec(path).model.btf
        assert obj is not None, name
        if name == "tests/count":
            obj = obj.copy()
            _odd_types(obj)
        full = Btf.parse(obj.encode())
        for tid in range(1, len(obj)):
            fast = btfconv._word_dtype(obj, {}, tid)
            try:
                want = full.dtype(tid)
            except bpfkit.BpfError:
                assert fast is None, f"{name}: type [{tid}] has a dtype from the words but not from the rules"
                continue
            total += 1
            if fast is not None:
                assert fast == want, f"{name}: type [{tid}] {fast} != {want}"
                read += 1
    assert total > 1000 and read > 0.99 * total, (read, total)


# -- BTF sanitizing ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["tests/count", "tests/corpus/core_kinds", "tests/corpus/globals",
                                  "tests/corpus/tool_runqlat", "tests/corpus/tool_taskinfo",
                                  "tests/corpus/btf_tags"])
def test_btf_sanitized_for_an_older_kernel_loads_the_same_programs(name: str) -> None:
    spec = open_spec(name)
    missing = [f for f in btfload.FEATURES if f != "func"]  # as a kernel of ~5.1: FUNCs, no DATASEC...
    blob = btfload.kernel_btf(spec.model, missing)
    assert blob is not None
    idx = BtfIndex.parse(blob)
    gone = {KIND_VAR, KIND_DATASEC, KIND_FLOAT, KIND_DECL_TAG, KIND_TYPE_TAG, KIND_ENUM64}
    assert not gone & {idx.kind(t) for t in idx.type_ids()}
    os.close(sc.btf_load(blob, "sanitized BTF"))  # the kernel takes it
    diffs, lib, nat = differences(spec, sanitize=missing)
    assert lib.error is None and nat.error is None
    # the programs are the same; only the maps' BTF differs (a DATASEC value became a struct the
    # kernel does not take for global data, so those maps are made without BTF, as libbpf would)
    assert [d for d in diffs if d.startswith("program") and "verified_insns" not in d] == []
    assert all(p["func_info"] and p["line_info"] for p in nat.progs.values())


def test_enum64_and_signed_enum_sanitized_as_libbpf_does() -> None:
    """clang 14 cannot emit ENUM64 or signed enums (kflag): append both to an object's BTF, then
    check the rewrite a pre-6.0 kernel needs (ENUM64 -> a union of 1-byte ints of the same size,
    the signed enum -> unsigned) and that this kernel takes both the original and the rewrite."""
    from bpfkit.btf.index import KIND_ENUM, KIND_UNION
    from bpfkit.loader.native.objbtf import info_word

    spec = open_spec("tests/corpus/btf_tags")
    btf = spec.model.btf.copy()
    e64 = btf.add_type([btf.add_string("bpfkit_e64"), info_word(KIND_ENUM64, 2), 8,
                        btf.add_string("BPFKIT_BIG"), 0, 1, btf.add_string("BPFKIT_SMALL"), 7, 0])
    signed = btf.add_type([btf.add_string("bpfkit_signed"), info_word(KIND_ENUM, 1, kflag=True), 4,
                           btf.add_string("BPFKIT_MINUS"), 0xFFFFFFFF])
    assert "enum64" in btfload.needed_features(btf)
    os.close(sc.btf_load(btf.encode(), "enum64 BTF"))  # 6.0+ takes it as it is
    btfload.sanitize(btf, ["enum64"])
    idx = BtfIndex.parse(btf.encode())
    assert idx.kind(e64) == KIND_UNION and btf.vlen(e64) == 2 and idx.size(e64) == 8
    assert idx.kind(signed) == KIND_ENUM and not btf.kflag(signed)
    assert not {idx.kind(t) for t in idx.type_ids()} & {KIND_ENUM64}
    os.close(sc.btf_load(btf.encode(), "sanitized enum64 BTF"))


def test_without_func_btf_programs_load_without_func_and_line_info() -> None:
    spec = open_spec("tests/count")
    nat = load_with(spec, "native", sanitize=btfload.FEATURES)
    lib = load_with(spec, "libbpf")
    assert nat.error is None
    assert nat.progs["on_getpid"]["xlated"] == lib.progs["on_getpid"]["xlated"]
    assert nat.progs["on_getpid"]["func_info"] == 0 and lib.progs["on_getpid"]["func_info"] == 1


# -- relocation kinds clang 14 cannot emit -------------------------------------------------------------

def test_type_matches_relocation_resolves_as_libbpf_does() -> None:
    """bpf_core_type_matches() needs clang 15: turn core_kinds' type_exists relocations into
    type_matches ones (same instruction shape) and compare both loaders."""
    data = bytearray(find_object("tests/corpus/core_kinds").read_bytes())  # type: ignore[union-attr]
    elf = ElfObject.parse(bytes(data))
    ext = elf.find(".BTF.ext")
    assert ext is not None
    hdr_len = struct.unpack_from("<I", data, ext.offset + 4)[0]
    c_off, c_len = struct.unpack_from("<II", data, ext.offset + 24)
    pos = ext.offset + hdr_len + c_off
    end = pos + c_len
    rec_size = struct.unpack_from("<I", data, pos)[0]
    pos += 4
    patched = 0
    while pos < end:
        _name, num = struct.unpack_from("<II", data, pos)
        pos += 8
        for _ in range(num):
            if struct.unpack_from("<I", data, pos + 12)[0] == 8:  # BPF_CORE_TYPE_EXISTS
                struct.pack_into("<I", data, pos + 12, 12)  # BPF_CORE_TYPE_MATCHES
                patched += 1
            pos += rec_size
    assert patched >= 3
    spec = open_spec(bytes(data), "core_kinds")
    diffs, lib, nat = differences(spec)
    assert diffs == [] and lib.error is None


# -- pinning, externs ----------------------------------------------------------------------------------

def test_global_data_set_before_load_reaches_the_kernel() -> None:
    # a zero-filled section is not written (a new array map is zeros); one set through the spec
    # before load is, and the kernel's copy then holds it
    for total in (0, 41):
        spec = open_spec("tests/count")
        spec.bss.total = total
        spec.rodata.multiplier = 3
        with spec.load() as obj:
            info = sc.map_info(obj.maps[".bss"].fd)
            value = ctypes.create_string_buffer(info.value_size)
            sc.map_lookup(obj.maps[".bss"].fd, ctypes.c_uint32(0), value)
            assert np.frombuffer(value.raw, obj.bss.dtype)["total"][0] == total
            assert obj.bss.total == total and obj.rodata.multiplier == 3 and obj.data.in_value == 7
            assert not any(value.raw) if total == 0 else any(value.raw)


def test_pinned_map_is_created_once_then_reused_by_both_loaders() -> None:
    name = f"bpfkit_pin_{uuid.uuid4().hex[:8]}"
    path = _compile(f"""
        struct {{ __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8); __type(key, __u32); __type(value, __u64);
                 __uint(pinning, LIBBPF_PIN_BY_NAME); }} {name} SEC(".maps");
        SEC("raw_tp/sys_enter") int touch(void *ctx) {{ __u32 k = 1; bpf_map_lookup_elem(&{name}, &k); return 0; }}
        char LICENSE[] SEC("license") = "GPL";
    """)
    pin = Path("/sys/fs/bpf") / name
    try:
        with bpfkit.load(path, loader="native") as first:
            assert pin.exists()
            map_id = sc.map_info(first.maps[name].fd).id
            with bpfkit.load(path, loader="native") as second, bpfkit.load(path, loader="libbpf") as third:
                assert sc.map_info(second.maps[name].fd).id == map_id == sc.map_info(third.maps[name].fd).id
        spec = bpfkit.open(path, loader="native")
        spec.maps[name].max_entries = 16
        with pytest.raises(bpfkit.LoadError, match="does not match the definition"):
            spec.load()
    finally:
        pin.unlink(missing_ok=True)


def test_kconfig_externs_hold_the_running_kernels_values() -> None:
    from bpfkit.loader.native.externs import read_kconfig

    spec = open_spec("tests/corpus/externs")
    loaded = backend.load(spec.model, spec.name, spec.programs, spec.maps, spec.sections)
    try:
        fd = loaded.map_fds[".kconfig"]
        dt = spec.btf.datasec_dtype(".kconfig")  # type: ignore[union-attr]
        value = np.zeros(1, dt)
        assert sc.map_lookup(fd, np.array([0], np.uint32), value.view(np.uint8))
        with pytest.raises(bpfkit.BpfPermissionError):  # frozen, like .rodata
            sc.map_update(fd, np.array([0], np.uint32), value.view(np.uint8))
    finally:
        loaded.close()
    _, lines = read_kconfig()
    config = dict(line.split("=", 1) for line in lines if line.startswith("CONFIG_") and "=" in line)
    major, minor, patch = (int(x) for x in re.match(r"(\d+)\.(\d+)\.(\d+)", os.uname().release).groups())  # type: ignore[union-attr]
    assert value["LINUX_KERNEL_VERSION"][0] == (major << 16) + (minor << 8) + min(patch, 255)
    assert value["CONFIG_HZ"][0] == int(config.get("CONFIG_HZ", 0))
    assert bool(value["CONFIG_BPF_SYSCALL"][0]) == (config.get("CONFIG_BPF_SYSCALL") == "y")
    assert value["CONFIG_BPF_JIT"][0] == {"y": 1, "m": 2}.get(config.get("CONFIG_BPF_JIT", "n"), 0)
    assert value["CONFIG_DEFAULT_HOSTNAME"][0] == config.get("CONFIG_DEFAULT_HOSTNAME", '""').strip('"').encode()
    assert value["CONFIG_BPFKIT_NOT_A_REAL_OPTION"][0] == 0


def test_strong_extern_the_kernel_lacks_is_refused_by_both() -> None:
    path = _compile("""
        extern int CONFIG_BPFKIT_NO_SUCH_OPTION __kconfig;
        __u64 out;
        SEC("raw_tp/sys_enter") int use(void *ctx) { out = CONFIG_BPFKIT_NO_SUCH_OPTION; return 0; }
        char LICENSE[] SEC("license") = "GPL";
    """)
    with pytest.raises(bpfkit.LoadError, match="CONFIG_BPFKIT_NO_SUCH_OPTION' was not found.*__weak"):
        bpfkit.load(path, loader="native")
    with pytest.raises(bpfkit.LoadError):
        bpfkit.load(path, loader="libbpf")


# -- malformed objects --------------------------------------------------------------------------------

_LIBBPF_VERDICTS = """
import os, struct, sys
from bpfkit.loader import libbpf as lb
data = sys.stdin.buffer.read()
out = []
pos = 0
while pos < len(data):
    (n,) = struct.unpack_from("<I", data, pos); blob = data[pos + 4: pos + 4 + n]; pos += 4 + n
    pid = os.fork()
    if pid == 0:
        try:
            obj, keep = lb.open_object(blob, "mutant")
            lb.lib.bpf_object__close(obj)
            os._exit(0)
        except Exception:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    out.append("ok" if status == 0 else "refused" if os.WIFEXITED(status) else f"crashed({os.WTERMSIG(status)})")
print(" ".join(out))
"""


def _libbpf_verdicts(blobs: list[bytes]) -> list[str]:
    """libbpf's own verdict on each blob (open only), each in a forked child so a crash is a verdict."""
    payload = b"".join(struct.pack("<I", len(b)) + b for b in blobs)
    res = subprocess.run([sys.executable, "-c", _LIBBPF_VERDICTS], input=payload, capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()[-2000:]
    return res.stdout.decode().split()


def _mutate(data: bytes, section: str, rng: np.random.Generator) -> bytes:
    sec = ElfObject.parse(data).find(section)
    assert sec is not None
    out = bytearray(data)
    off = sec.offset + 4 * int(rng.integers(0, sec.size // 4))
    struct.pack_into("<I", out, off, int(rng.choice([0, 1, 0xFFFF, 0xFFFFFFFF, int(rng.integers(0, 1 << 32))])))
    return bytes(out)


def test_malformed_objects_libbpf_refuses_are_object_format_errors_never_crashes() -> None:
    base = find_object("tests/corpus/tool_tcplife").read_bytes()  # type: ignore[union-attr]
    rng = np.random.default_rng(12)
    blobs = [_mutate(base, sec, rng) for sec in (".BTF", ".BTF.ext", ".maps", ".rel.maps") if
             ElfObject.parse(base).find(sec) is not None for _ in range(60)]
    blobs += [base[:n] for n in (64, 1000, len(base) // 2, len(base) - 8)]
    verdicts = _libbpf_verdicts(blobs)
    assert len(verdicts) == len(blobs)
    native = []
    for blob in blobs:
        try:
            bpfkit.open(blob, "mutant")
            native.append("ok")
        except bpfkit.ObjectFormatError:
            native.append("refused")
    refused_by_libbpf = [i for i, v in enumerate(verdicts) if v != "ok"]
    assert refused_by_libbpf  # the sample does exercise refusals
    assert [i for i in refused_by_libbpf if verdicts[i] == "refused" and native[i] != "refused"] == []
    # what crashes libbpf never reaches it: bpfkit's own reader refuses it first
    assert [i for i in refused_by_libbpf if verdicts[i].startswith("crashed") and native[i] != "refused"] == []


@pytest.mark.parametrize("patch, why", [
    ((b".maps\0", b"maps\0\0"), "legacy map definitions"),
    ((b"max_entries\0", b"max_entriez\0"), "unknown field 'max_entriez'"),
])
def test_objects_libbpf_refuses_by_design_are_refused_with_the_reason(patch: tuple[bytes, bytes], why: str) -> None:
    base = find_object("tests/count").read_bytes()  # type: ignore[union-attr]
    old, new = patch
    assert base.count(old) >= 1
    blob = base.replace(old, new)
    assert _libbpf_verdicts([blob]) == ["refused"]
    with pytest.raises(bpfkit.ObjectFormatError, match=why):
        bpfkit.open(blob, "count")


def test_static_entry_program_is_refused_like_libbpf() -> None:
    data = bytearray(find_object("tests/minimal").read_bytes())  # type: ignore[union-attr]
    elf = ElfObject.parse(bytes(data))
    symtab = elf.sections[elf.symtab_index]
    prog = next(s for s in elf.symbols if s.type == 2 and elf.sections[s.shndx].name != ".text")
    info_off = symtab.offset + prog.index * 24 + 4
    data[info_off] = (0 << 4) | 2  # STB_LOCAL, STT_FUNC
    assert _libbpf_verdicts([bytes(data)]) == ["refused"]
    with pytest.raises(bpfkit.ObjectFormatError, match="is static"):
        bpfkit.open(bytes(data), "minimal")


# -- core-report -------------------------------------------------------------------------------------

def test_core_report_tells_which_kernels_lack_a_field(capsys: pytest.CaptureFixture[str]) -> None:
    from bpfkit.loader.native.report import main
    from bpfkit.testing import vm

    paths = []
    for kernel in ("6.1", "6.12"):
        try:
            paths.append(str(vm.prepare_kernel(kernel).vmlinux))
        except vm.GuestError as e:
            pytest.skip(f"the {kernel} guest kernel is not available to read its BTF: {e}")
    assert main(["tests/corpus/core_kinds", "--btf", paths[0], "--btf", paths[1]]) == 1  # some are unresolved
    out = capsys.readouterr().out.splitlines()
    row = next(line for line in out if "inode___until65->i_ctime.tv_sec" in line)
    k61, k612 = (Path(p).parent.name for p in paths)
    assert f"[{k61}] ok" in row and f"[{k612}] MISSING" in row
    state = next(line for line in out if "task_struct->__state" in line and "byte_off" in line)
    assert "MISSING" not in state
    assert main(["tests/count"]) == 0  # no relocations: portable everywhere
    assert "no CO-RE relocations" in capsys.readouterr().out


def test_errno_of_refused_fentry_is_typed_the_same_by_both(request: pytest.FixtureRequest) -> None:
    ok, reason = bpfkit.features.check("fentry")
    spec = open_spec("tests/corpus/trampolines")
    lib, nat = load_with(spec, "libbpf"), load_with(spec, "native")
    if ok:
        assert lib.error is None and nat.error is None
    else:
        assert type(nat.error) is type(lib.error) and isinstance(nat.error, bpfkit.FeatureNotSupported)
        assert nat.error.errno in (errno.EPERM, errno.ENOTSUP, errno.EINVAL, 524)


# -- choosing the backend ---------------------------------------------------------------------------------

def _run(code: str, **env: str) -> str:
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120,
                         env={**{k: v for k, v in os.environ.items() if k != "BPFKIT_LOADER"}, **env})
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip()


def test_default_loader_never_imports_cffi_or_libbpf() -> None:
    out = _run("""
        import sys, bpfkit
        with bpfkit.load("tests/corpus/tool_taskinfo") as obj:
            assert obj.progs.dump_task.id > 0
        print(sorted(m for m in sys.modules if m in ("cffi", "_cffi_backend") or m.startswith("bpfkit.loader.libbpf")
                     or m.startswith("bpfkit.loader._libbpf")))
    """)
    assert out == "[]"


def test_bpfkit_loader_environment_picks_the_backend() -> None:
    assert _run("import bpfkit; print(bpfkit.open('tests/count').loader)") == "native"
    assert _run("import bpfkit; print(bpfkit.open('tests/count').loader)", BPFKIT_LOADER="libbpf") == "libbpf"
    assert _run("import bpfkit; print(bpfkit.open('tests/count', loader='native').loader)",
                BPFKIT_LOADER="libbpf") == "native"
    out = _run("""
        import bpfkit
        try:
            bpfkit.open("tests/count")
        except bpfkit.BpfUsageError as e:
            print(e)
    """, BPFKIT_LOADER="bcc")
    assert "BPFKIT_LOADER='bcc'" in out and "native, libbpf" in out


def test_libbpf_loader_without_cffi_says_what_to_install() -> None:
    out = _run("""
        import sys
        sys.modules["cffi"] = sys.modules["_cffi_backend"] = None  # as if cffi were not installed
        import bpfkit
        spec = bpfkit.open("tests/count", loader="libbpf")
        try:
            spec.load()
        except bpfkit.FeatureNotSupported as e:
            print(e.feature, "|", e)
        with bpfkit.load("tests/count") as obj:   # the default loader does not care
            print(len(obj.progs))
    """)
    first, second = out.splitlines()
    assert first.startswith("libbpf |") and "pip install 'bpfkit[libbpf]'" in first
    assert second == "1"


# -- kernel-module BTF ---------------------------------------------------------------------------------------

@pytest.mark.guest
def test_kfuncs_and_core_candidates_in_module_btf() -> None:
    """Where veth and nf_conntrack are modules (Debian's kernels), the CO-RE relocation against
    struct veth_priv resolves in veth's BTF and the nf_conntrack kfuncs are called by module BTF id
    through fd_array; where they are built in (this host), both come from vmlinux."""
    from bpfkit.loader.native.report import core_report

    for module in ("veth", "nf_conntrack"):
        # a kernel without module support (/proc/modules) has them built in, or not at all
        if os.path.exists("/proc/modules") and not os.path.exists(f"/sys/kernel/btf/{module}"):
            res = subprocess.run(["modprobe", module], capture_output=True, text=True)
            if res.returncode != 0:
                pytest.skip(f"module {module} is neither built in nor loadable: {res.stderr.strip()}")
    spec = open_spec("tests/corpus/modules")
    diffs, lib, nat = differences(spec)
    assert diffs == [] and nat.error is None, diffs or nat.error
    assert set(nat.progs) == {"ct_lookup", "veth_field"}
    (row,) = [r for r in core_report("tests/corpus/modules") if r.access == "veth_priv->requested_headroom"]
    where = "in veth" if os.path.exists("/sys/kernel/btf/veth") else ""
    assert row.results["this kernel"].startswith("ok") and row.results["this kernel"].endswith(where)


def test_mutated_objects_open_and_load_to_typed_errors_only() -> None:
    """Flipped words, bits and truncations of every shipped object: bpfkit.open() succeeds or raises
    ObjectFormatError, and what opens loads or raises a BpfError — nothing raw, nothing hangs."""
    import random
    import time

    from bpfkit.shipped import shipped_objects

    blobs = [p.read_bytes() for _, p in sorted(shipped_objects().items())]
    rng = random.Random(2026)
    opened = refused = 0
    for case in range(400):
        d = bytearray(rng.choice(blobs))
        mode = rng.random()
        if mode < 0.6:
            for _ in range(rng.randint(1, 4)):
                struct.pack_into("<I", d, rng.randrange(len(d) - 4) & ~3,
                                 rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, rng.getrandbits(32), rng.getrandbits(8)]))
        elif mode < 0.8:
            d[rng.randrange(len(d))] ^= 1 << rng.randrange(8)
        else:
            d = d[: rng.randrange(len(d))]
        t0 = time.monotonic()
        try:
            spec = bpfkit.open(bytes(d), "mutant", loader="native")
        except bpfkit.ObjectFormatError:
            refused += 1
            continue
        finally:
            assert time.monotonic() - t0 < 5, f"case {case} took {time.monotonic() - t0:.1f}s"
        opened += 1
        if case % 8 == 0:  # loading costs more: a sample goes to the kernel too
            try:
                spec.load().close()
            except bpfkit.BpfError:
                pass
    assert opened > 100 and refused > 100


def test_elf_names_equal_pyelftools_for_every_shipped_object_and_a_non_ascii_one() -> None:
    # the reader decodes an ASCII string table once and slices names out of the text; a table with
    # other bytes takes the per-name path: both must give what pyelftools reads
    import io

    from elftools.elf.elffile import ELFFile

    from bpfkit.shipped import shipped_objects

    blobs = [p.read_bytes() for _, p in sorted(shipped_objects().items())]
    count = find_object("tests/count").read_bytes()
    parsed = ElfObject.parse(count, "x")
    strtab = parsed.sections[parsed.sections[parsed.symtab_index].link]
    at = count.index(b"\0counts\0", strtab.offset, strtab.offset + strtab.size) + 1
    blobs.append(count[:at] + "cöunt".encode() + count[at + 6:])  # 6 bytes for 6
    for data in blobs:
        ours = ElfObject.parse(data, "x")
        theirs = ELFFile(io.BytesIO(data))
        assert [s.name for s in ours.sections] == [s.name for s in theirs.iter_sections()]
        symtab = theirs.get_section_by_name(".symtab")
        assert [s.name for s in ours.symbols] == [s.name for s in symtab.iter_symbols()]
    assert "cöunt" in [s.name for s in ElfObject.parse(blobs[-1], "x").symbols]
