"""A corrupt ``.bpf.o`` is an ObjectFormatError, never a crash (issue 11): libbpf 1.1.2 dies with
SIGSEGV in ``bpf_object__open_mem`` on a struct member whose type id points past the last type, so
bpfkit checks the ELF, ``.BTF`` and ``.BTF.ext`` itself before libbpf sees a byte. Each corrupt
object is opened in a child process, so a crash fails the test instead of killing the suite."""
from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bpfkit
from bpfkit.binaries.elfreader import ElfReader
from bpfkit.errors import ObjectFormatError
from bpfkit.loader.precheck import check_object

_CHILD = textwrap.dedent("""
    import sys
    import bpfkit
    from bpfkit.errors import BpfError
    outcomes = []
    for path in sys.argv[1:]:
        try:
            bpfkit.open(path)
            outcomes.append("ok")
        except BpfError as e:
            outcomes.append(type(e).__name__)
    print(" ".join(outcomes))
""")

# extra bytes after the 12-byte common part of each BTF kind: (fixed, per vlen entry)
_TAIL = {1: (4, 0), 3: (12, 0), 4: (0, 12), 5: (0, 12), 6: (0, 8), 13: (0, 8), 14: (4, 0), 15: (0, 12),
         17: (4, 0), 19: (0, 12)}


def _object(name: str) -> bytes:
    spec = bpfkit.open(name)
    assert spec.path is not None
    return Path(spec.path).read_bytes()


def _member_type_words(data: bytes) -> list[int]:
    """File offsets of the ``type`` word of every struct/union member in the object's ``.BTF``."""
    elf = ElfReader(data, "t")
    sec = elf.section(".BTF")
    assert sec is not None
    raw = elf.section_data(sec)
    hdr_len, type_off, type_len = struct.unpack_from("<III", raw, 4)
    pos, end, out = hdr_len + type_off, hdr_len + type_off + type_len, []
    while pos < end:
        info = struct.unpack_from("<I", raw, pos + 4)[0]
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        fixed, per = _TAIL.get(kind, (0, 0))
        if kind in (4, 5):
            out += [sec.offset + pos + 12 + 12 * i + 4 for i in range(vlen)]
        pos += 12 + fixed + per * vlen
    return out


def _open_in_child(tmp_path: Path, objects: list[bytes]) -> list[str]:
    paths = []
    for i, data in enumerate(objects):
        p = tmp_path / f"corrupt{i}.bpf.o"
        p.write_bytes(data)
        paths.append(str(p))
    # the libbpf backend: it is the one that crashed (a native loader reads the object itself)
    env = {**os.environ, "BPFKIT_LOADER": "libbpf"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, *paths], capture_output=True, text=True, timeout=300,
                          env=env)
    assert proc.returncode == 0, f"opening corrupt objects killed the process (rc {proc.returncode}): " \
                                 f"{proc.stderr[-2000:]}"
    return proc.stdout.split()


@pytest.fixture(autouse=True)
def _libbpf_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BPFKIT_LOADER", "libbpf")


def test_member_type_past_the_last_type_is_an_error_not_a_crash(tmp_path: Path) -> None:
    # the word a fuzz run found: one struct member's type set to 0x6babe391 in tp_kinds.bpf.o
    orig = _object("tests/tp_kinds")
    objects = []
    for off in _member_type_words(orig):
        data = bytearray(orig)
        struct.pack_into("<I", data, off, 0x6BABE391)
        objects.append(bytes(data))
    assert len(objects) > 10
    assert set(_open_in_child(tmp_path, objects)) == {"ObjectFormatError"}
    with pytest.raises(ObjectFormatError, match=r"refers to type id 1806427025"):
        bpfkit.open(objects[0])  # the object reader behind open() (both backends) says it first
    with pytest.raises(ObjectFormatError, match=r"\.BTF: .*refers to type id 1806427025"):
        check_object(objects[0], "tp_kinds")  # and libbpf_open's own check, should it be reached


def test_mutated_btf_sections_never_crash(tmp_path: Path) -> None:
    """Words of .BTF and .BTF.ext set to edge and random values (the mutations that crashed libbpf 4
    times in 10,000): every open returns or raises a BpfError."""
    rng = random.Random(20261130)
    objects = []
    for name in ("tests/tp_kinds", "examples/execs", "tests/probes_usdt", "examples/probes"):
        orig = _object(name)
        elf = ElfReader(orig, name)
        for secname in (".BTF", ".BTF.ext"):
            sec = elf.section(secname)
            assert sec is not None
            for _ in range(60):
                data = bytearray(orig)
                for _ in range(rng.randint(1, 2)):
                    i = sec.offset + rng.randrange(sec.size // 4) * 4
                    word = rng.choice([0, 1, 3, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, sec.size, rng.randrange(1 << 32)])
                    struct.pack_into("<I", data, i, word)
                objects.append(bytes(data))
    outcomes = _open_in_child(tmp_path, objects)
    assert len(outcomes) == len(objects)
    assert "ObjectFormatError" in outcomes


def test_relocation_and_symbol_tables_are_checked() -> None:
    orig = _object("tests/count")
    elf = ElfReader(orig, "count")
    rel = next(s for s in elf.sections if s.type == 9)
    data = bytearray(orig)
    struct.pack_into("<Q", data, rel.offset + 8, (0xFFFF << 32) | 1)  # r_sym far past the symbol table
    with pytest.raises(ObjectFormatError, match="relocation 0 .* points outside"):
        check_object(bytes(data), "count")
    symtab = next(s for s in elf.sections if s.type == 2)
    data = bytearray(orig)
    struct.pack_into("<I", data, symtab.offset + 24, 0xFFFFFF)  # symbol 1's name past the string table
    with pytest.raises(ObjectFormatError, match="symbol 1 points outside"):
        check_object(bytes(data), "count")


def test_every_shipped_object_passes_the_checks() -> None:
    from bpfkit.shipped import find_object

    for name in ("tests/count", "tests/tp_kinds", "tools/offcputime", "tools/profile", "examples/execs",
                 "tests/maps_types", "tests/testrun_progs"):
        path = find_object(name)
        assert path is not None, name
        check_object(Path(path).read_bytes(), name)


def test_btf_ext_records_are_checked_against_the_btf() -> None:
    orig = _object("tests/count")
    elf = ElfReader(orig, "count")
    ext = elf.section(".BTF.ext")
    assert ext is not None
    raw = elf.section_data(ext)
    hdr_len, func_off = struct.unpack_from("<II", raw, 4)
    first_record = ext.offset + hdr_len + func_off + 4 + 8  # rec_size, then sec_name_off and num_info
    data = bytearray(orig)
    struct.pack_into("<I", data, first_record + 4, 1)  # its type: id 1, not a FUNC
    with pytest.raises(ObjectFormatError, match=r"\.BTF\.ext: func_info .* not a FUNC"):
        check_object(bytes(data), "count")
    data = bytearray(orig)
    struct.pack_into("<I", data, ext.offset + hdr_len + func_off + 4 + 4, 0x7FFFFFFF)  # num_info
    with pytest.raises(ObjectFormatError, match=r"\.BTF\.ext"):
        bpfkit.open(bytes(data))
    with pytest.raises(ObjectFormatError, match="lies outside"):
        check_object(bytes(data), "count")
