"""Toolchain plumbing shared by the package build (setup.py) and bpfkit.compile().

This module imports nothing but the standard library: setup.py loads it by
file path before bpfkit (and numpy, cffi...) can be imported. It raises
:class:`BuildError`; :mod:`bpfkit.compiler` turns that into
:class:`bpfkit.errors.CompileError`.

Build every ``c/**/*.bpf.c`` of a source checkout into ``bpfkit/bpf/``::

    python bpfkit/_build.py            # incremental
    python bpfkit/_build.py --force    # rebuild everything
"""
from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import importlib.util
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

__all__ = [
    "VMLINUX_BTF", "CLANG_ENV_VARS", "CLANG_NAMES", "LIBBPF_INCLUDE_CANDIDATES", "SBIN_DIRS", "BuildError",
    "find_clang", "clang_version", "find_bpftool", "missing_btf_error", "btf_hash", "atomic_write",
    "generate_vmlinux_h", "find_libbpf_include", "target_arch", "bpf_cflags", "compile_file", "parse_depfile",
    "BuildResult", "build_all", "FFI_MODULE", "generate_libbpf_ffi", "generate_syscall_table", "main",
]

VMLINUX_BTF = Path("/sys/kernel/btf/vmlinux")
CLANG_ENV_VARS = ("BPFKIT_CLANG", "CLANG")
# Newest first: a newer clang knows more BPF features and BTF kinds.
CLANG_NAMES = ("clang",) + tuple(f"clang-{v}" for v in range(19, 13, -1))
LIBBPF_INCLUDE_CANDIDATES = (Path("/usr/include"), Path("/usr/local/include"))
# Some distros keep bpftool in sbin, which is not on a normal user's PATH.
SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
_VMLINUX_STAMP = "/* bpfkit: generated from vmlinux BTF sha256 "

_ARCH_DEFINES = {
    "x86_64": "x86",
    "i686": "x86",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "powerpc",
    "s390x": "s390",
    "riscv64": "riscv",
    "loongarch64": "loongarch",
    "mips64": "mips",
}


class BuildError(RuntimeError):
    """The BPF toolchain is missing or clang failed; the message says what to do."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr


def _which(name: str) -> str | None:
    found = shutil.which(name)
    if found is None and os.sep not in name:
        found = shutil.which(name, path=os.pathsep.join(SBIN_DIRS))
    return found


def find_clang() -> str:
    """Path of the clang to use: $BPFKIT_CLANG, $CLANG, then clang / clang-19..clang-14 on PATH.

    Example::

        >>> find_clang()
        '/usr/bin/clang-14'
    """
    for var in CLANG_ENV_VARS:
        wanted = os.environ.get(var)
        if wanted:
            found = shutil.which(wanted)
            if found is None:
                raise BuildError(
                    f"${var}={wanted!r} is not an executable clang; point it at clang or unset it "
                    "(Debian/Ubuntu: apt-get install clang, or clang-14)"
                )
            return found
    for name in CLANG_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise BuildError(
        "clang not found (looked for $BPFKIT_CLANG, $CLANG, " + ", ".join(CLANG_NAMES) + " on PATH); "
        "install it (Debian/Ubuntu: apt-get install clang, or clang-14) "
        "or set BPFKIT_CLANG=/path/to/clang"
    )


_clang_versions: dict[tuple[str, int, int], str] = {}


def clang_version(clang: str) -> str:
    """First line of ``clang --version``; memoised per binary so cache hits stay cheap."""
    st = os.stat(clang)
    memo_key = (os.path.realpath(clang), st.st_mtime_ns, st.st_size)
    if memo_key not in _clang_versions:
        proc = subprocess.run([clang, "--version"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"{clang} --version failed: {proc.stderr.strip()}", proc.stderr)
        _clang_versions[memo_key] = proc.stdout.strip().splitlines()[0] if proc.stdout.strip() else clang
    return _clang_versions[memo_key]


def find_bpftool() -> str:
    """Path of bpftool (PATH, then the sbin directories)."""
    found = os.environ.get("BPFKIT_BPFTOOL") or _which("bpftool")
    if not found or not shutil.which(found):
        raise BuildError(
            "bpftool not found (needed to generate vmlinux.h from the kernel's BTF); "
            "install it (Debian: apt-get install bpftool; Ubuntu: linux-tools-common) "
            "or set BPFKIT_BPFTOOL=/path/to/bpftool"
        )
    return found


def missing_btf_error(btf: Path) -> BuildError:
    return BuildError(
        f"{btf} does not exist, so vmlinux.h cannot be generated: the running kernel must be built "
        "with CONFIG_DEBUG_INFO_BTF=y (most distro kernels since 5.4 are)"
    )


_btf_hashes: dict[tuple[str, int, int, int], str] = {}


def btf_hash(btf: str | os.PathLike[str] = VMLINUX_BTF) -> str:
    """sha256 of the kernel's BTF blob, memoised while the file's stat is unchanged."""
    path = Path(btf)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise missing_btf_error(path) from None
    memo_key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    if memo_key not in _btf_hashes:
        _btf_hashes[memo_key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return _btf_hashes[memo_key]


def atomic_write(path: Path, data: bytes) -> None:
    # Readers (and concurrent builders) must only ever see a complete file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            # mkstemp's 0600 would make shared caches unreadable to other users.
            os.fchmod(f.fileno(), 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stamped_hash(path: Path) -> str | None:
    try:
        with path.open("r", errors="replace") as f:
            first = f.readline()
    except OSError:
        return None
    if first.startswith(_VMLINUX_STAMP):
        return first[len(_VMLINUX_STAMP):].split()[0]
    return None


def generate_vmlinux_h(
    out_path: str | os.PathLike[str], btf: str | os.PathLike[str] = VMLINUX_BTF
) -> Path:
    """Write vmlinux.h for the running kernel; a no-op while the BTF is unchanged.

    The first line records the BTF hash, so a kernel upgrade regenerates it
    and an unchanged kernel keeps the file's mtime (incremental builds stay
    incremental).

    Example::

        >>> generate_vmlinux_h("build/include/vmlinux.h")
        PosixPath('build/include/vmlinux.h')
    """
    out = Path(out_path)
    btf_path = Path(btf)
    digest = btf_hash(btf_path)
    if out.exists() and _stamped_hash(out) == digest:
        return out
    bpftool = find_bpftool()
    proc = subprocess.run(
        [bpftool, "btf", "dump", "file", str(btf_path), "format", "c"], capture_output=True
    )
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode(errors="replace").strip()
        raise BuildError(f"bpftool btf dump file {btf_path} format c failed: {err}", err)
    atomic_write(out, f"{_VMLINUX_STAMP}{digest} */\n".encode() + proc.stdout)
    return out


def find_libbpf_include() -> Path:
    """The include dir holding <bpf/bpf_helpers.h> (from libbpf-dev)."""
    for cand in LIBBPF_INCLUDE_CANDIDATES:
        if (cand / "bpf" / "bpf_helpers.h").is_file():
            return cand
    raise BuildError(
        "libbpf headers not found (no bpf/bpf_helpers.h in "
        + " or ".join(str(c) for c in LIBBPF_INCLUDE_CANDIDATES)
        + "); install them: apt-get install libbpf-dev"
    )


def target_arch() -> str:
    """Value for -D__TARGET_ARCH_<arch>, which bpf_tracing.h needs for PT_REGS_* macros."""
    machine = platform.machine()
    return _ARCH_DEFINES.get(machine, machine)


def bpf_cflags(include_dirs: Iterable[str | os.PathLike[str]] = ()) -> list[str]:
    """clang flags for a BPF CO-RE object; ``include_dirs`` are searched before libbpf's headers.

    Example::

        >>> bpf_cflags(["build/include", "c/include"])[:4]
        ['-O2', '-g', '-target', 'bpf']
    """
    flags = ["-O2", "-g", "-target", "bpf", f"-D__TARGET_ARCH_{target_arch()}"]
    for d in include_dirs:
        flags.append(f"-I{d}")
    flags.append(f"-I{find_libbpf_include()}")
    # libbpf's usdt.bpf.h includes <linux/errno.h>, whose <asm/errno.h> lives in the multiarch dir
    multiarch = Path(f"/usr/include/{platform.machine()}-linux-gnu")
    if (multiarch / "asm").is_dir():
        flags += ["-idirafter", str(multiarch)]
    return flags


def compile_file(
    src: str | os.PathLike[str],
    out: str | os.PathLike[str],
    cflags: Sequence[str] = (),
    *,
    clang: str | None = None,
    depfile: str | os.PathLike[str] | None = None,
) -> Path:
    """Compile one BPF C file with clang; ``out`` appears atomically and only on success.

    ``cflags`` should normally come from :func:`bpf_cflags`. ``depfile``, if
    given, receives clang's make-style header dependency list.

    Example::

        >>> compile_file("c/tests/minimal.bpf.c", "/tmp/minimal.bpf.o",
        ...              bpf_cflags(["build/include", "c/include"]))
        PosixPath('/tmp/minimal.bpf.o')
    """
    clang = clang or find_clang()
    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    cmd = [clang, *cflags, "-c", str(src), "-o", tmp]
    if depfile is not None:
        cmd += ["-MD", "-MF", str(depfile)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(
                f"clang failed to compile {src} (exit {proc.returncode}):\n{proc.stderr.strip()}",
                proc.stderr,
            )
        os.replace(tmp, out_path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out_path


def parse_depfile(text: str) -> list[str]:
    """Prerequisites listed in a make-style depfile written by ``clang -MD``."""
    joined = text.replace("\\\n", " ")
    _, _, prereqs = joined.partition(": ")
    # Escaped spaces are the only escaping clang emits for plain paths.
    return [p.replace("\0", " ") for p in prereqs.replace("\\ ", "\0").split()]


@dataclasses.dataclass(frozen=True)
class BuildResult:
    """One object of :func:`build_all`: ``rebuilt`` is False when it was up to date."""

    src: Path
    out: Path
    rebuilt: bool


def _up_to_date(out: Path, state: Path, cmd_key: list[str]) -> bool:
    try:
        out_mtime = out.stat().st_mtime_ns
        recorded = json.loads(state.read_text())
        if recorded.get("cmd") != cmd_key:
            return False
        return all(Path(dep).stat().st_mtime_ns <= out_mtime for dep in recorded["deps"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _build_one(src: Path, out: Path, state: Path, cflags: list[str], clang: str, force: bool) -> BuildResult:
    cmd_key = [clang_version(clang), *cflags]
    if not force and _up_to_date(out, state, cmd_key):
        return BuildResult(src, out, False)
    state.parent.mkdir(parents=True, exist_ok=True)
    depfile = state.with_name(state.name + ".d")
    try:
        compile_file(src, out, cflags, clang=clang, depfile=depfile)
        deps = [str(Path(d).resolve()) for d in parse_depfile(depfile.read_text())]
    finally:
        depfile.unlink(missing_ok=True)
    atomic_write(state, json.dumps({"cmd": cmd_key, "deps": deps}, indent=1).encode())
    return BuildResult(src, out, True)


def build_all(
    src_root: str | os.PathLike[str] = "c",
    out_root: str | os.PathLike[str] = "bpfkit/bpf",
    *,
    include_dir: str | os.PathLike[str] | None = None,
    vmlinux_dir: str | os.PathLike[str] = "build/include",
    state_dir: str | os.PathLike[str] | None = None,
    extra_cflags: Sequence[str] = (),
    force: bool = False,
    jobs: int | None = None,
) -> list[BuildResult]:
    """Compile every ``src_root/**/*.bpf.c`` to ``out_root/<same path>.bpf.o``.

    Incremental: an object is rebuilt when its source, any header clang read
    for it (recorded from ``-MD``), its flags or the clang version changed.
    Objects whose source is gone are deleted. ``include_dir`` defaults to
    ``src_root/include``; ``state_dir`` (dependency records) to
    ``out_root/.deps``.

    Example::

        >>> [r.out.name for r in build_all("c", "bpfkit/bpf")]
        ['minimal.bpf.o']
    """
    src_root_p = Path(src_root)
    out_root_p = Path(out_root)
    state_root = Path(state_dir) if state_dir is not None else out_root_p / ".deps"
    sources = sorted(src_root_p.rglob("*.bpf.c"))
    wanted = {out_root_p / s.relative_to(src_root_p).with_suffix(".o") for s in sources}
    _prune(out_root_p, state_root, wanted)
    if not sources:
        return []
    clang = find_clang()
    vmlinux_h = generate_vmlinux_h(Path(vmlinux_dir) / "vmlinux.h")
    inc = Path(include_dir) if include_dir is not None else src_root_p / "include"
    cflags = bpf_cflags([vmlinux_h.parent.resolve(), inc.resolve()]) + list(extra_cflags)
    work = []
    for s in sources:
        rel = s.relative_to(src_root_p).with_suffix(".o")
        work.append((s, out_root_p / rel, state_root / rel.with_name(rel.name + ".json")))
    workers = jobs or min(len(work), os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        futures = [pool.submit(_build_one, s, o, st, cflags, clang, force) for s, o, st in work]
        # Surface every failing file at once rather than only the first.
        results, errors = [], []
        for fut in futures:
            try:
                results.append(fut.result())
            except BuildError as e:
                errors.append(str(e))
    if errors:
        raise BuildError("\n\n".join(errors))
    return results


def _prune(out_root: Path, state_root: Path, wanted: set[Path]) -> None:
    if not out_root.is_dir():
        return
    for obj in out_root.rglob("*.bpf.o"):
        if obj not in wanted:
            obj.unlink()
            rel = obj.relative_to(out_root)
            (state_root / rel.with_name(rel.name + ".json")).unlink(missing_ok=True)


FFI_MODULE = "bpfkit.loader._libbpf_ffi"


def generate_libbpf_ffi(out: str | os.PathLike[str], cdef_file: str | os.PathLike[str] | None = None) -> bool:
    """Write cffi's out-of-line ABI module for the libbpf declarations of
    ``bpfkit/loader/libbpf_cdef.py`` to ``out`` (rewritten only when it changes); True if written.
    Needs cffi (a build requirement); the module it writes needs only cffi's C backend.

    Example::

        generate_libbpf_ffi("bpfkit/loader/_libbpf_ffi.py")
    """
    import cffi  # only here: the rest of this module is standard library

    cdef_path = Path(cdef_file) if cdef_file else Path(__file__).resolve().parent / "loader" / "libbpf_cdef.py"
    # by path, like setup.py loads this module: importing bpfkit.loader would need numpy
    spec = importlib.util.spec_from_file_location("_bpfkit_libbpf_cdef", cdef_path)
    assert spec is not None and spec.loader is not None
    cdef_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cdef_mod)
    ffi = cffi.FFI()
    ffi.cdef(cdef_mod.CDEF)
    ffi.set_source(FFI_MODULE, None)
    with tempfile.TemporaryDirectory() as tmp:
        generated = Path(tmp) / "ffi.py"
        with contextlib.redirect_stdout(io.StringIO()):  # cffi says "generating ..."
            ffi.emit_python_code(str(generated))
        code = generated.read_text()
    text = ("# Generated from bpfkit/loader/libbpf_cdef.py by bpfkit/_build.py: do not edit, never commit.\n"
            "# mypy: ignore-errors\n" + code + f"\nCDEF_DIGEST = {cdef_mod.cdef_digest()!r}\n")
    out = Path(out)
    if out.exists() and out.read_text() == text:
        return False
    atomic_write(out, text.encode())
    return True


def generate_syscall_table(out: str | os.PathLike[str]) -> bool:
    """Write this build machine's syscall names (from ``<asm/unistd*.h>``) as a Python module the
    package falls back to where those headers are missing; True if written, False when unchanged
    or when the headers are missing here too.

    Example::

        generate_syscall_table("bpfkit/_sys/_syscall_table.py")
    """
    here = Path(__file__).resolve().parent / "_sys" / "syscall_names.py"
    spec = importlib.util.spec_from_file_location("_bpfkit_syscall_names", here)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    machine = os.uname().machine
    table: dict[int, str] = {}
    for path in mod.UNISTD_HEADERS.get(machine, ()):
        try:
            table = mod.parse_unistd(Path(path).read_text())
        except OSError:
            continue
        if table:
            break
    if not table:
        return False
    body = "".join(f"    {n}: {name!r},\n" for n, name in sorted(table.items()))
    text = ("# Generated by bpfkit/_build.py from this build machine's <asm/unistd*.h>: do not edit, never commit.\n"
            f"MACHINE = {machine!r}\nNAMES = {{\n{body}}}\n")
    out = Path(out)
    if out.exists() and out.read_text() == text:
        return False
    atomic_write(out, text.encode())
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """``python bpfkit/_build.py``: build the checkout's BPF objects, print what was rebuilt."""
    root = Path(__file__).resolve().parent.parent
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--src", default=str(root / "c"), help="tree of *.bpf.c sources")
    p.add_argument("--out", default=str(root / "bpfkit" / "bpf"), help="output tree")
    p.add_argument("--vmlinux-dir", default=str(root / "build" / "include"))
    p.add_argument("--force", action="store_true", help="rebuild everything")
    p.add_argument("-j", "--jobs", type=int, default=None)
    args = p.parse_args(argv)
    try:
        results = build_all(
            args.src, args.out, vmlinux_dir=args.vmlinux_dir, force=args.force, jobs=args.jobs
        )
    except BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rebuilt = [r for r in results if r.rebuilt]
    for r in rebuilt:
        print(f"  BPF  {r.src} -> {r.out}")
    print(f"{len(results)} BPF objects in {args.out} ({len(rebuilt)} rebuilt)")
    if generate_syscall_table(root / "bpfkit" / "_sys" / "_syscall_table.py"):
        print(f"  SYS  {root / 'bpfkit' / '_sys' / '_syscall_table.py'}")
    ffi_out = root / "bpfkit" / "loader" / "_libbpf_ffi.py"
    try:
        if generate_libbpf_ffi(ffi_out):
            print(f"  FFI  {ffi_out}")
    except ImportError:
        print("cffi is not installed: bpfkit will parse the libbpf declarations at every start", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
