"""ELF symbol resolution (bpfkit.binaries.elf), cross-checked against binutils."""
from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from bpfkit.errors import BpfNotFoundError, ObjectFormatError
from bpfkit.binaries import elf, libraries
from bpfkit.testing import fixtures

needs_binutils = pytest.mark.skipif(
    not (shutil.which("objdump") and shutil.which("readelf")), reason="binutils (objdump, readelf) not installed"
)


def _run(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout


def _objdump_file_offset(path: Path | str, func: str) -> int:
    out = _run("objdump", "-d", "-F", f"--disassemble={func}", str(path))
    m = re.search(rf"^[0-9a-f]+ <{re.escape(func)}> \(File Offset: (0x[0-9a-f]+)\):", out, re.M)
    assert m, out
    return int(m.group(1), 16)


def _readelf_funcs(path: Path | str, table: str) -> list[tuple[str, int, str, str]]:
    """(name incl. version, value, type, bind) of defined FUNC/IFUNC symbols."""
    out = _run("readelf", "-W", table, str(path))
    rows = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0].endswith(":") and parts[3] in ("FUNC", "IFUNC") and parts[6] != "UND":
            value = int(parts[1], 16)
            if value:
                rows.append((parts[7], value, parts[3], parts[4]))
    return rows


@pytest.fixture(scope="module")
def libc() -> str:
    return libraries.resolve_library("c")


@pytest.fixture(scope="module", params=["pie", "nopie"])
def target(request: pytest.FixtureRequest) -> Path:
    return fixtures.uprobe_target(pie=request.param == "pie")


# --------------------------------------------------------------------------- offsets


@needs_binutils
@pytest.mark.parametrize("func", ["bpfkit_add", "bpfkit_void"])
def test_symbol_offset_matches_objdump(target: Path, func: str) -> None:
    assert elf.symbol_offset(target, func) == _objdump_file_offset(target, func)


def test_offset_points_at_the_function_bytes(target: Path) -> None:
    # Second, independent route: the function's bytes taken from .text via the
    # section header must be the bytes at the file offset we computed.
    [sym] = elf.list_symbols(target, "bpfkit_add")
    with open(target, "rb") as f:
        text = ELFFile(f).get_section_by_name(".text")
        assert text is not None
        from_section = text.data()[sym.address - text["sh_addr"] :][: sym.size]
        f.seek(elf.symbol_offset(target, "bpfkit_add"))
        assert f.read(sym.size) == from_section
    assert sym.size > 0


def test_nopie_offset_is_not_the_address() -> None:
    [sym] = elf.list_symbols(fixtures.uprobe_target(pie=False), "bpfkit_add")
    assert sym.address >= 0x400000
    assert sym.offset < sym.address


def test_raw_address_and_displacement(target: Path) -> None:
    [sym] = elf.list_symbols(target, "bpfkit_add")
    off = elf.symbol_offset(target, "bpfkit_add")
    assert elf.symbol_offset(target, hex(sym.address)) == off
    assert elf.symbol_offset(target, "bpfkit_add+0x4") == off + 4
    assert elf.symbol_offset(target, "bpfkit_add+4", offset=2) == off + 6
    assert elf.address_to_offset(target, sym.address) == off


def test_raw_address_outside_code_is_rejected(target: Path) -> None:
    with pytest.raises(BpfNotFoundError, match="executable segment"):
        elf.symbol_offset(target, "0xffffffff00")


@needs_binutils
def test_list_symbols_matches_readelf(target: Path) -> None:
    want = {(name, value) for name, value, _, _ in _readelf_funcs(target, "--syms") if "@" not in name}
    got = {(s.name, s.address) for s in elf.list_symbols(target) if s.version is None}
    assert got == want


def test_list_symbols_wildcard(target: Path) -> None:
    syms = elf.list_symbols(target, "bpfkit_*")
    assert sorted(s.name for s in syms) == ["bpfkit_add", "bpfkit_void"]
    for s in syms:
        assert s.binding == "global" and not s.is_ifunc and s.size > 0
        assert s.offset == elf.symbol_offset(target, s.name)
    assert elf.list_symbols(target, "no_such_*") == []


# --------------------------------------------------------------------------- versions, libc


@needs_binutils
def test_every_versioned_libc_function_resolves_like_readelf(libc: str) -> None:
    rows = [r for r in _readelf_funcs(libc, "--dyn-syms") if "@" in r[0]]
    assert len(rows) > 1000
    default_of: dict[str, int] = {}
    for full, value, _type, _bind in rows:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", elf.IfuncWarning)
            assert elf.find_symbol(libc, full).address == value, full
            assert elf.symbol_offset(libc, full) == elf.address_to_offset(libc, value), full
        if "@@" in full:
            default_of[full.split("@")[0]] = value
    # A plain name means the default (@@) version.
    for name, value in list(default_of.items())[:300]:
        assert elf.find_symbol(libc, name).address == value, name


def test_malloc_spellings_agree(libc: str) -> None:
    plain = elf.symbol_offset(libc, "malloc")
    sym = elf.find_symbol(libc, "malloc")
    assert sym.version is not None and sym.default_version
    assert elf.symbol_offset(libc, f"malloc@@{sym.version}") == plain
    assert elf.symbol_offset(libc, f"malloc@{sym.version}") == plain


@needs_binutils
def test_hidden_version_is_a_different_function(libc: str) -> None:
    rows = _readelf_funcs(libc, "--dyn-syms")
    defaults = {r[0].split("@@")[0]: r[1] for r in rows if "@@" in r[0]}
    hidden = [(r[0], r[1]) for r in rows if "@@" not in r[0] and "@" in r[0]]
    pairs = [(h, v) for h, v in hidden if h.split("@")[0] in defaults and defaults[h.split("@")[0]] != v]
    if not pairs:
        pytest.skip("this libc has no compat-versioned function with a separate implementation")
    full, value = pairs[0]
    name = full.split("@")[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", elf.IfuncWarning)
        assert elf.find_symbol(libc, full).address == value
        assert elf.find_symbol(libc, name).address == defaults[name]
        with pytest.raises(BpfNotFoundError, match="versions there are"):
            # "@@" insists on the default version, which this one is not
            elf.symbol_offset(libc, full.replace("@", "@@"))


def test_unknown_version(libc: str) -> None:
    with pytest.raises(BpfNotFoundError, match=r"malloc@@GLIBC_9\.9.*versions there are: malloc@@"):
        elf.symbol_offset(libc, "malloc@@GLIBC_9.9")


@needs_binutils
def test_ifunc_warns(libc: str) -> None:
    ifuncs = [r[0] for r in _readelf_funcs(libc, "--dyn-syms") if r[2] == "IFUNC" and "@@" in r[0]]
    if not ifuncs:
        pytest.skip("this libc has no GNU ifunc")
    with pytest.warns(elf.IfuncWarning, match="ifunc"):
        elf.symbol_offset(libc, ifuncs[0])
    assert elf.find_symbol(libc, ifuncs[0]).is_ifunc


def test_global_beats_local_and_twins_are_ambiguous() -> None:
    path = fixtures.dupsym()
    dups = elf.list_symbols(path, "bpfkit_dup")
    assert sorted(s.binding for s in dups) == ["global", "local"]
    [glob] = [s for s in dups if s.binding == "global"]
    assert elf.symbol_offset(path, "bpfkit_dup") == glob.offset
    with pytest.raises(BpfNotFoundError, match="ambiguous.*raw address"):
        elf.symbol_offset(path, "bpfkit_twin")
    for twin in elf.list_symbols(path, "bpfkit_twin"):
        assert elf.symbol_offset(path, hex(twin.address)) == twin.offset


# --------------------------------------------------------------------------- errors


def test_stripped_binary_says_what_to_do() -> None:
    path = fixtures.uprobe_target(stripped=True)
    with pytest.raises(BpfNotFoundError) as exc:
        elf.symbol_offset(path, "bpfkit_add")
    msg = str(exc.value)
    assert str(path) in msg and "stripped" in msg and "nm -D" in msg


def test_not_elf(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(ObjectFormatError, match="not an ELF"):
        elf.symbol_offset(text, "main")
    broken = tmp_path / "broken"
    broken.write_bytes(b"\x7fELF" + b"\x02\x01\x01" + b"\xff" * 20)
    with pytest.raises(ObjectFormatError):
        elf.list_symbols(broken)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BpfNotFoundError, match="no such file"):
        elf.symbol_offset(tmp_path / "nope", "main")


def test_cache_follows_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "target"
    shutil.copy(fixtures.uprobe_target(pie=True), path)
    first = elf.symbol_offset(path, "bpfkit_add")
    assert elf._elf_info(path) is elf._elf_info(path)
    replacement = tmp_path / "replacement"
    shutil.copy(fixtures.uprobe_target(pie=False), replacement)
    os.replace(replacement, path)
    assert elf.symbol_offset(path, "bpfkit_add") == elf.symbol_offset(fixtures.uprobe_target(pie=False), "bpfkit_add")
    assert elf.symbol_offset(path, "bpfkit_add") != first


# --------------------------------------------------------------------------- resolve_library


def _mapped_libc() -> str:
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1]
            if re.search(r"/libc(\.so\.6|-[\d.]+\.so)$", path):
                return os.path.realpath(path)
    pytest.skip("this Python is not linked against a glibc libc.so.6")


@pytest.mark.parametrize("name", ["c", "libc", "libc.so.6"])
def test_resolve_libc_is_the_libc_we_run_on(name: str) -> None:
    assert libraries.resolve_library(name) == _mapped_libc()


def test_resolve_executable_on_path() -> None:
    bash = shutil.which("bash")
    assert bash is not None
    assert libraries.resolve_library("bash") == os.path.realpath(bash)


def test_resolve_paths_pass_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tmp_path / "prog"
    shutil.copy(fixtures.uprobe_target(), exe)
    monkeypatch.chdir(tmp_path)
    assert libraries.resolve_library("./prog") == str(exe.resolve())
    assert libraries.resolve_library(str(exe)) == str(exe.resolve())
    # A bare name is a library/command name, like in a shell, not a cwd file.
    with pytest.raises(BpfNotFoundError):
        libraries.resolve_library("prog")
    with pytest.raises(BpfNotFoundError, match="no such file"):
        libraries.resolve_library("./missing")


def test_resolve_missing_names_what_was_searched() -> None:
    with pytest.raises(BpfNotFoundError, match=r"\$PATH.*ld\.so\.cache.*libbpfkit_nope\.so"):
        libraries.resolve_library("bpfkit_nope")
    with pytest.raises(BpfNotFoundError, match="ld.so.cache"):
        libraries.resolve_library("libbpfkit_nope.so.1")


def test_symbol_offset_accepts_library_names(libc: str) -> None:
    assert elf.symbol_offset("c", "malloc") == elf.symbol_offset(libc, "malloc")


@pytest.mark.skipif(not os.path.exists(libraries.LD_SO_CACHE), reason="no /etc/ld.so.cache")
def test_ld_cache_parser_agrees_with_ldconfig() -> None:
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    if not os.path.exists(ldconfig):
        pytest.skip("ldconfig not installed")
    with open(libraries.LD_SO_CACHE, "rb") as f:
        data = f.read()
    if not data.startswith(b"glibc-ld.so.cache1.1") and not data.startswith(b"ld.so-1.7.0"):
        pytest.skip("unknown ld.so.cache format")
    mine = set(libraries.parse_ld_cache(data, platform.machine()))
    theirs = set(libraries.parse_ldconfig_p(_run(ldconfig, "-p"), platform.machine()))
    assert mine == theirs
    assert len(mine) > 10
    # Only this machine's ABI: no /lib32 or /libx32 copies.
    assert not [p for _, p in mine if "/lib32/" in p or "/libx32/" in p]
