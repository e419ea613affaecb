"""USDT note parsing and libbpf usdt.bpf.h spec encoding (bpfkit.binaries.usdt_notes, bpfkit.probes.usdt_spec)."""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

from bpfkit.errors import ObjectFormatError
from bpfkit.binaries import elf
from bpfkit.probes.usdt_spec import USDT_MAX_ARGS, USDT_SPEC_SIZE, encode_usdt_spec
from bpfkit.binaries.usdt_notes import (
    PT_REGS_OFFSETS,
    UsdtArg,
    UsdtArgKind,
    parse_usdt_args,
    read_usdt_notes,
)
from bpfkit.testing import fixtures

CONST, REG, DEREF = UsdtArgKind.CONST, UsdtArgKind.REG, UsdtArgKind.REG_DEREF


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def _readelf_notes(path: Path) -> list[dict[str, str]]:
    out = _run("readelf", "-n", str(path))
    notes: list[dict[str, str]] = []
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("Provider:"):
            notes.append({"provider": line.split(":", 1)[1].strip()})
        elif notes and line.startswith("Name:"):
            notes[-1]["name"] = line.split(":", 1)[1].strip()
        elif notes and line.startswith("Location:"):
            for k, v in re.findall(r"(\w+): (0x[0-9a-f]+)", line):
                notes[-1][k.lower()] = v
        elif notes and line.startswith("Arguments:"):
            notes[-1]["args"] = line.split(":", 1)[1].strip()
    return notes


@pytest.fixture(scope="module")
def target() -> Path:
    return fixtures.usdt_target()


@pytest.fixture(scope="module")
def lib() -> Path:
    return fixtures.usdt_lib()


# --------------------------------------------------------------------------- notes


def test_notes_of_the_executable(target: Path) -> None:
    notes = read_usdt_notes(target)
    assert sorted((n.provider, n.name) for n in notes) == [("bpfkit", "consts"), ("bpfkit", "guarded"), ("bpfkit", "tick")]
    by_name = {n.name: n for n in notes}
    tick = by_name["tick"].arg_specs
    assert [(a.size, a.signed) for a in tick] == [(4, True), (8, True)]
    assert all(a.kind in (REG, DEREF) for a in tick)
    assert [(a.size, a.signed) for a in by_name["guarded"].arg_specs] == [(4, True)]
    consts = by_name["consts"].arg_specs
    assert [(a.kind, a.size, a.signed) for a in consts] == [(CONST, 4, True), (CONST, 8, True), (CONST, 1, False)]


def test_notes_match_readelf(target: Path, lib: Path) -> None:
    if not shutil.which("readelf"):
        pytest.skip("binutils readelf not installed")
    for path in (target, lib):
        theirs = _readelf_notes(path)
        mine = read_usdt_notes(path)
        assert len(mine) == len(theirs)
        for n, t in zip(mine, theirs):
            assert (n.provider, n.name, n.args) == (t["provider"], t["name"], t["args"])
            assert (n.address, n.base, n.semaphore) == (int(t["location"], 16), int(t["base"], 16), int(t["semaphore"], 16))


def test_probe_sites_are_nops(target: Path, lib: Path) -> None:
    # sys/sdt.h puts a single-byte nop at every probe site; the file offset
    # must land exactly on it, in the executable and in the library.
    for path in (target, lib):
        data = path.read_bytes()
        for n in read_usdt_notes(path):
            assert data[n.offset] == 0x90, (path, n)
            assert n.offset == elf.address_to_offset(path, n.address)


def test_semaphore(target: Path) -> None:
    notes = {n.name: n for n in read_usdt_notes(target)}
    assert notes["tick"].semaphore == notes["tick"].semaphore_offset == 0
    assert notes["consts"].semaphore == 0
    guarded = notes["guarded"]
    assert guarded.semaphore and guarded.semaphore_offset
    with open(target, "rb") as f:
        e = ELFFile(f)
        symtab, probes = e.get_section_by_name(".symtab"), e.get_section_by_name(".probes")
        assert isinstance(symtab, SymbolTableSection) and probes is not None
        syms = symtab.get_symbol_by_name("bpfkit_guarded_semaphore")
        assert syms is not None and len(syms) == 1
        sym = syms[0]
        assert guarded.semaphore == sym["st_value"]
        # The kernel's ref_ctr_offset is the file offset: section-header math.
        assert guarded.semaphore_offset == guarded.semaphore - probes["sh_addr"] + probes["sh_offset"]
    assert target.read_bytes()[guarded.semaphore_offset : guarded.semaphore_offset + 2] == b"\0\0"


def test_library_probe_is_in_the_library_only(target: Path, lib: Path) -> None:
    [n] = read_usdt_notes(lib)
    assert (n.provider, n.name, n.semaphore) == ("bpfkit_lib", "libtick", 0)
    assert [(a.size, a.signed) for a in n.arg_specs] == [(4, True)]
    assert n.path == os.path.realpath(lib)
    assert read_usdt_notes(target, provider="bpfkit_lib") == []


def test_filters_and_binaries_without_notes(target: Path) -> None:
    assert [n.name for n in read_usdt_notes(target, provider="bpfkit", name="tick")] == ["tick"]
    assert read_usdt_notes(target, name="nope") == []
    assert read_usdt_notes(fixtures.uprobe_target()) == []


def test_stapsdt_base_adjustment(target: Path, tmp_path: Path) -> None:
    # Pretend the binary was linked with .stapsdt.base 0x10 lower than where it
    # is now (what prelink does): every pc and semaphore must move up by 0x10.
    copy = tmp_path / "moved"
    shutil.copy(target, copy)
    data = bytearray(copy.read_bytes())
    with open(target, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".note.stapsdt")
        assert sec is not None
        pos, end = sec["sh_offset"], sec["sh_offset"] + sec["sh_size"]
    while pos < end:
        namesz, descsz, _ = struct.unpack_from("<III", data, pos)
        desc = pos + 12 + ((namesz + 3) & ~3)
        (base,) = struct.unpack_from("<Q", data, desc + 8)
        struct.pack_into("<Q", data, desc + 8, base - 0x10)
        pos = desc + ((descsz + 3) & ~3)
    copy.write_bytes(bytes(data))
    orig = {n.name: n for n in read_usdt_notes(target)}
    for n in read_usdt_notes(copy):
        o = orig[n.name]
        assert n.address == o.address + 0x10 and n.offset == o.offset + 0x10
        assert n.base == o.base - 0x10
        assert n.semaphore == (o.semaphore + 0x10 if o.semaphore else 0)


def test_fixture_programs_run() -> None:
    with fixtures.spawn(fixtures.usdt_target(), "4") as proc:
        assert proc.pid > 0
        assert proc.finish().split() == ["guarded=0"]
    with fixtures.spawn(fixtures.uprobe_target(pie=False), "5", "3", "4") as proc:
        assert proc.finish().split() == ["sum=35"]


# --------------------------------------------------------------------------- argument parsing

PARSE_TABLE = [
    ("-4@%edi", 4, True, REG, "rdi", 0, 0),
    ("8@%rax", 8, False, REG, "rax", 0, 0),
    ("-4@-4(%rbp)", 4, True, DEREF, "rbp", -4, 0),
    ("8@$5", 8, False, CONST, None, 0, 5),
    ("-8@$-9", 8, True, CONST, None, 0, -9),
    ("-4@$0x20", 4, True, CONST, None, 0, 32),
    ("4@8(%rsp)", 4, False, DEREF, "rsp", 8, 0),
    ("-1@%dil", 1, True, REG, "rdi", 0, 0),
    ("1@%al", 1, False, REG, "rax", 0, 0),
    ("-2@%ax", 2, True, REG, "rax", 0, 0),
    ("2@%r8w", 2, False, REG, "r8", 0, 0),
    ("4@%r12d", 4, False, REG, "r12", 0, 0),
    ("1@%r15b", 1, False, REG, "r15", 0, 0),
    ("8@%r9", 8, False, REG, "r9", 0, 0),
    ("8@(%rbx)", 8, False, DEREF, "rbx", 0, 0),
    ("8@0x10(%rcx)", 8, False, DEREF, "rcx", 16, 0),
    ("-8@-1204(%rbp)", 8, True, DEREF, "rbp", -1204, 0),
    ("2@%si", 2, False, REG, "rsi", 0, 0),
    ("1@%spl", 1, False, REG, "rsp", 0, 0),
]


@pytest.mark.parametrize("text,size,signed,kind,reg,offset,value", PARSE_TABLE)
def test_parse_arg(text: str, size: int, signed: bool, kind: UsdtArgKind, reg: str | None, offset: int, value: int) -> None:
    [arg] = parse_usdt_args(text)
    assert (arg.size, arg.signed, arg.kind, arg.register, arg.offset, arg.value) == (size, signed, kind, reg, offset, value)
    assert arg.symbol is None and arg.text == text


def test_parse_rip_relative_symbol() -> None:
    [a, b] = parse_usdt_args("8@sym(%rip) -4@counter+8(%rip)")
    assert (a.kind, a.register, a.symbol, a.offset) == (DEREF, "rip", "sym", 0)
    assert (b.size, b.signed, b.symbol, b.offset) == (4, True, "counter", 8)


def test_parse_several_and_none() -> None:
    assert [a.register for a in parse_usdt_args("-4@%edi  8@%rax\t-8@%rdx")] == ["rdi", "rax", "rdx"]
    assert parse_usdt_args("") == []


@pytest.mark.parametrize(
    "text,why",
    [
        ("4@%ah", "high-byte"),
        ("8@%xmm0", "unsupported x86-64 register"),
        ("3@%eax", "size 3"),
        ("%eax", "SIZE@LOCATION"),
        ("8@(%rax,%rbx,8)", "indexed"),
        ("8@%fs:0x28", "unsupported operand"),
    ],
)
def test_parse_errors(text: str, why: str) -> None:
    with pytest.raises(ObjectFormatError, match=why):
        parse_usdt_args(text)


# --------------------------------------------------------------------------- struct __bpf_usdt_spec


def _bpf_arg(spec: bytes, i: int, regs: dict[str, int] | None = None) -> int:
    """What usdt.bpf.h's bpf_usdt_arg() computes for a CONST or REG arg."""
    val_off, kind, reg_off, signed, shift = struct.unpack_from("=QihBb", spec, 16 * i)
    val: int
    if kind == CONST:
        val = val_off
    else:
        assert kind == REG and regs is not None
        [val] = [v for r, v in regs.items() if PT_REGS_OFFSETS[r] == reg_off]
    val = (val << shift) & (2**64 - 1)
    if signed:
        return int((val - 2**64 if val >> 63 else val) >> shift)
    return int(val >> shift)


def test_encode_fields() -> None:
    spec = encode_usdt_spec("-4@%edi 8@-16(%rbp) -8@$-9", cookie=0xDEAD)
    assert len(spec) == USDT_SPEC_SIZE == 208
    args = [struct.unpack_from("=QihBb", spec, 16 * i) for i in range(USDT_MAX_ARGS)]
    assert args[0] == (0, 1, 112, 1, 32)
    assert args[1] == (2**64 - 16, 2, 32, 0, 0)
    assert args[2] == (2**64 - 9, 0, 0, 1, 0)
    assert all(a == (0, 0, 0, 0, 0) for a in args[3:])
    assert struct.unpack_from("=Qh", spec, 192) == (0xDEAD, 3)
    assert spec[202:] == bytes(6)


def test_encoded_consts_evaluate_to_source_values(target: Path) -> None:
    # DTRACE_PROBE3(bpfkit, consts, 7, -9L, (unsigned char)200): gcc writes the
    # last one as "1@$-56"; the bitshift must turn it back into 200.
    [note] = read_usdt_notes(target, name="consts")
    spec = encode_usdt_spec(note.arg_specs)
    assert [_bpf_arg(spec, i) for i in range(3)] == [7, -9, 200]


def test_encoded_regs_truncate_and_extend() -> None:
    spec = encode_usdt_spec("-4@%edi 4@%esi -1@%dl 2@%cx")
    regs = {"rdi": 0x1_FFFF_FFFE, "rsi": 0xFFFF_FFFF_FFFF_FFFF, "rdx": 0x80, "rcx": 0x12345}
    assert [_bpf_arg(spec, i, regs) for i in range(4)] == [-2, 0xFFFF_FFFF, -128, 0x2345]


def test_encode_errors() -> None:
    with pytest.raises(ObjectFormatError, match="at most 12"):
        encode_usdt_spec(" ".join(["8@%rax"] * 13))
    with pytest.raises(ObjectFormatError, match="RIP-relative"):
        encode_usdt_spec("8@sym(%rip)")
    with pytest.raises(ObjectFormatError, match="rip"):
        encode_usdt_spec("8@16(%rip)")
    with pytest.raises(ObjectFormatError, match="register"):
        encode_usdt_spec([UsdtArg(8, False, REG, register="xmm0")])
    with pytest.raises(ObjectFormatError, match="64 bits"):
        encode_usdt_spec("8@%rax", cookie=2**64)
    assert encode_usdt_spec([], cookie=-1)[192:200] == b"\xff" * 8


def test_layout_matches_usdt_bpf_h(tmp_path: Path) -> None:
    # Compile libbpf's header for BPF and read the struct layout from BTF.
    clang = shutil.which("clang") or shutil.which("clang-14")
    bpftool = shutil.which("bpftool")
    if not clang or not bpftool or not os.path.exists("/usr/include/bpf/usdt.bpf.h"):
        pytest.skip("needs clang, bpftool and libbpf-dev's usdt.bpf.h")
    src = tmp_path / "t.bpf.c"
    src.write_text(
        "#include <stdbool.h>\n#include <linux/types.h>\n#include <linux/bpf.h>\n#include <linux/ptrace.h>\n"
        "#include <bpf/bpf_helpers.h>\n#include <bpf/usdt.bpf.h>\n"
        "struct __bpf_usdt_spec bpfkit_probe_spec;\n"
    )
    machine = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip() or "x86_64-linux-gnu"
    obj = tmp_path / "t.o"
    subprocess.run(
        [clang, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86", f"-I/usr/include/{machine}", "-c", str(src), "-o", str(obj)],
        check=True,
    )
    dump = _run(bpftool, "btf", "dump", "file", str(obj), "format", "raw")

    def layout(struct_name: str) -> tuple[int, dict[str, int]]:
        m = re.search(rf"STRUCT '{struct_name}' size=(\d+) vlen=\d+\n((?:\t.*\n)+)", dump)
        assert m, dump
        members = dict(re.findall(r"'(\w+)' type_id=\d+ bits_offset=(\d+)", m.group(2)))
        return int(m.group(1)), {k: int(v) // 8 for k, v in members.items()}

    size, members = layout("__bpf_usdt_spec")
    assert size == USDT_SPEC_SIZE
    assert members == {"args": 0, "usdt_cookie": 16 * USDT_MAX_ARGS, "arg_cnt": 16 * USDT_MAX_ARGS + 8}
    size, members = layout("__bpf_usdt_arg_spec")
    assert size == 16 == struct.calcsize("=QihBb")
    assert members == {"val_off": 0, "arg_type": 8, "reg_off": 12, "arg_signed": 14, "arg_bitshift": 15}


def test_pt_regs_offsets_match_running_kernel() -> None:
    bpftool = shutil.which("bpftool")
    if not bpftool or not os.path.exists("/sys/kernel/btf/vmlinux"):
        pytest.skip("needs bpftool and kernel BTF (/sys/kernel/btf/vmlinux)")
    if os.uname().machine != "x86_64":
        pytest.skip("pt_regs offsets are x86-64 only")
    dump = _run(bpftool, "btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "raw")
    m = re.search(r"STRUCT 'pt_regs' size=\d+ vlen=\d+\n((?:\t.*\n)+)", dump)
    assert m
    kernel = {k: int(v) // 8 for k, v in re.findall(r"'(\w+)' type_id=\d+ bits_offset=(\d+)", m.group(1))}
    rename = {"bp": "rbp", "bx": "rbx", "ax": "rax", "cx": "rcx", "dx": "rdx", "si": "rsi", "di": "rdi", "ip": "rip", "sp": "rsp"}
    for name, off in PT_REGS_OFFSETS.items():
        kname = {v: k for k, v in rename.items()}.get(name, name)
        assert kernel[kname] == off, name
