"""Malformed input to bpfkit.symbols: a typed BpfError or a skipped entry with a reason, never a raw
exception or a hang."""
from __future__ import annotations

import lzma
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from bpfkit.errors import BpfError, BpfNotFoundError, BpfUsageError, ObjectFormatError
from bpfkit.symbols import BUILD_ID_FRAME, UNKNOWN, ElfCache, Symbolizer, load_elf_symbols, parse_maps, \
    parse_perf_map
from bpfkit.binaries.elfreader import ElfReader
from bpfkit.testing.fixtures import symbols as fx


def test_not_an_elf(tmp_path: Path) -> None:
    p = tmp_path / "text"
    p.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(ObjectFormatError, match="not an ELF file"):
        load_elf_symbols(str(p), cache=ElfCache())
    with pytest.raises(BpfNotFoundError):
        load_elf_symbols(str(tmp_path / "missing"), cache=ElfCache())
    with pytest.raises(ObjectFormatError):
        load_elf_symbols(str(tmp_path), cache=ElfCache())  # a directory


@pytest.mark.parametrize("cut", [4, 20, 63, 64, 200, 4096, -200, -1])
def test_truncated_elf(tmp_path: Path, cut: int) -> None:
    data = fx.symbols_exe(pie=True).read_bytes()
    p = tmp_path / "cut"
    p.write_bytes(data[:cut])
    with pytest.raises(ObjectFormatError, match="truncated|not an ELF|outside the file"):
        load_elf_symbols(str(p), cache=ElfCache())


def test_fuzzed_headers_never_escape_as_raw_exceptions(tmp_path: Path) -> None:
    """Random bytes written over the ELF, program and section headers and the symbol tables:
    every outcome is a table or a BpfError, each within a second."""
    data = bytearray(fx.symbols_exe(pie=True).read_bytes())
    with ElfReader(bytes(data), "x") as elf:
        hot = [(0, 64), (64, 56 * 13)]
        for s in elf.sections:
            if s.name in (".symtab", ".strtab", ".dynsym", ".note.gnu.build-id"):
                hot.append((s.offset, s.size))
        e_shoff = struct.unpack_from("<Q", data, 0x28)[0]
        hot.append((e_shoff, 64 * len(elf.sections)))
    rng = np.random.default_rng(13)
    p = tmp_path / "fuzz"
    outcomes = {"ok": 0, "error": 0}
    for _ in range(300):
        d = bytearray(data)
        lo, size = hot[int(rng.integers(len(hot)))]
        for _k in range(int(rng.integers(1, 8))):
            pos = lo + int(rng.integers(max(size, 1)))
            if pos < len(d):
                d[pos] = int(rng.integers(256))
        p.write_bytes(bytes(d))
        t = time.monotonic()
        try:
            load_elf_symbols(str(p), cache=ElfCache())
            outcomes["ok"] += 1
        except BpfError:
            outcomes["error"] += 1
        assert time.monotonic() - t < 1.0
    assert outcomes["error"] > 0 and outcomes["ok"] > 0, outcomes


def test_corrupt_gnu_debugdata_is_reported(tmp_path: Path) -> None:
    exe = tmp_path / "bad_mini"
    shutil.copy(fx.split_debug_exe(pie=True)[0], exe)
    junk = tmp_path / "junk.xz"
    junk.write_bytes(lzma.compress(b"this is not an ELF image")[:-8] + b"garbage!")
    subprocess.run(["objcopy", "--add-section", f".gnu_debugdata={junk}", str(exe)], check=True)
    with ElfReader.open(str(exe)) as elf, pytest.raises(ObjectFormatError, match="gnu_debugdata"):
        elf.gnu_debugdata()
    es = load_elf_symbols(str(exe), debug_dirs=(), cache=ElfCache())
    assert len(es.table) == 0 and es.sources == ()
    assert any(".gnu_debugdata" in p for p in es.problems)
    # a valid xz stream holding something that is not an ELF: also a reason, not an exception
    junk.write_bytes(lzma.compress(b"not an ELF at all"))
    exe2 = tmp_path / "bad_mini2"
    shutil.copy(fx.split_debug_exe(pie=True)[0], exe2)
    subprocess.run(["objcopy", "--add-section", f".gnu_debugdata={junk}", str(exe2)], check=True)
    es2 = load_elf_symbols(str(exe2), debug_dirs=(), cache=ElfCache())
    assert any("not an ELF file" in p for p in es2.problems)


def test_bad_maps_lines_are_skipped() -> None:
    text = ("00400000-00401000 r-xp 00000000 08:01 42 /usr/bin/prog\n"
            "garbage line\n"
            "00402000-00401000 r-xp 00000000 08:01 42 /usr/bin/inverted\n"
            "7f0000000000-7f0000001000 r-xp 00001000 08:01 43 /opt/my lib/with spaces.so (deleted)\n"
            "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n"
            "7f1000000000-7f1000001000 rwxp 00000000 00:00 0 \n"
            "7f2000000000-7f2000001000 r--p 00000000 00:00 0 [anon:jit]\n"
            "zz-yy r-xp 0 0:0 0\n")
    pm = parse_maps(text, 1)
    assert [(m.path, m.kind, m.deleted) for m in pm.mappings] == [
        ("/usr/bin/prog", "file", False), ("/opt/my lib/with spaces.so", "file", True),
        ("", "anon", False), ("[anon:jit]", "anon", False), ("[stack]", "stack", False)]
    assert len(pm.skipped) == 3
    assert pm.find(np.array([0x400010, 0x7F0000000FFF, 0x7F0000001000, 0x1], np.uint64)).tolist() == [0, 1, -1, -1]


def test_garbage_perf_map() -> None:
    text = "\n".join(["1000 10 ok_one", "\x00\x01\x02 binary junk", "2000", "3000 -5 neg", "zzzz 10 x",
                      "ffffffffffffffffffffffff 10 too_big", "0x4000 0x20 ok two words", "   ", "5000 10"])
    table, skipped = parse_perf_map(text)
    assert len(table) == 2 and len(skipped) == 6
    idx, off = table.lookup(np.array([0x1005, 0x4010, 0x2000], np.uint64))
    assert table.names_of(idx).tolist() == ["ok_one", "ok two words", UNKNOWN]


def test_symbolizer_usage_errors() -> None:
    sym = Symbolizer(cache=ElfCache())
    with pytest.raises(BpfUsageError, match="BUILD_ID_FRAME"):
        sym.build_id_frames(np.zeros(3, np.uint64))
    # a pid that cannot exist (above pid_max)
    with pytest.raises(BpfNotFoundError, match="does not exist"):
        sym.user(1 << 30, [0x1000])
    assert sym.remember(1 << 30) is None
    # 2-D input is flattened, empty input gives empty frames
    assert len(sym.user(os.getpid(), np.zeros((2, 3), np.uint64))) == 6
    assert len(sym.user(os.getpid(), [])) == 0
    assert len(sym.build_id_frames(np.zeros(0, BUILD_ID_FRAME))) == 0
