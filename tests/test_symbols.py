"""User-space symbolization (bpfkit.symbols) against live fixture processes.

Every fixture prints the runtime address of its functions (``&function`` inside the process),
and ``nm -S`` of the unstripped build gives their sizes, so each expectation (name, offset,
module) comes from outside bpfkit's own ELF reader.
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from bpfkit.errors import BpfNotFoundError
from bpfkit.symbols import (
    BPF_STACK_BUILD_ID_EMPTY,
    BPF_STACK_BUILD_ID_IP,
    BPF_STACK_BUILD_ID_VALID,
    BUILD_ID_FRAME,
    UNKNOWN,
    ElfCache,
    Frames,
    Symbolizer,
    frame_pointer_warning,
    load_elf_symbols,
    read_maps,
)
from bpfkit.testing.fixtures import symbols as fx

OWN = ("bpfkit_sym_inner", "bpfkit_sym_local", "bpfkit_sym_middle", "bpfkit_sym_outer", "bpfkit_sym_f6", "main")
LIB = ("bpfkit_lib_entry", "bpfkit_lib_hidden", "bpfkit_lib_static")


def fresh(debug_dirs: tuple[str, ...] = ()) -> Symbolizer:
    """A Symbolizer with its own ELF cache: fixture variants share a build-id, and the shared
    cache would hand a stripped variant the symbols of the unstripped one."""
    return Symbolizer(debug_dirs=debug_dirs, cache=ElfCache())


def probes(p: fx.SymbolsProcess, sizes: dict[str, tuple[int, int]], names: tuple[str, ...]) -> tuple[
        np.ndarray, list[tuple[str, int]]]:
    """Addresses at the start, start+1 and last byte of each function, with the expected
    (name, offset) for each."""
    addrs, want = [], []
    for name in names:
        base, size = p.addresses[name], sizes[name][1]
        assert size > 2, (name, size)
        for off in (0, 1, size - 1):
            addrs.append(base + off)
            want.append((name, off))
    return np.array(addrs, np.uint64), want


def got(frames: Frames) -> list[tuple[str, int]]:
    return list(zip(frames.names.tolist(), frames.offsets.tolist()))


def check_exact(sym: Symbolizer, p: fx.SymbolsProcess, sizes: dict[str, tuple[int, int]],
                names: tuple[str, ...] = OWN) -> Frames:
    addrs, want = probes(p, sizes, names)
    fr = sym.user(p.pid, addrs)
    assert got(fr) == want
    return fr


@pytest.fixture(scope="module")
def sizes() -> dict[str, tuple[int, int]]:
    return fx.nm_functions(fx.symbols_exe(pie=True))


@pytest.fixture
def tmpdir_unique(tmp_path: Path) -> Path:
    return tmp_path


# ----------------------------------------------------------------------------- executables


@pytest.mark.parametrize("pie", [True, False], ids=["pie", "nopie"])
def test_unstripped_executable(pie: bool) -> None:
    exe = fx.symbols_exe(pie=pie)
    sizes = fx.nm_functions(exe)
    with fx.SymbolsProcess([str(exe)]) as p:
        if not pie:  # non-PIE: runtime addresses are the link-time ones, nm agrees exactly
            assert all(p.addresses[n] == sizes[n][0] for n in OWN)
        sym = fresh()
        fr = check_exact(sym, p, sizes)
        assert set(fr.modules.tolist()) == {str(exe)}
        ps = sym.process(p.pid)
        assert ps.elf(str(exe)).sources == (".symtab",)  # type: ignore[union-attr]
        assert fr[0].label(offset=True, module=True) == f"bpfkit_sym_inner+0x0 [{exe.name}]"


@pytest.mark.parametrize("pie", [True, False], ids=["pie", "nopie"])
def test_minidebuginfo(pie: bool) -> None:
    exe = fx.minidebuginfo_exe(pie=pie)
    sizes = fx.nm_functions(fx.symbols_exe(pie=pie))
    assert fx.nm_functions(exe) == {}, "the stripped binary must have no .symtab of its own"
    with fx.SymbolsProcess([str(exe)]) as p:
        sym = fresh()
        check_exact(sym, p, sizes)
        assert sym.process(p.pid).elf(str(exe)).sources == (".gnu_debugdata",)  # type: ignore[union-attr]


def test_stripped_without_debug_info_is_unknown(sizes: dict[str, tuple[int, int]]) -> None:
    """The control for the next tests: with no debug file to find, the local names are unknown."""
    exe, _debug = fx.split_debug_exe(pie=True)
    with fx.SymbolsProcess([str(exe)]) as p:
        addrs, _want = probes(p, sizes, ("bpfkit_sym_inner", "bpfkit_sym_local"))
        fr = fresh().user(p.pid, addrs)
        assert fr.names.tolist() == [UNKNOWN] * len(addrs)
        # the offset of an unnamed address is its offset in the file, the module its path
        assert fr.modules.tolist() == [str(exe)] * len(addrs)
        assert fr.offsets[0] == sizes["bpfkit_sym_inner"][0]  # PIE: file offset == vaddr for .text


def test_debug_file_by_build_id(tmp_path: Path, sizes: dict[str, tuple[int, int]]) -> None:
    exe, debug = fx.split_debug_exe(pie=True)
    bid = fx.build_id(exe)
    where = tmp_path / "debug" / ".build-id" / bid[:2] / f"{bid[2:]}.debug"
    where.parent.mkdir(parents=True)
    shutil.copy(debug, where)
    with fx.SymbolsProcess([str(exe)]) as p:
        sym = fresh(debug_dirs=(str(tmp_path / "debug"),))
        check_exact(sym, p, sizes)
        assert sym.process(p.pid).elf(str(exe)).sources == (str(where),)  # type: ignore[union-attr]


@pytest.mark.parametrize("place", ["next-to-binary", "dot-debug", "debug-dir"])
def test_debuglink(tmp_path: Path, sizes: dict[str, tuple[int, int]], place: str) -> None:
    exe0, debug = fx.split_debug_exe(pie=True, debuglink=True)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    exe = bindir / "prog"
    shutil.copy(exe0, exe)
    debug_root = tmp_path / "dbg"
    target = {"next-to-binary": bindir / "symbols_target.debug",
              "dot-debug": bindir / ".debug" / "symbols_target.debug",
              "debug-dir": Path(str(debug_root) + str(bindir)) / "symbols_target.debug"}[place]
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(debug, target)
    with fx.SymbolsProcess([str(exe)]) as p:
        sym = fresh(debug_dirs=(str(debug_root),))
        check_exact(sym, p, sizes)
        assert sym.process(p.pid).elf(str(exe)).sources == (str(target),)  # type: ignore[union-attr]


def test_debuglink_crc_mismatch_is_rejected(tmp_path: Path, sizes: dict[str, tuple[int, int]]) -> None:
    exe0, debug = fx.split_debug_exe(pie=True, debuglink=True)
    exe = tmp_path / "prog"
    shutil.copy(exe0, exe)
    bad = tmp_path / "symbols_target.debug"
    bad.write_bytes(debug.read_bytes() + b"\0")  # same symbols, different CRC
    with fx.SymbolsProcess([str(exe)]) as p:
        sym = fresh()
        addrs, _want = probes(p, sizes, ("bpfkit_sym_local",))
        assert sym.user(p.pid, addrs).names.tolist() == [UNKNOWN] * 3
        problems = " ".join(sym.process(p.pid).problems)
        assert str(bad) in problems and "CRC" in problems and "does not match" in problems


def test_shared_library() -> None:
    exe = fx.symbols_exe(pie=True, lib=True)
    lib = fx.symbols_lib()
    lib_sizes = fx.nm_functions(lib)
    with fx.SymbolsProcess([str(exe)]) as p:
        sym = fresh()
        fr = check_exact(sym, p, lib_sizes, LIB)
        assert set(fr.modules.tolist()) == {str(lib)}
        # the hidden and static functions are not exported: they came from the library's .symtab
        dyn = subprocess.run(["nm", "-D", "--defined-only", str(lib)], capture_output=True, text=True).stdout
        assert "bpfkit_lib_hidden" not in dyn and "bpfkit_lib_static" not in dyn
        check_exact(sym, p, fx.nm_functions(exe), OWN)


def test_libc_functions_of_this_process() -> None:
    """Aliases are named as perf names them: a global symbol over a weak one (``__getpid`` is
    GLOBAL, ``getpid`` WEAK in glibc), then the fewest leading underscores (``malloc`` and
    ``__libc_malloc`` are both GLOBAL)."""
    libc = ctypes.CDLL("libc.so.6")
    addrs = [ctypes.cast(f, ctypes.c_void_p).value for f in (libc.getpid, libc.malloc)]
    assert None not in addrs
    a, b = (int(x) for x in addrs if x is not None)
    fr = Symbolizer().user(os.getpid(), [a, a + 1, b, b + 7])
    assert got(fr) == [("__getpid", 0), ("__getpid", 1), ("malloc", 0), ("malloc", 7)]
    assert all("libc.so" in m for m in fr.modules)


def test_cpp_names_are_demangled() -> None:
    if shutil.which("c++filt") is None or shutil.which("g++") is None:
        pytest.skip("c++filt/g++ (binutils, g++) not installed")
    exe = fx.symbols_cpp()
    mangled = {n for n in fx.nm_functions(exe) if n.startswith("_Z")}
    assert {"_ZN6bpfkit6Widget4spinEi", "_ZN6bpfkit5twiceIlEET_S1_"} <= mangled
    with fx.SymbolsProcess([str(exe)]) as p:
        fr = fresh().user(p.pid, [p.addresses["spin"] + 1, p.addresses["twice"]])
    assert got(fr) == [("bpfkit::Widget::spin(int)", 1), ("long bpfkit::twice<long>(long)", 0)]


# ----------------------------------------------------------------------------- file gone


def test_deleted_binary(tmp_path: Path, sizes: dict[str, tuple[int, int]]) -> None:
    exe = tmp_path / "deleted_prog"
    shutil.copy(fx.symbols_exe(pie=True), exe)
    with fx.SymbolsProcess([str(exe)]) as p:
        exe.unlink()
        maps = read_maps(p.pid)
        mine = [m for m in maps.mappings if m.path == str(exe)]
        assert mine and all(m.deleted for m in mine)
        fr = check_exact(fresh(), p, sizes)
        assert set(fr.modules.tolist()) == {str(exe)}


def test_replaced_binary(tmp_path: Path, sizes: dict[str, tuple[int, int]]) -> None:
    exe = tmp_path / "replaced_prog"
    shutil.copy(fx.symbols_exe(pie=True), exe)
    with fx.SymbolsProcess([str(exe)]) as p:
        other = tmp_path / "other"
        shutil.copy("/bin/true", other)
        os.replace(other, exe)  # the path now names a different file
        check_exact(fresh(), p, sizes)


def test_other_mount_namespace(tmp_path: Path, sizes: dict[str, tuple[int, int]]) -> None:
    if shutil.which("unshare") is None:
        pytest.skip("unshare(1) not installed (util-linux)")
    src = tmp_path / "src_prog"
    shutil.copy(fx.symbols_exe(pie=True), src)
    mnt = tmp_path / f"mnt-{uuid.uuid4().hex[:8]}"
    mnt.mkdir()
    inner = mnt / "prog_in_ns"
    script = f"mount -t tmpfs bpfkit-symtest {mnt} && cp {src} {inner} && exec {inner}"
    with fx.SymbolsProcess(["unshare", "-m", "--propagation", "private", "sh", "-c", script]) as p:
        assert not inner.exists(), "the binary must exist only inside the process's mount namespace"
        src.unlink()
        fr = check_exact(fresh(), p, sizes)
        assert set(fr.modules.tolist()) == {str(inner)}


def test_remember_before_exit(sizes: dict[str, tuple[int, int]]) -> None:
    exe = fx.symbols_exe(pie=True)
    sym = fresh()
    with fx.SymbolsProcess([str(exe)]) as p:
        addrs, want = probes(p, sizes, OWN)
        assert sym.remember(p.pid) is not None
        p.finish()
        pid = p.pid
    assert not os.path.exists(f"/proc/{pid}")
    assert got(sym.user(pid, addrs)) == want
    other = fresh()
    with pytest.raises(BpfNotFoundError, match="remember"):
        other.user(pid, addrs)


# ----------------------------------------------------------------------------- vdso, heap, JIT


def test_vdso_heap_stack_and_unmapped() -> None:
    from elftools.elf.elffile import ELFFile
    import io

    maps = read_maps(os.getpid())
    vdso = next(m for m in maps.mappings if m.kind == "vdso")
    heap = next(m for m in maps.mappings if m.kind == "heap")
    stack = next(m for m in maps.mappings if m.kind == "stack")
    with open("/proc/self/mem", "rb") as mem:
        mem.seek(vdso.start)
        image = mem.read(vdso.end - vdso.start)
    elf = ELFFile(io.BytesIO(image))  # pyelftools, not bpfkit's reader, says where the function is
    sym = elf.get_section_by_name(".dynsym").get_symbol_by_name("__vdso_clock_gettime")[0]
    load = next(s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD")
    addr = vdso.start + sym["st_value"] - load["p_vaddr"] + load["p_offset"]
    lowest = int(maps.starts[0])
    fr = Symbolizer().user(os.getpid(), [addr, addr + 3, heap.start + 8, stack.start + 16, lowest - 4096])
    assert fr.names.tolist() == ["__vdso_clock_gettime"] * 2 + [UNKNOWN] * 3
    assert fr.offsets.tolist() == [0, 3, 8, 16, lowest - 4096]
    assert fr.modules.tolist() == ["[vdso]", "[vdso]", "[heap]", "[stack]", ""]


JIT_FIXTURE = r"""
import ctypes, mmap, os, sys
region = mmap.mmap(-1, 1 << 16, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
base = ctypes.addressof(ctypes.c_char.from_buffer(region))
path = f"/tmp/perf-{os.getpid()}.map"
with open(path, "w") as f:
    f.write(f"{base:x} 100 py::jit_first:/app/a.py\n")
    f.write("this line is garbage\n")
    f.write(f"{base + 0x100:x} zz not-hex-size\n")
    f.write(f"0x{base + 0x200:x} 0x80 [jit] second function with spaces\n")
    f.write(f"{base + 0x400:x} 40 py::reused_old:/app/a.py\n")
    f.write(f"{base + 0x400:x} 40 py::reused_new:/app/a.py\n")
print(f"sym jit {base:#x}", flush=True)
print(f"ready {os.getpid()}", flush=True)
sys.stdin.readline()
os.unlink(path)
"""


def test_perf_map_jit_frames() -> None:
    with fx.SymbolsProcess([sys.executable, "-c", JIT_FIXTURE]) as p:
        try:
            base = p.addresses["jit"]
            sym = fresh()
            fr = sym.user(p.pid, [base, base + 0xFF, base + 0x100, base + 0x27F, base + 0x410, base + 0x300])
            assert fr.names.tolist() == ["py::jit_first:/app/a.py", "py::jit_first:/app/a.py", UNKNOWN,
                                         "[jit] second function with spaces", "py::reused_new:/app/a.py", UNKNOWN]
            assert fr.offsets[:5].tolist() == [0, 0xFF, 0x100, 0x7F, 0x10]
            assert fr.modules[0] == f"/tmp/perf-{p.pid}.map"
            problems = sym.process(p.pid).problems
            assert sum("perf-" in s for s in problems) == 2, problems
        finally:
            p.finish()


# ----------------------------------------------------------------------------- build-id stacks


def _build_id_frames(p: fx.SymbolsProcess, exe: Path, names: tuple[str, ...]) -> np.ndarray:
    """What the kernel's BPF_F_STACK_BUILD_ID gives: (build-id, offset in the mapped file)."""
    bid = bytes.fromhex(fx.build_id(exe))
    lines = Path(f"/proc/{p.pid}/maps").read_text().splitlines()
    out = np.zeros(len(names) + 1, BUILD_ID_FRAME)
    for i, name in enumerate(names):
        a = p.addresses[name] + 2
        for ln in lines:
            rng, _perms, off = ln.split()[:3]
            lo, hi = (int(x, 16) for x in rng.split("-"))
            if lo <= a < hi:
                out[i] = (BPF_STACK_BUILD_ID_VALID, np.frombuffer(bid, np.uint8), a - lo + int(off, 16))
    out[-1]["status"] = BPF_STACK_BUILD_ID_EMPTY
    return out


def test_build_id_frames_after_exit(tmp_path: Path) -> None:
    exe = fx.symbols_exe(pie=True)
    sym = fresh()
    with fx.SymbolsProcess([str(exe)]) as p:
        frames = _build_id_frames(p, exe, OWN)
        sym.remember(p.pid)
        p.finish()
    fr = sym.build_id_frames(frames)
    assert fr.names.tolist() == list(OWN) + [UNKNOWN]
    assert fr.offsets[:-1].tolist() == [2] * len(OWN)
    assert fr.modules[0] == str(exe)
    # raw bytes as read from a map work too
    assert sym.build_id_frames(frames.view(np.uint8)).names.tolist() == list(OWN) + [UNKNOWN]


def test_build_id_frames_from_debug_dir_only(tmp_path: Path) -> None:
    """A binary never seen: only its separate debug file exists, under .build-id/."""
    exe, debug = fx.split_debug_exe(pie=False)
    bid = fx.build_id(exe)
    where = tmp_path / ".build-id" / bid[:2] / f"{bid[2:]}.debug"
    where.parent.mkdir(parents=True)
    shutil.copy(debug, where)
    with fx.SymbolsProcess([str(exe)]) as p:
        frames = _build_id_frames(p, exe, OWN)
    sym = Symbolizer(debug_dirs=(str(tmp_path),), cache=ElfCache())
    fr = sym.build_id_frames(frames)
    assert fr.names.tolist() == list(OWN) + [UNKNOWN]
    assert fr.offsets[:-1].tolist() == [2] * len(OWN)
    unknown = frames.copy()
    unknown["build_id"][0] = 0xAB
    assert Symbolizer(debug_dirs=(), cache=ElfCache()).build_id_frames(unknown[:1]).modules[0] == \
        "[build-id " + "ab" * 20 + "]"


def test_build_id_ip_frames_use_the_pid(sizes: dict[str, tuple[int, int]]) -> None:
    with fx.SymbolsProcess([str(fx.symbols_exe(pie=True))]) as p:
        frames = np.zeros(2, BUILD_ID_FRAME)
        frames["status"] = BPF_STACK_BUILD_ID_IP
        frames["offset"] = [p.addresses["bpfkit_sym_outer"] + 4, p.addresses["main"]]
        fr = fresh().build_id_frames(frames, pid=p.pid)
        assert got(fr) == [("bpfkit_sym_outer", 4), ("main", 0)]


# ----------------------------------------------------------------------------- frame pointers


def test_frame_pointer_detection() -> None:
    with_fp = load_elf_symbols(str(fx.symbols_exe(pie=True, frame_pointers=True)), cache=ElfCache())
    without = load_elf_symbols(str(fx.symbols_exe(pie=True, frame_pointers=False)), cache=ElfCache())
    assert with_fp.frame_pointers is True
    assert without.frame_pointers is False
    exe = fx.symbols_exe(pie=True, frame_pointers=False)
    with fx.SymbolsProcess([str(exe)]) as p:
        warnings = fresh().frame_pointer_warnings(p.pid, {str(exe)})
    assert warnings == [f"stacks through {exe} are likely truncated: no frame pointers"]
    exe = fx.symbols_exe(pie=True, frame_pointers=True)
    with fx.SymbolsProcess([str(exe)]) as p:
        assert fresh().frame_pointer_warnings(p.pid, {str(exe)}) == []


def test_debian_python_has_no_frame_pointers() -> None:
    if not os.path.exists("/usr/bin/python3.11"):
        pytest.skip("/usr/bin/python3.11 (Debian's python3.11) not installed")
    assert frame_pointer_warning("/usr/bin/python3.11") == \
        "stacks through /usr/bin/python3.11 are likely truncated: no frame pointers"


# ----------------------------------------------------------------------------- at scale


def test_many_addresses_match_nm(sizes: dict[str, tuple[int, int]]) -> None:
    """200k random addresses over the fixture's own functions: every one is named exactly as a
    bisect over ``nm -S`` says (in a function, or unknown in the padding between them)."""
    exe = fx.symbols_exe(pie=False)
    funcs = fx.nm_functions(exe)
    nm = sorted((a, s, n) for n, (a, s) in funcs.items() if s)
    lo = funcs["bpfkit_sym_inner"][0]
    hi = funcs["bpfkit_sym_f6"][0] + funcs["bpfkit_sym_f6"][1]
    rng = np.random.default_rng(7)
    addrs = rng.integers(lo, hi, 200_000).astype(np.uint64)
    with fx.SymbolsProcess([str(exe)]) as p:
        fr = fresh().user(p.pid, addrs)
    starts = np.array([a for a, _s, _n in nm], np.uint64)
    ends = starts + np.array([s for _a, s, _n in nm], np.uint64)
    i = np.searchsorted(starts, addrs, side="right") - 1
    inside = (i >= 0) & (addrs < ends[np.maximum(i, 0)])
    want = np.where(inside, np.array([n for _a, _s, n in nm], object)[np.maximum(i, 0)], UNKNOWN)
    assert (fr.names == want).all()
    assert (fr.offsets[inside] == addrs[inside] - starts[i[inside]]).all()


@pytest.fixture(autouse=True)
def _no_leftover_children() -> Iterator[None]:
    yield
    # SymbolsProcess reaps its child; a leftover here would be a leak in the fixture
    assert not [c for c in os.listdir("/proc") if c.isdigit() and _is_child(int(c))]


def _is_child(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1]) == os.getpid()
    except (OSError, ValueError, IndexError):
        return False


# ----------------------------------------------------------------------------- source lines


def _addr2line(path: Path, vaddrs: list[int]) -> list[str]:
    out = subprocess.run(["addr2line", "-e", str(path), *[hex(v) for v in vaddrs]], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    return [re.sub(r" \(discriminator \d+\)$", "", ln) for ln in out]


@pytest.mark.parametrize("where", ["in-binary", "debug-file"])
def test_source_lines_match_addr2line(tmp_path: Path, sizes: dict[str, tuple[int, int]], where: str) -> None:
    if shutil.which("addr2line") is None:
        pytest.skip("addr2line (binutils) not installed")
    full = fx.symbols_exe(pie=False)
    nm = fx.nm_functions(full)
    exe, debug_dirs = full, ()
    if where == "debug-file":
        exe, debug = fx.split_debug_exe(pie=False)
        bid = fx.build_id(exe)
        target = tmp_path / ".build-id" / bid[:2] / f"{bid[2:]}.debug"
        target.parent.mkdir(parents=True)
        shutil.copy(debug, target)
        debug_dirs = (str(tmp_path),)
    vaddrs = [nm[n][0] + k for n in OWN for k in (0, 4, nm[n][1] // 2)]
    want = _addr2line(full, vaddrs)
    assert all(":" in w and not w.startswith("??") for w in want), want
    with fx.SymbolsProcess([str(exe)]) as p:
        fr = Symbolizer(debug_dirs=debug_dirs, cache=ElfCache()).user(p.pid, vaddrs, lines=True)  # non-PIE
    assert fr.sources is not None and fr.sources.tolist() == want
    assert fr[0].source == want[0]
