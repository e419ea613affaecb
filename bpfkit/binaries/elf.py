"""ELF binaries: their symbols and segments, and the file offset of a symbol (what a uprobe needs).

The kernel's uprobe PMU takes ``config1`` = offset *in the file*, not the
virtual address a symbol table gives, so every lookup goes through the
PT_LOAD program headers: ``offset = st_value - p_vaddr + p_offset``. That is
right for PIE and non-PIE executables and for shared libraries alike.

Example::

    from bpfkit.binaries import resolve_library, symbol_offset

    off = symbol_offset(resolve_library("c"), "malloc")    # same as "malloc@@GLIBC_2.2.5"

Parsed symbol tables are cached per (path, inode, mtime, size), so repeated
lookups in the same binary cost a dict lookup.
"""
from __future__ import annotations

import difflib
import errno as _errno
import fnmatch
import os
import re
import struct
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Iterable

import numpy as np
if TYPE_CHECKING:  # pyelftools costs ~25 ms to import: only loaded when a binary is parsed
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import Section

from ..errors import BpfError, BpfNotFoundError, BpfPermissionError, BpfUsageError, ObjectFormatError
from .elfreader import ElfReader
from .libraries import resolve_library

__all__ = [
    "IfuncWarning",
    "Segment",
    "Symbol",
    "address_to_offset",
    "elf_file_key",
    "find_symbol",
    "function_at",
    "list_symbols",
    "load_segments",
    "check_sections",
    "section_data",
    "symbol_offset",
]

class IfuncWarning(UserWarning):
    """The symbol is a GNU indirect function: its address is the *resolver*,
    which runs once at load time, not the implementation called at run time.
    Probe the implementation instead (e.g. ``__memcpy_avx_unaligned_erms``,
    see ``list_symbols(lib, "__memcpy*")``).

    Example::

        warnings.simplefilter("error", IfuncWarning)   # make probing an ifunc fail loudly
    """


@dataclass(frozen=True)
class Segment:
    """A PT_LOAD program header.

    Example::

        [s for s in load_segments("/bin/bash") if s.executable]
    """

    vaddr: int
    memsz: int
    offset: int
    filesz: int
    executable: bool

    def contains(self, address: int) -> bool:
        return self.vaddr <= address < self.vaddr + self.memsz


@dataclass(frozen=True)
class Symbol:
    """A function symbol of an ELF file.

    ``address`` is the symbol value (virtual address, relative to the load
    base for PIE/shared objects), ``offset`` the file offset a uprobe needs.
    ``version`` is the GNU symbol version (None if unversioned) and
    ``default_version`` False for hidden, compatibility-only versions
    (``name@VER`` as opposed to ``name@@VER``).

    Example::

        [s] = list_symbols("/bin/bash", "main")
        print(s.name, hex(s.offset))
    """

    name: str
    address: int
    size: int
    offset: int
    binding: str  # "global", "weak", "local" or "unique"
    is_ifunc: bool = False
    version: str | None = None
    default_version: bool = True

    @property
    def display_name(self) -> str:
        """``name``, ``name@@VER`` or ``name@VER`` as readelf/nm print it."""
        if self.version is None:
            return self.name
        return f"{self.name}{'@@' if self.default_version else '@'}{self.version}"


# ---------------------------------------------------------------------------
# Parsed ELF files (cached)

_STT_FUNC = 2
_STT_GNU_IFUNC = 10
_SHN_UNDEF = 0
_BINDINGS = {0: "local", 1: "global", 2: "weak", 10: "unique"}
_BIND_RANK = {"global": 0, "unique": 0, "weak": 1, "local": 2}
_VERSYM_HIDDEN = 0x8000


@dataclass
class _ElfInfo:
    path: str
    elf_type: str
    segments: tuple[Segment, ...]
    symbols: tuple[Symbol, ...]
    has_symtab: bool
    by_name: dict[str, list[Symbol]] = field(default_factory=dict)


def _sym_dtype(elf: ELFFile) -> np.dtype:
    e = "<" if elf.little_endian else ">"
    if elf.elfclass == 64:
        return np.dtype(
            [("name", e + "u4"), ("info", "u1"), ("other", "u1"), ("shndx", e + "u2"),
             ("value", e + "u8"), ("size", e + "u8")]
        )
    return np.dtype(
        [("name", e + "u4"), ("value", e + "u4"), ("size", e + "u4"), ("info", "u1"),
         ("other", "u1"), ("shndx", e + "u2")]
    )


def _verdef_names(elf: ELFFile) -> dict[int, str]:
    from elftools.elf.gnuversions import GNUVerDefSection

    names: dict[int, str] = {}
    for sec in elf.iter_sections():
        if isinstance(sec, GNUVerDefSection):
            for verdef, auxiter in sec.iter_versions():
                if verdef["vd_flags"] & 1:  # VER_FLG_BASE: the file's own name, not a version
                    continue
                aux = next(iter(auxiter), None)
                if aux is not None:
                    names[verdef["vd_ndx"]] = aux.name
    return names


# a compressed section may claim any size: beyond this much per byte of file it is a bomb, not data
_MAX_EXPANSION = 64


def check_sections(elf: "ELFFile") -> None:
    """Refuse an ELF file whose section headers claim more than the file holds, before pyelftools
    reads any section (it allocates whatever ``sh_size`` or a compression header says).

    Example::

        check_sections(ELFFile(f))
    """
    for sec in elf.iter_sections():
        if sec["sh_type"] != "SHT_NOBITS" and sec["sh_size"]:
            section_data_size(sec, elf)


def section_data_size(sec: "Section", elf: "ELFFile") -> int:
    """The size of a section's contents once checked against the file (ObjectFormatError)."""
    stream = elf.stream
    end = stream.seek(0, os.SEEK_END)
    size = sec.data_size if sec.compressed else sec["sh_size"]
    limit = end * _MAX_EXPANSION if sec.compressed else end
    if size > limit or sec["sh_offset"] > end or (not sec.compressed and sec["sh_offset"] + size > end):
        raise ObjectFormatError(f"{getattr(stream, 'name', 'ELF file')}: section {sec.name!r} claims {size} bytes "
                                f"at offset {sec['sh_offset']}, past the {end}-byte file")
    return int(size)


def section_data(sec: "Section", elf: "ELFFile") -> bytes:
    """A section's contents, refusing sizes the file cannot hold (pyelftools would try to
    allocate whatever ``sh_size`` or a compression header says).

    Example::

        section_data(elf.get_section_by_name(".dynsym"), elf)
    """
    if sec["sh_type"] == "SHT_NOBITS":
        return b""
    section_data_size(sec, elf)
    return bytes(sec.data())


def _read_symbols(elf: ELFFile, section_type: str) -> Iterable[tuple[str, int, int, int, int, int | None]]:
    """(name, value, size, info, index, versym) for defined functions in ``section_type``."""
    dtype = _sym_dtype(elf)
    for sec in elf.iter_sections():
        if sec["sh_type"] != section_type:
            continue
        raw = section_data(sec, elf)
        syms = np.frombuffer(raw, dtype=dtype, count=len(raw) // dtype.itemsize)
        stype = syms["info"] & 0xF
        keep = np.nonzero(
            ((stype == _STT_FUNC) | (stype == _STT_GNU_IFUNC)) & (syms["shndx"] != _SHN_UNDEF) & (syms["value"] != 0)
        )[0]
        if not len(keep):
            continue
        strtab = section_data(elf.get_section(sec["sh_link"]), elf)
        versym = None
        if section_type == "SHT_DYNSYM":
            for vsec in elf.iter_sections():
                if vsec["sh_type"] == "SHT_GNU_versym":
                    vraw = section_data(vsec, elf)
                    versym = np.frombuffer(vraw, dtype=("<u2" if elf.little_endian else ">u2"), count=len(vraw) // 2)
        for i in keep.tolist():
            s = syms[i]
            off = int(s["name"])
            name = strtab[off : strtab.index(b"\0", off)].decode("utf-8", "replace")
            vs = int(versym[i]) if versym is not None and i < len(versym) else None
            yield name, int(s["value"]), int(s["size"]), int(s["info"]), i, vs


def _segments(elf: ELFFile) -> tuple[Segment, ...]:
    segs = []
    for seg in elf.iter_segments():
        if seg["p_type"] == "PT_LOAD":
            segs.append(
                Segment(
                    vaddr=seg["p_vaddr"],
                    memsz=seg["p_memsz"],
                    offset=seg["p_offset"],
                    filesz=seg["p_filesz"],
                    executable=bool(seg["p_flags"] & 1),
                )
            )
    return tuple(segs)


def _vaddr_to_offset(segments: Iterable[Segment], address: int, prefer_exec: bool = True) -> int | None:
    hits = [s for s in segments if s.contains(address)]
    if prefer_exec:
        hits.sort(key=lambda s: not s.executable)
    for s in hits:
        return address - s.vaddr + s.offset
    return None


def _parse_elf(path: str, f: BinaryIO) -> _ElfInfo:
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    try:
        elf = ELFFile(f)
        check_sections(elf)
        elf_type = elf["e_type"]
        segments = _segments(elf)
        verdefs = _verdef_names(elf)
        symbols: list[Symbol] = []
        seen: set[tuple[str, int, str | None]] = set()
        seen_plain: set[tuple[str, int]] = set()
        has_symtab = any(s["sh_type"] == "SHT_SYMTAB" for s in elf.iter_sections())
        # .dynsym first: it carries the version information; a .symtab copy
        # of the same function at the same address adds nothing.
        for sh_type in ("SHT_DYNSYM", "SHT_SYMTAB"):
            for raw_name, value, size, info, _idx, versym in _read_symbols(elf, sh_type):
                name, version, default = raw_name, None, True
                if versym is not None and (versym & 0x7FFF) in verdefs:
                    version = verdefs[versym & 0x7FFF]
                    default = not versym & _VERSYM_HIDDEN
                elif "@" in raw_name:
                    # .symtab spells versions out: "memcpy@GLIBC_2.2.5" / "foo@@V2".
                    name, _, version = raw_name.partition("@")
                    default = version.startswith("@")
                    version = version.lstrip("@")
                key = (name, value, version)
                if key in seen or (version is None and (name, value) in seen_plain):
                    continue
                seen.add(key)
                seen_plain.add((name, value))
                off = _vaddr_to_offset(segments, value)
                if off is None:
                    continue  # e.g. a separate debuginfo file: no loadable code here
                symbols.append(
                    Symbol(
                        name=name,
                        address=value,
                        size=size,
                        offset=off,
                        binding=_BINDINGS.get(info >> 4, str(info >> 4)),
                        is_ifunc=(info & 0xF) == _STT_GNU_IFUNC,
                        version=version,
                        default_version=default,
                    )
                )
    except ELFError as e:
        raise ObjectFormatError(f"{path} is not a valid ELF file ({e}); give a binary or shared library") from e
    except (BpfError, MemoryError):
        raise
    except Exception as e:  # noqa: BLE001 - pyelftools raises whatever a malformed file makes it hit
        raise ObjectFormatError(f"{path}: malformed ELF file ({type(e).__name__}: {e})") from e
    symbols.sort(key=lambda s: (s.address, s.name))
    by_name: dict[str, list[Symbol]] = {}
    for s in symbols:
        by_name.setdefault(s.name, []).append(s)
    return _ElfInfo(path, elf_type, segments, tuple(symbols), has_symtab, by_name)


_CACHE_MAX = 32
_cache: "OrderedDict[tuple[str, int, int, int, int], _ElfInfo]" = OrderedDict()
_cache_lock = threading.Lock()


def _open(path: str | os.PathLike[str]) -> tuple[str, BinaryIO, os.stat_result]:
    p = os.fspath(path)
    if "/" not in p:
        # Bare names mean a library or command, as for resolve_library(); a
        # file in the current directory is "./name".
        p = resolve_library(p)
    try:
        f = open(p, "rb")
    except FileNotFoundError:
        raise BpfNotFoundError(f"{p}: no such file", _errno.ENOENT) from None
    except PermissionError:
        raise BpfPermissionError(f"{p}: permission denied reading the binary", _errno.EACCES) from None
    except IsADirectoryError:
        raise BpfUsageError(f"{p} is a directory; give the path of an executable or shared library",
                            _errno.EISDIR) from None
    return p, f, os.fstat(f.fileno())


def _file_key(p: str, st: os.stat_result) -> tuple[str, int, int, int, int]:
    """What identifies a file's current contents: realpath, device, inode, mtime_ns, size."""
    return (os.path.realpath(p), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def _elf_info(path: str | os.PathLike[str]) -> _ElfInfo:
    p, f, st = _open(path)
    with f:
        key = _file_key(p, st)
        with _cache_lock:
            info = _cache.get(key)
            if info is not None:
                _cache.move_to_end(key)
                return info
        if f.read(4) != b"\x7fELF":
            raise ObjectFormatError(f"{p} is not an ELF file (bad magic); give a binary or shared library")
        f.seek(0)
        info = _parse_elf(p, f)
    with _cache_lock:
        _cache[key] = info
        while len(_cache) > _CACHE_MAX:
            _cache.popitem(last=False)
    return info


# ---------------------------------------------------------------------------
# Public lookups


def load_segments(path: str | os.PathLike[str]) -> tuple[Segment, ...]:
    """The PT_LOAD segments of ``path``.

    Example::

        [hex(s.vaddr) for s in load_segments("/bin/true")]
    """
    # The program headers alone, through the raw reader: a uprobe's offset check needs only these,
    # and parsing every symbol with pyelftools cost ~0.1 s of a one-liner's start-up (libc).
    p, f, st = _open(path)
    with f:
        key = _file_key(p, st)
        with _cache_lock:
            info = _cache.get(key)
        if info is not None:
            return info.segments
        reader = ElfReader(f, p)
        return tuple(Segment(vaddr=s.vaddr, memsz=s.memsz, offset=s.offset, filesz=s.filesz,
                             executable=s.executable) for s in reader.loads)


def address_to_offset(path: str | os.PathLike[str], address: int) -> int:
    """File offset of virtual ``address`` (as in ``nm``/``objdump``) in ``path``.

    Raises BpfNotFoundError if no PT_LOAD segment covers the address.

    Example::

        address_to_offset("/usr/bin/myprog", 0x401126)   # 0x1126 for -no-pie
    """
    info = _elf_info(path)
    off = _vaddr_to_offset(info.segments, address)
    if off is None:
        ranges = ", ".join(f"{s.vaddr:#x}-{s.vaddr + s.memsz:#x}" for s in info.segments) or "none"
        raise BpfNotFoundError(
            f"address {address:#x} is not inside any loadable segment of {info.path} (PT_LOAD ranges: {ranges})"
        )
    return off


_SPEC = re.compile(r"^(?P<name>[^@+\s]+)(?:(?P<at>@@?)(?P<ver>[^@+\s]+))?(?:\+(?P<plus>0[xX][0-9a-fA-F]+|\d+))?$")
_RAW_ADDR = re.compile(r"^0[xX][0-9a-fA-F]+$")


def _not_found(info: _ElfInfo, spec: str, name: str) -> BpfNotFoundError:
    msg = f"function {spec!r} not found in {info.path}"
    if name in info.by_name:
        have = ", ".join(sorted(s.display_name for s in info.by_name[name]))
        return BpfNotFoundError(f"{msg}; its versions there are: {have}", _errno.ENOENT)
    if not info.has_symtab:
        msg += (
            f" (the binary is stripped: no .symtab, only {len(info.symbols)} exported .dynsym functions; "
            f"check `nm -D {info.path}` and use a non-stripped build or a raw address)"
        )
    else:
        msg += f" (see `nm {info.path}` or bpfkit.binaries.list_symbols())"
    close = difflib.get_close_matches(name, list(info.by_name), n=3)
    if close:
        msg += "; did you mean " + " / ".join(close) + "?"
    return BpfNotFoundError(msg, _errno.ENOENT)


def find_symbol(path: str | os.PathLike[str], symbol: str) -> Symbol:
    """The Symbol that ``symbol_offset`` would use for ``symbol`` (no ``+off``).

    ``name`` prefers the default version and global over weak over local
    bindings; ``name@VER`` takes any definition with that version,
    ``name@@VER`` only the default one.

    Example::

        find_symbol("c", "malloc").version   # 'GLIBC_2.2.5'
    """
    info = _elf_info(path)
    m = _SPEC.match(symbol)
    if not m or m.group("plus"):
        raise BpfUsageError(f"bad symbol {symbol!r}: expected name, name@VER or name@@VER")
    return _pick(info, symbol, m.group("name"), m.group("at"), m.group("ver"))


def _pick(info: _ElfInfo, spec: str, name: str, at: str | None, ver: str | None) -> Symbol:
    cands = info.by_name.get(name, [])
    if ver is not None:
        cands = [s for s in cands if s.version == ver and (at == "@" or s.default_version)]
    if not cands:
        raise _not_found(info, spec, name)

    def rank(s: Symbol) -> tuple[int, int]:
        return (0 if s.default_version else 1, _BIND_RANK.get(s.binding, 3))

    best = min(rank(s) for s in cands)
    top = [s for s in cands if rank(s) == best]
    if len({s.offset for s in top}) > 1:
        where = ", ".join(f"{s.display_name} ({s.binding}) at {s.address:#x}" for s in top)
        raise BpfNotFoundError(
            f"function {spec!r} is ambiguous in {info.path}: {where}; probe one by its raw address instead",
            _errno.ENOENT,
        )
    return top[0]


def symbol_offset(path: str | os.PathLike[str], symbol: str, offset: int = 0) -> int:
    """File offset for a uprobe on ``symbol`` in ``path`` (the uprobe PMU's config1).

    ``symbol`` is a function name (``"malloc"``), a versioned name
    (``"malloc@@GLIBC_2.2.5"``, ``"memcpy@GLIBC_2.2.5"``), either plus a
    displacement (``"main+0x10"``), or a raw virtual address as ``nm`` prints
    it (``"0x401126"``). ``offset`` is added to the result. ``path`` may be
    anything ``resolve_library`` accepts. Functions in both .symtab and
    .dynsym are found; a GNU ifunc emits IfuncWarning.

    Raises BpfNotFoundError (unknown or ambiguous symbol, stripped binary),
    ObjectFormatError (not an ELF file).

    Example::

        symbol_offset("/usr/bin/bash", "readline")
        symbol_offset("c", "malloc+4")
    """
    info = _elf_info(path)
    if _RAW_ADDR.match(symbol):
        address = int(symbol, 16)
        if not any(s.executable and s.contains(address) for s in info.segments):
            ranges = ", ".join(f"{s.vaddr:#x}-{s.vaddr + s.memsz:#x}" for s in info.segments if s.executable)
            raise BpfNotFoundError(
                f"address {symbol} is not in an executable segment of {info.path} "
                f"(executable PT_LOAD ranges: {ranges or 'none'}); give an address as `nm` or `objdump -d` prints it",
                _errno.ENOENT,
            )
        return address_to_offset(info.path, address) + offset
    m = _SPEC.match(symbol)
    if not m:
        raise BpfUsageError(
            f"bad symbol {symbol!r}: expected name, name@VER, name@@VER, name+0x10 or 0xADDRESS", _errno.EINVAL
        )
    sym = _pick(info, symbol, m.group("name"), m.group("at"), m.group("ver"))
    if sym.is_ifunc:
        warnings.warn(
            IfuncWarning(
                f"{sym.display_name} in {info.path} is a GNU ifunc: a uprobe on it fires when the dynamic "
                f"loader resolves it, not on calls; probe the implementation it selects instead"
            ),
            stacklevel=2,
        )
    plus = int(m.group("plus"), 0) if m.group("plus") else 0
    return sym.offset + plus + offset


def list_symbols(path: str | os.PathLike[str], pattern: str = "*") -> list[Symbol]:
    """Function symbols of ``path`` whose name matches the fnmatch ``pattern``.

    A pattern containing ``@`` matches the versioned name (``"*@GLIBC_2.2.5"``).
    The result is sorted by address; every version of a function is listed.

    Example::

        [s.name for s in list_symbols("c", "pthread_mutex_*lock")]
    """
    info = _elf_info(path)
    if pattern == "*":
        return list(info.symbols)
    rx = re.compile(fnmatch.translate(pattern))
    if "@" in pattern:
        return [s for s in info.symbols if rx.match(s.display_name)]
    return [s for s in info.symbols if rx.match(s.name)]


def function_at(path: str | os.PathLike[str], file_offset: int) -> Symbol | None:
    """The function whose code covers ``file_offset`` of ``path`` (None if no symbol does, e.g.
    in a stripped binary). Return probes use it to refuse offsets past a function's entry.

    Example::

        f = function_at("c", symbol_offset("c", "malloc+4"))
        (f.name, f.offset)          # ('malloc', 0x...) - 4 bytes before the probe point
    """
    best: Symbol | None = None
    for s in _elf_info(path).symbols:
        if s.offset <= file_offset < s.offset + max(s.size, 1) and (best is None or s.offset > best.offset):
            best = s
    return best


def elf_file_key(path: str | os.PathLike[str]) -> tuple[str, int, int, int, int]:
    """Cache key identifying the current contents of ``path``
    (realpath, device, inode, mtime_ns, size).

    Example::

        key = elf_file_key("/usr/bin/bash")   # changes when the file is replaced
    """
    p, f, st = _open(path)
    f.close()
    return _file_key(p, st)

