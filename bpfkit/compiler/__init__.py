"""bpfkit.compile(): BPF C (a file or a string) -> cached CO-RE ``.bpf.o``.

Objects are cached by content: the source, the flags, clang's version, the
running kernel's BTF and the headers the source can see. A repeat call with
the same inputs returns the cached path without running clang.

Example::

    import bpfkit
    obj_path = bpfkit.compile('''
        #include "vmlinux.h"
        #include <bpf/bpf_helpers.h>
        SEC("tracepoint/syscalls/sys_enter_getpid")
        int on_getpid(void *ctx) { return 0; }
        char LICENSE[] SEC("license") = "GPL";
    ''')
"""
from __future__ import annotations

import argparse
import errno
import hashlib
import os
import sys
from pathlib import Path
from typing import Iterable, Sequence

from .. import _build
from ..cachedir import cache_root  # re-exported: bpfkit.compiler.cache_root is public
from ..errors import BpfNotFoundError, CompileError
from . import cache

__all__ = ["compile", "compile_main", "cache_root", "include_dir", "cache"]

# Bump when the key recipe or the default flags change, so old objects are not reused.
_KEY_VERSION = b"bpfkit-compile-v1\0"
_TEXT_STEM = "prog"


def include_dir() -> Path:
    """Directory of bpfkit's own BPF-side headers (pass it as ``-I`` to other build systems).

    An installed package ships them as ``bpfkit/include``; a source checkout
    uses ``c/include`` directly so edits take effect without reinstalling.

    Example::

        >>> include_dir()
        PosixPath('/work/main/c/include')
    """
    pkg = Path(__file__).resolve().parent.parent  # bpfkit/ (this is bpfkit/compiler/__init__.py)
    shipped = pkg / "include"
    if shipped.is_dir():
        return shipped
    return pkg.parent / "c" / "include"


def _is_source_text(source: str | os.PathLike[str]) -> bool:
    return isinstance(source, str) and ("\n" in source or "{" in source)


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".bpf.c", ".c"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _hash_headers(h: "hashlib._Hash", directory: Path, recursive: bool) -> None:
    if not directory.is_dir():
        return
    files = directory.rglob("*.h") if recursive else directory.glob("*.h")
    for f in sorted(files):
        try:
            data = f.read_bytes()
        except OSError:
            continue
        h.update(str(f.relative_to(directory)).encode() + b"\0")
        h.update(hashlib.sha256(data).digest())


def _cache_key(
    source: bytes,
    source_dir: Path | None,
    cflags: Sequence[str],
    include_dirs: Sequence[Path],
    clang: str,
    btf: str,
) -> str:
    h = hashlib.sha256(_KEY_VERSION)
    for part in (source, _build.clang_version(clang).encode(), btf.encode()):
        h.update(hashlib.sha256(part).digest())
    for flag in cflags:
        h.update(b"F" + flag.encode() + b"\0")
    for d in include_dirs:
        h.update(b"I" + str(d).encode() + b"\0")
    # Headers the source can reach. Only non-recursive *.h of user dirs: an
    # include dir may be as big as /usr/include.
    if source_dir is not None:
        _hash_headers(h, source_dir, recursive=False)
    for d in include_dirs:
        _hash_headers(h, d, recursive=False)
    _hash_headers(h, include_dir(), recursive=True)
    try:
        _hash_headers(h, _build.find_libbpf_include() / "bpf", recursive=False)
    except _build.BuildError:
        pass  # reported with a useful message when we actually compile
    return h.hexdigest()


def _current_btf_hash() -> str | None:
    try:
        return _build.btf_hash()
    except _build.BuildError:
        return None


def _compile(
    *,
    path: Path | None,
    text: str | None,
    cflags: Sequence[str],
    include_dirs: Iterable[str | os.PathLike[str]],
    cache_dir: str | os.PathLike[str] | None,
) -> Path:
    if path is not None:
        try:
            source = path.read_bytes()
        except FileNotFoundError:
            raise BpfNotFoundError(
                f"BPF source file {path} not found; pass a path to a .bpf.c file or the C source text",
                errno.ENOENT,
            ) from None
        except OSError as e:
            raise CompileError(f"cannot read BPF source {path}: {e}", e.errno or 0) from None
        source_dir: Path | None = path.resolve().parent
        stem = _stem(path)
    else:
        assert text is not None
        source = text.encode()
        source_dir = None
        stem = _TEXT_STEM
    user_dirs = [Path(d).resolve() for d in include_dirs]
    try:
        clang = _build.find_clang()
        btf = _current_btf_hash()
        key = _cache_key(source, source_dir, cflags, user_dirs, clang, btf or "no-btf")
    except _build.BuildError as e:
        raise CompileError(str(e)) from None

    # a cached object is loaded as root: used only from a cache nobody else can write (cache.py)
    root = cache.usable_root(cache_root(cache_dir))
    obj_dir = root / "obj" / key[:32]
    out = obj_dir / f"{stem}.bpf.o"
    if cache.entry_ok(root, out):
        cache.touch(out)
        return out

    try:
        cache.prepare_entry(root, obj_dir)
        vmlinux_dir: list[Path] = []
        if btf is not None:
            vmlinux_dir = [_build.generate_vmlinux_h(root / "include" / "vmlinux.h").parent]
        dirs = ([source_dir] if source_dir else []) + user_dirs + [include_dir()] + vmlinux_dir
        flags = _build.bpf_cflags(dirs) + list(cflags)
        if path is None:
            # A real file (not stdin) keeps file names in BTF line info and clang messages useful.
            src_file = obj_dir / f"{stem}.bpf.c"
            _build.atomic_write(src_file, source)
        else:
            src_file = path
        built = _build.compile_file(src_file, out, flags, clang=clang)  # atomic: a temp file renamed into place
        cache.bound(root)
        return built
    except _build.BuildError as e:
        message = str(e)
        if btf is None and "vmlinux.h' file not found" in e.stderr:
            message += "\n" + str(_build.missing_btf_error(_build.VMLINUX_BTF))
        raise CompileError(message) from None


def compile(  # noqa: A001 - the public name is bpfkit.compile
    source: str | os.PathLike[str],
    *,
    cflags: Sequence[str] = (),
    include_dirs: Iterable[str | os.PathLike[str]] = (),
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Compile BPF C to a CO-RE object and return the cached ``.bpf.o`` path.

    ``source`` is a path to a ``.bpf.c`` file, or C source text (a ``str``
    containing a newline or ``{``). The include path is: the source file's
    directory, ``include_dirs``, bpfkit's headers (:func:`include_dir`), a
    vmlinux.h generated from the running kernel's BTF, then libbpf's headers.
    ``cflags`` are appended after the defaults (``-O2 -g -target bpf
    -D__TARGET_ARCH_<arch>``). See :func:`cache_root` for the cache location.

    Raises :class:`bpfkit.errors.CompileError` (message includes clang's
    output) if compilation fails or the toolchain is missing.

    Example::

        >>> path = compile("c/tests/minimal.bpf.c", cflags=["-DMAX_ENTRIES=64"])
        >>> path.name
        'minimal.bpf.o'
    """
    if _is_source_text(source):
        assert isinstance(source, str)
        return _compile(path=None, text=source, cflags=cflags, include_dirs=include_dirs, cache_dir=cache_dir)
    return _compile(
        path=Path(source), text=None, cflags=cflags, include_dirs=include_dirs, cache_dir=cache_dir
    )


def compile_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bpfkit compile FILE [-o OUT] [-I DIR]... [--cache-dir DIR] [-- CFLAGS...]``.

    ``argv`` excludes the program name and the ``compile`` word. Prints the
    object's path (``OUT`` if given, else the cache path); FILE ``-`` reads
    the source from stdin. Returns the exit status.

    Example::

        >>> compile_main(["prog.bpf.c", "-o", "prog.bpf.o", "--", "-DDEBUG"])
        prog.bpf.o
        0
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in args_list:
        cut = args_list.index("--")
        args_list, extra = args_list[:cut], args_list[cut + 1 :]
    p = argparse.ArgumentParser(
        prog="bpfkit compile",
        description="Compile BPF C into a CO-RE object (cached); prints the object's path.",
        epilog="Arguments after -- are passed to clang.",
    )
    p.add_argument("file", help="a .bpf.c file, or - to read the source from stdin")
    p.add_argument("-o", "--output", help="copy the object here instead of printing the cache path")
    p.add_argument("-I", dest="include_dirs", action="append", default=[], metavar="DIR")
    p.add_argument("--cache-dir", default=None, help="cache root (default: $BPFKIT_CACHE_DIR or ~/.cache/bpfkit)")
    args = p.parse_args(args_list)
    try:
        if args.file == "-":
            obj = _compile(
                path=None, text=sys.stdin.read(), cflags=extra,
                include_dirs=args.include_dirs, cache_dir=args.cache_dir,
            )
        else:
            obj = _compile(
                path=Path(args.file), text=None, cflags=extra,
                include_dirs=args.include_dirs, cache_dir=args.cache_dir,
            )
    except (CompileError, BpfNotFoundError) as e:
        print(f"bpfkit compile: error: {e}", file=sys.stderr)
        return 1
    if args.output:
        dest = Path(args.output)
        try:
            _build.atomic_write(dest, obj.read_bytes())
        except OSError as e:
            print(f"bpfkit compile: error: cannot write {dest}: {e}", file=sys.stderr)
            return 1
        print(dest)
    else:
        print(obj)
    return 0
