"""bpfkit.compile(), the BPF build helpers, and the objects built for the package."""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

import bpfkit
from bpfkit import _build
from bpfkit.compiler import compile as bpf_compile, compile_main
from bpfkit.errors import BpfNotFoundError, CompileError

REPO = Path(__file__).resolve().parent.parent
EM_BPF = 247
SECTION = "tracepoint/syscalls/sys_enter_getpid"

PROG = textwrap.dedent(
    """\
    #include "vmlinux.h"
    #include <bpf/bpf_helpers.h>
    #include <bpf/bpf_tracing.h>
    #include <bpf/bpf_core_read.h>

    __u64 calls = 0;

    SEC("tracepoint/syscalls/sys_enter_getpid")
    int PROG_NAME(void *ctx)
    {
        __sync_fetch_and_add(&calls, 1);
        return 0;
    }

    char LICENSE[] SEC("license") = "GPL";
    """
)


def _toolchain_or_skip() -> str:
    try:
        return _build.find_clang()
    except _build.BuildError as e:
        pytest.skip(f"BPF toolchain (clang) missing: {e}")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache root per module, so vmlinux.h is generated once."""
    _toolchain_or_skip()
    return tmp_path_factory.mktemp("bpfkit-cache")


@pytest.fixture
def clang_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Route compiles through a wrapper that logs every real compile (-c) invocation."""
    real = _toolchain_or_skip()
    log = tmp_path / "clang-calls.log"
    wrapper = tmp_path / "clang-wrapper"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'case " $* " in *" -c "*) echo call >> "{log}";; esac\n'
        f'exec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("BPFKIT_CLANG", str(wrapper))
    log.touch()
    return log


def _calls(log: Path) -> int:
    return len(log.read_text().splitlines())


def _unique_prog() -> tuple[str, str]:
    # A fresh function name makes a fresh cache key, so earlier runs can't satisfy it.
    name = "prog_" + uuid.uuid4().hex[:12]
    return name, PROG.replace("PROG_NAME", name)


def _check_object(path: Path, func: str) -> None:
    data = path.read_bytes()
    assert data[:4] == b"\x7fELF"
    (e_machine,) = struct.unpack_from("<H", data, 18)
    assert e_machine == EM_BPF
    elf = ELFFile(io.BytesIO(data))
    sections = {s.name for s in elf.iter_sections()}
    assert ".BTF" in sections
    assert SECTION in sections
    symtab = elf.get_section_by_name(".symtab")
    assert isinstance(symtab, SymbolTableSection) and symtab.get_symbol_by_name(func)


def _kernel_accepts(obj: Path) -> None:
    """Load the object with bpftool: the verifier of the running kernel must accept it."""
    if not os.path.ismount("/sys/fs/bpf"):
        pytest.skip("bpffs not mounted on /sys/fs/bpf (needed to pin the test program)")
    bpftool = _build.find_bpftool()
    pin = Path("/sys/fs/bpf") / f"bpfkit_test_compiler_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    proc = subprocess.run([bpftool, "prog", "load", str(obj), str(pin)], capture_output=True, text=True)
    try:
        assert proc.returncode == 0, proc.stderr
        assert pin.exists()
    finally:
        pin.unlink(missing_ok=True)


def test_compile_source_text(cache: Path) -> None:
    name, text = _unique_prog()
    obj = bpf_compile(text, cache_dir=cache)
    assert obj.is_file() and obj.name == "prog.bpf.o"
    assert obj.is_relative_to(cache / "obj")
    _check_object(obj, name)
    _kernel_accepts(obj)


def test_compile_file_uses_local_header(cache: Path, tmp_path: Path) -> None:
    (tmp_path / "names.h").write_text("#define FUNC_NAME from_header\n")
    src = tmp_path / "getpid.bpf.c"
    src.write_text('#include "names.h"\n' + PROG.replace("PROG_NAME", "FUNC_NAME"))
    obj = bpf_compile(str(src), cache_dir=cache)
    assert obj.name == "getpid.bpf.o"
    _check_object(obj, "from_header")
    assert bpf_compile(src, cache_dir=cache) == obj  # PathLike and str paths agree


def test_second_compile_is_cached(cache: Path, clang_log: Path, tmp_path: Path) -> None:
    src = tmp_path / "cached.bpf.c"
    (tmp_path / "names.h").write_text("#define FUNC_NAME first_" + uuid.uuid4().hex[:8] + "\n")
    src.write_text('#include "names.h"\n' + PROG.replace("PROG_NAME", "FUNC_NAME"))

    first = bpf_compile(src, cache_dir=cache)
    assert _calls(clang_log) == 1
    mtime = first.stat().st_mtime_ns
    assert bpf_compile(src, cache_dir=cache) == first
    assert _calls(clang_log) == 1
    assert first.stat().st_mtime_ns == mtime

    # A changed header next to the source must not be served from the cache.
    (tmp_path / "names.h").write_text("#define FUNC_NAME second_" + uuid.uuid4().hex[:8] + "\n")
    second = bpf_compile(src, cache_dir=cache)
    assert _calls(clang_log) == 2
    assert second != first
    # Different cflags are a different object too.
    third = bpf_compile(src, cache_dir=cache, cflags=["-DUNUSED_FLAG=1"])
    assert _calls(clang_log) == 3
    assert third not in (first, second)


def test_syntax_error_reports_clang_output(cache: Path) -> None:
    bad = "int broken(void) { return 0 }\n"
    with pytest.raises(CompileError) as info:
        bpf_compile(bad, cache_dir=cache)
    msg = str(info.value)
    assert "expected ';'" in msg
    assert "error:" in msg


def test_missing_clang_names_package(cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("BPFKIT_CLANG", str(tmp_path / "no-such-clang"))
    with pytest.raises(CompileError) as info:
        bpf_compile(PROG, cache_dir=cache)
    assert "apt-get install clang" in str(info.value)
    assert "clang-14" in str(info.value)


def test_missing_clang_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in _build.CLANG_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(_build.BuildError, match="apt-get install clang"):
        _build.find_clang()


def test_missing_libbpf_headers_names_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(_build, "LIBBPF_INCLUDE_CANDIDATES", (tmp_path,))
    with pytest.raises(_build.BuildError, match="libbpf-dev"):
        _build.bpf_cflags()


def test_missing_bpftool_names_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not _build.VMLINUX_BTF.exists():
        pytest.skip("kernel BTF (CONFIG_DEBUG_INFO_BTF) missing")
    monkeypatch.setenv("BPFKIT_BPFTOOL", str(tmp_path / "no-such-bpftool"))
    with pytest.raises(_build.BuildError, match="apt-get install bpftool"):
        _build.generate_vmlinux_h(tmp_path / "vmlinux.h")


def test_missing_btf_names_kconfig(tmp_path: Path) -> None:
    with pytest.raises(_build.BuildError, match="CONFIG_DEBUG_INFO_BTF"):
        _build.generate_vmlinux_h(tmp_path / "vmlinux.h", btf=tmp_path / "no-btf")


def test_vmlinux_h_regenerated_only_when_btf_changes(tmp_path: Path) -> None:
    if not _build.VMLINUX_BTF.exists():
        pytest.skip("kernel BTF (CONFIG_DEBUG_INFO_BTF) missing")
    out = _build.generate_vmlinux_h(tmp_path / "vmlinux.h")
    text = out.read_text()
    assert "struct task_struct {" in text
    assert _build.btf_hash() in text.splitlines()[0]
    mtime = out.stat().st_mtime_ns
    _build.generate_vmlinux_h(out)
    assert out.stat().st_mtime_ns == mtime
    # A stale stamp (as after a kernel upgrade) forces regeneration.
    out.write_text(text.replace(_build.btf_hash(), "0" * 64, 1))
    _build.generate_vmlinux_h(out)
    assert out.read_text() == text


def test_build_all_is_incremental(tmp_path: Path) -> None:
    _toolchain_or_skip()
    src = tmp_path / "c"
    (src / "include").mkdir(parents=True)
    (src / "sub").mkdir()
    header = src / "include" / "names.h"
    header.write_text("#define FUNC_NAME built_prog\n")
    (src / "sub" / "one.bpf.c").write_text('#include "names.h"\n' + PROG.replace("PROG_NAME", "FUNC_NAME"))
    out = tmp_path / "out"
    inc = tmp_path / "inc"

    first = _build.build_all(src, out, vmlinux_dir=inc)
    assert [(r.out, r.rebuilt) for r in first] == [(out / "sub" / "one.bpf.o", True)]
    _check_object(out / "sub" / "one.bpf.o", "built_prog")
    assert [r.rebuilt for r in _build.build_all(src, out, vmlinux_dir=inc)] == [False]

    header.write_text("#define FUNC_NAME rebuilt_prog\n")
    future = (out / "sub" / "one.bpf.o").stat().st_mtime_ns + 10**9
    os.utime(header, ns=(future, future))
    assert [r.rebuilt for r in _build.build_all(src, out, vmlinux_dir=inc)] == [True]
    _check_object(out / "sub" / "one.bpf.o", "rebuilt_prog")

    (src / "sub" / "one.bpf.c").unlink()
    assert _build.build_all(src, out, vmlinux_dir=inc) == []
    assert not (out / "sub" / "one.bpf.o").exists()


def test_package_has_object_for_every_source() -> None:
    sources = sorted((REPO / "c").rglob("*.bpf.c"))
    assert sources, "c/tests/minimal.bpf.c at least should exist"
    bpf_dir = Path(bpfkit.__file__).resolve().parent / "bpf"
    missing = []
    for s in sources:
        obj = bpf_dir / s.relative_to(REPO / "c").with_suffix(".o")
        if not obj.is_file():
            missing.append(str(obj))
        else:
            assert struct.unpack_from("<H", obj.read_bytes(), 18)[0] == EM_BPF
    assert not missing, f"not built (run `make setup` or `python bpfkit/_build.py`): {missing}"


def test_packaged_minimal_object_loads() -> None:
    obj = Path(bpfkit.__file__).resolve().parent / "bpf" / "tests" / "minimal.bpf.o"
    _check_object(obj, "count_getpid")
    _kernel_accepts(obj)


def test_compile_main(cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "cli.bpf.c"
    src.write_text(PROG.replace("PROG_NAME", "FUNC_NAME"))
    dest = tmp_path / "out" / "cli.bpf.o"
    rc = compile_main([str(src), "-o", str(dest), "--cache-dir", str(cache), "--", "-DFUNC_NAME=from_cli"])
    assert rc == 0
    assert capsys.readouterr().out.strip() == str(dest)
    _check_object(dest, "from_cli")

    rc = compile_main([str(tmp_path / "missing.bpf.c"), "--cache-dir", str(cache)])
    assert rc == 1
    assert "not found" in capsys.readouterr().err


def test_compile_main_stdin(cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(PROG.replace("PROG_NAME", "from_stdin")))
    assert compile_main(["-", "--cache-dir", str(cache)]) == 0
    printed = Path(capsys.readouterr().out.strip())
    _check_object(printed, "from_stdin")


def test_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bpfkit.compiler import cache_root

    monkeypatch.setenv("BPFKIT_CACHE_DIR", str(tmp_path / "a"))
    assert cache_root() == tmp_path / "a"
    monkeypatch.delenv("BPFKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "bpfkit"
    assert cache_root(tmp_path / "b") == tmp_path / "b"


def test_missing_source_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(BpfNotFoundError, match="nope.bpf.c not found") as info:
        bpfkit.compile(tmp_path / "nope.bpf.c")
    assert info.value.errno == 2
