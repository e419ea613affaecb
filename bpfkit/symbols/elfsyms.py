"""Function symbols of one ELF file, from wherever they are, cached per build-id.

A binary's function names can live in its ``.symtab`` (unstripped), only in ``.dynsym``
(stripped: exported functions only), in a separate debug file (found by build-id or
``.gnu_debuglink``, see :mod:`.debuginfo`) or in MiniDebugInfo (``.gnu_debugdata``: an
xz-compressed ELF with a ``.symtab`` of the functions ``.dynsym`` lacks, as Fedora ships). This
module gathers them into one :class:`SymbolTable` keyed by link-time virtual address, together
with the PT_LOAD headers needed to turn a runtime address (or a file offset, for build-id
stacks) into that virtual address.

Loaded files are cached by (device, inode, size, mtime) and by build-id in a bounded LRU, and
every build-id seen is remembered with its path, so a build-id stack of a process that has
exited can still be resolved while the file exists.

Example::

    es = load_elf_symbols("/usr/lib/x86_64-linux-gnu/libc.so.6")
    es.build_id, es.sources, len(es.table)
    idx, off = es.table.lookup(np.array([0x29d90], np.uint64))
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from bpfkit.errors import BpfError, BpfNotFoundError, BpfPermissionError, ObjectFormatError

from ..binaries.elfreader import SHT_DYNSYM, SHT_SYMTAB, ElfReader, LoadSegment
from .debuginfo import DEFAULT_DEBUG_DIRS, find_debug_file
from .dwarf import LineTable
from .framepointers import has_frame_pointers
from .table import SymbolTable, _Names, pick_aliases

_STT_FUNC = 2
_STT_GNU_IFUNC = 10
_BIND_RANK = np.full(16, 3, np.int8)
_BIND_RANK[[1, 10]] = 0  # GLOBAL, GNU_UNIQUE
_BIND_RANK[2] = 1        # WEAK
_BIND_RANK[0] = 2        # LOCAL
_PAGE = 4096


@dataclass
class ElfSymbols:
    """The function symbols and load layout of one ELF file.

    ``sources`` says where the names came from (``".symtab"``, ``".dynsym"``,
    ``".gnu_debugdata"`` or a debug file's path); ``problems`` lists debug files that were found
    but rejected and why. ``frame_pointers`` is the verdict of
    :func:`~bpfkit.symbols.framepointers.has_frame_pointers` (None: could not tell).

    Example::

        es = load_elf_symbols("/usr/bin/python3.11")
        es.frame_pointers      # False
    """

    path: str
    build_id: str | None
    e_type: int
    loads: tuple[LoadSegment, ...]
    table: SymbolTable
    sources: tuple[str, ...]
    problems: tuple[str, ...] = ()
    frame_pointers: bool | None = None
    exact_offsets: bool = True  # False when the layout came from a debug file (its p_offset are not real)
    dwarf_path: str | None = None  # the file holding .debug_line (this file or its debug file)
    _lines: "LineTable | None | BpfError" = field(default=None, repr=False)
    _lines_loaded: bool = field(default=False, repr=False)

    def source_lines(self, vaddrs: np.ndarray) -> list[str]:
        """``"file:line"`` per link-time address from DWARF (``""`` where unknown). The line table
        is decoded on first use (slow for big files: pure Python) and kept.

        Raises BpfError (ObjectFormatError, BpfNotFoundError) if the DWARF cannot be read; the
        error is kept and raised again on later calls.

        Example::

            es.source_lines(np.array([0x1139], np.uint64))     # ['/src/prog.c:12']
        """
        if not self._lines_loaded:
            try:
                self._lines = LineTable.from_file(self.dwarf_path) if self.dwarf_path else None
            except BpfError as e:
                self._lines = e
            self._lines_loaded = True
        if isinstance(self._lines, BpfError):
            raise self._lines
        if self._lines is None:
            return [""] * len(vaddrs)
        return self._lines.lookup(vaddrs)

    def bias(self, map_start: int, map_pgoff: int, executable: bool = True) -> int | None:
        """``addr - bias`` is the link-time address of ``addr`` in a mapping of this file at
        ``map_start`` with file offset ``map_pgoff`` (None if no PT_LOAD covers that offset).

        Example::

            es.bias(0x7f0000001000, 0x1000)    # 0x7f0000000000 for a typical shared library
        """
        best = None
        for s in self.loads:
            lo = s.offset - s.offset % _PAGE
            if lo <= map_pgoff < max(s.offset + s.filesz, lo + 1):
                if best is None or (s.executable == executable and best.executable != executable):
                    best = s
        if best is None:
            return None
        return map_start - map_pgoff + best.offset - best.vaddr

    def offsets_to_vaddrs(self, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(vaddrs, ok)`` for file offsets (as in build-id stack frames); ``ok`` is False where no
        PT_LOAD holds the offset.

        Example::

            v, ok = es.offsets_to_vaddrs(np.array([0x1139], np.uint64))
        """
        offs = np.asarray(offsets, np.uint64)
        vaddr = np.zeros(len(offs), np.uint64)
        ok = np.zeros(len(offs), bool)
        if not self.exact_offsets and self.loads:
            # A debug file's program headers keep p_vaddr but not p_offset. Linkers lay out
            # segments so that offset == vaddr - first vaddr (page-aligned) for code.
            base = np.uint64(min(s.vaddr for s in self.loads) & ~(_PAGE - 1))
            return offs + base, np.ones(len(offs), bool)
        for s in sorted(self.loads, key=lambda s: s.executable):  # executable segments win overlaps
            end = min(s.offset + max(s.filesz, 1), (1 << 64) - 1)  # a corrupt header may claim past 2**64
            m = (offs >= np.uint64(s.offset)) & (offs < np.uint64(end))
            vaddr[m] = offs[m] - np.uint64(s.offset) + np.uint64(s.vaddr)
            ok |= m
        return vaddr, ok


def _functions(entries: np.ndarray, src: int) -> tuple[np.ndarray, ...]:
    stype = entries["info"] & 0xF
    keep = ((stype == _STT_FUNC) | (stype == _STT_GNU_IFUNC)) & (entries["shndx"] != 0) & (entries["value"] != 0)
    e = entries[keep]
    return (e["value"].astype(np.uint64), e["size"].astype(np.uint64), _BIND_RANK[e["info"] >> 4],
            np.full(len(e), src, np.uint8), e["name"].astype(np.uint32))


def code_ranges(elf: ElfReader) -> list[tuple[int, int]]:
    """``(start, end)`` link-time address ranges of the executable sections (or, without section
    headers, of the executable segments)."""
    secs = [(s.addr, s.addr + s.size) for s in elf.sections if s.flags & 0x6 == 0x6 and s.size]  # ALLOC|EXECINSTR
    return secs or [(s.vaddr, s.vaddr + s.memsz) for s in elf.loads if s.executable]


def build_table(parts: Sequence[tuple[np.ndarray, bytes]], code: Sequence[tuple[int, int]] = ()) -> SymbolTable:
    """One table from several ``(symbol entries, strtab)`` pairs: function symbols only, one name
    per address (global over weak over local, sized over unsized, fewest leading underscores:
    ``malloc`` rather than ``__libc_malloc``), sizeless symbols extended to the next symbol but not
    past the end of their section (``code``, from :func:`code_ranges`).

    Example::

        build_table([elf.symbols(SHT_SYMTAB)], code_ranges(elf))
    """
    cols = [_functions(e, i) for i, (e, _s) in enumerate(parts)]
    strtabs = [s for _e, s in parts]
    if not cols or sum(len(c[0]) for c in cols) == 0:
        return SymbolTable(np.zeros(0, np.uint64), np.zeros(0, np.uint64), _Names([], np.zeros(0, np.uint8),
                                                                                   np.zeros(0, np.uint32)))
    value, size, rank, src, noff = (np.concatenate([c[k] for c in cols]) for k in range(5))
    rank = rank.astype(np.int64) * 2 + (size == 0)
    order = np.lexsort((rank, value))
    value, size, rank, src, noff = value[order], size[order], rank[order], src[order], noff[order]
    names = _Names(strtabs, src, noff)
    keep = pick_aliases(value, rank, names)
    value, size, names = value[keep], size[keep], names.subset(keep)
    # Symbol sizes may be 0 (assembly, _init): extend to the next symbol, within its section.
    nxt = np.append(value[1:], np.uint64(np.iinfo(np.uint64).max))
    ends = np.where(size > 0, value + size, nxt)
    sizeless = size == 0
    capped = np.zeros(len(value), bool)
    for lo, hi in code:
        m = sizeless & (value >= np.uint64(lo)) & (value < np.uint64(hi))
        ends[m] = np.minimum(ends[m], np.uint64(hi))
        capped |= m
    last = sizeless & ~capped & (ends == np.iinfo(np.uint64).max)
    ends[last] = value[last] + 1
    return SymbolTable(value, ends, names)


def _load(elf: ElfReader, display: str, debug_dirs: Sequence[str], root: str, opened: str | None) -> ElfSymbols:
    build_id = elf.build_id()
    problems: list[str] = []
    parts: list[tuple[np.ndarray, bytes]] = []
    sources: list[str] = []
    symtab = elf.symbols(SHT_SYMTAB)
    # A separate debug file (opened directly, e.g. found by build-id) has PT_LOADs without code:
    # its p_vaddr are right but its p_offset are not the binary's.
    exact = not elf.loads or any(s.filesz > 0 for s in elf.loads if s.executable)
    layout = elf.loads
    has_lines = _has_debug_line(elf)
    search = None
    if symtab is None or len(symtab[0]) <= 1 or not has_lines:
        search = find_debug_file(display, build_id, elf.debuglink(), debug_dirs, root)
    dwarf_path = opened if has_lines else None
    if dwarf_path is None and search is not None and search.path is not None:
        try:
            with ElfReader.open(search.path) as dbg:
                dwarf_path = search.path if _has_debug_line(dbg) else None
        except BpfError:
            pass
    if symtab is not None and len(symtab[0]) > 1:
        parts.append(symtab)
        sources.append(".symtab")
    else:
        assert search is not None
        dyn = elf.symbols(SHT_DYNSYM)
        problems += search.rejected
        extra: tuple[np.ndarray, bytes] | None = None
        if search.path is not None:
            try:
                with ElfReader.open(search.path) as dbg:
                    extra = dbg.symbols(SHT_SYMTAB)
                    if not layout:
                        layout, exact = dbg.loads, False
            except BpfError as e:
                problems.append(f"{search.path}: {e}")
            if extra is not None:
                sources.append(search.path)
        if extra is None:
            try:
                mini = elf.gnu_debugdata()
                if mini is not None:
                    extra = ElfReader(mini, display + " [.gnu_debugdata]").symbols(SHT_SYMTAB)
                    if extra is not None:
                        sources.append(".gnu_debugdata")
            except ObjectFormatError as e:
                problems.append(str(e))
        if dyn is not None and len(_functions(dyn[0], 0)[0]):
            parts.append(dyn)
            sources.insert(0, ".dynsym")
        if extra is not None:
            parts.append(extra)
    table = build_table(parts, code_ranges(elf))
    fp = has_frame_pointers(elf, table.starts, table.ends - table.starts) if elf.loads else None
    return ElfSymbols(display, build_id, elf.e_type, layout, table, tuple(sources), tuple(problems), fp, exact,
                      dwarf_path)


def _has_debug_line(elf: ElfReader) -> bool:
    sec = elf.section(".debug_line")
    return sec is not None and sec.type != 8 and sec.size > 0  # 8: SHT_NOBITS


class ElfCache:
    """A bounded LRU of :class:`ElfSymbols` keyed by file identity and by build-id, plus an index
    build-id → path of every file loaded (for build-id stacks).

    Example::

        cache = ElfCache(max_entries=16)
        es = cache.load("/usr/bin/python3.11")
        cache.get_build_id(es.build_id) is es     # True
    """

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._by_key: OrderedDict[tuple[int, int, int, int], ElfSymbols] = OrderedDict()
        self._by_id: OrderedDict[str, ElfSymbols] = OrderedDict()
        self.paths_by_build_id: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._by_key)

    def _remember(self, key: tuple[int, int, int, int], es: ElfSymbols, opened: str) -> None:
        with self._lock:
            self._by_key[key] = es
            self._by_key.move_to_end(key)
            if es.build_id:
                self._by_id[es.build_id] = es
                self._by_id.move_to_end(es.build_id)
                if not opened.startswith("/proc/"):  # map_files/root paths die with the process
                    self.paths_by_build_id[es.build_id] = opened
                    while len(self.paths_by_build_id) > 64 * self.max_entries:
                        self.paths_by_build_id.popitem(last=False)
            while len(self._by_key) > self.max_entries:
                self._by_key.popitem(last=False)
            while len(self._by_id) > self.max_entries:
                self._by_id.popitem(last=False)

    def get_build_id(self, build_id: str) -> ElfSymbols | None:
        """The cached symbols of the file with ``build_id`` (None if not loaded or evicted)."""
        with self._lock:
            es = self._by_id.get(build_id)
            if es is not None:
                self._by_id.move_to_end(build_id)
            return es

    def load(self, path: str, display: str | None = None, debug_dirs: Sequence[str] = DEFAULT_DEBUG_DIRS,
             root: str = "", expect_inode: int | None = None) -> ElfSymbols:
        """Symbols of the file at ``path`` (cached). ``display`` is its name as the traced process
        sees it (used for messages and the debuglink search), ``root`` a ``/proc/PID/root`` prefix.
        ``expect_inode``: refuse (BpfNotFoundError) a file that is not that inode, i.e. one replaced
        since a process mapped it.

        Raises BpfNotFoundError, BpfPermissionError or ObjectFormatError.
        """
        name = display or path
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise BpfNotFoundError(f"{name}: no such file (via {path})") from None
        except PermissionError:
            raise BpfPermissionError(f"{name}: permission denied reading {path}; " +
                                     ("run as root" if os.geteuid() else "refused even to root (a container without "
                                      "CAP_DAC_OVERRIDE, or another mount namespace's file)")) from None
        except OSError as e:
            raise ObjectFormatError(f"{name}: cannot open {path} ({e.strerror})", e.errno or 0) from None
        with f:
            st = os.fstat(f.fileno())
            if expect_inode is not None and st.st_ino != expect_inode:
                raise BpfNotFoundError(f"{name}: {path} is inode {st.st_ino}, not the mapped inode {expect_inode} "
                                       "(the file was replaced since it was mapped)")
            key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            with self._lock:
                hit = self._by_key.get(key)
            if hit is not None:
                self._remember(key, hit, path)
                return hit
            elf = ElfReader(f, name)
            bid = elf.build_id()
            if bid is not None:
                hit = self.get_build_id(bid)
                if hit is not None:
                    self._remember(key, hit, path)
                    return hit
            es = _load(elf, name, debug_dirs, root, path)
        self._remember(key, es, path)
        return es

    def load_image(self, data: bytes, name: str) -> ElfSymbols:
        """Symbols of an in-memory ELF image such as the ``[vdso]`` (cached by build-id)."""
        elf = ElfReader(data, name)
        bid = elf.build_id()
        hit = self.get_build_id(bid) if bid else None
        if hit is not None:
            return hit
        es = _load(elf, name, (), "", None)
        if bid:
            with self._lock:
                self._by_id[bid] = es
        return es


_default_cache = ElfCache()


def default_cache() -> ElfCache:
    """The process-wide cache that :class:`~bpfkit.symbols.Symbolizer` uses unless given one."""
    return _default_cache


def load_elf_symbols(path: str, debug_dirs: Sequence[str] = DEFAULT_DEBUG_DIRS,
                     cache: ElfCache | None = None) -> ElfSymbols:
    """Symbols of the ELF file at ``path`` through ``cache`` (default: the process-wide one).
    Files are shared by build-id: a stripped copy of a file already loaded gets its symbols.

    Raises BpfNotFoundError, BpfPermissionError or ObjectFormatError (not an ELF file, truncated).

    Example::

        es = load_elf_symbols("/usr/bin/python3.11")
        [es.table.name_at(i) for i in es.table.find("main")]
    """
    return (cache if cache is not None else _default_cache).load(path, debug_dirs=debug_dirs)
