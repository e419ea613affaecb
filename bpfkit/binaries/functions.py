"""The functions of an ELF file and their uprobe file offsets, read with the raw reader
(:mod:`.elfreader`: numpy symbol arrays, no pyelftools), for paths that must start fast -- the
one-liner tools look a function up and attach within a few milliseconds.

Aliases (``__libc_malloc``/``malloc``) share an offset. Left out, for :mod:`.elf` (which reads the
version tables) to resolve: GNU ifuncs, names defined in several versions at different addresses,
and versioned lookups (``malloc@GLIBC_2.2.5``).

Example::

    offs = function_offsets("/usr/lib/x86_64-linux-gnu/libc.so.6")
    offs["malloc"]                                    # file offset for the uprobe PMU
    matching("/usr/lib/x86_64-linux-gnu/libc.so.6", "str*")
"""
from __future__ import annotations

import fnmatch
import os
import re
from functools import lru_cache
from typing import Callable, Union

from .elfreader import SHT_DYNSYM, SHT_SYMTAB, ElfReader

__all__ = ["function_offsets", "matching"]

STT_FUNC = 2
STT_GNU_IFUNC = 10


def _offsets(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    ifuncs: set[str] = set()
    ambiguous: set[str] = set()
    with ElfReader.open(path) as elf:
        loads = [s for s in elf.loads]
        for sh_type in (SHT_SYMTAB, SHT_DYNSYM):
            table = elf.symbols(sh_type)
            if table is None:
                continue
            syms, strtab = table
            kind = syms["info"] & 0xF
            for name_off in syms["name"][kind == STT_GNU_IFUNC].tolist():
                end = strtab.find(b"\0", name_off)
                ifuncs.add(strtab[name_off:end if end >= 0 else len(strtab)].decode(errors="replace"))
            keep = (kind == STT_FUNC) & (syms["shndx"] != 0) & (syms["value"] != 0)
            for name_off, value in zip(syms["name"][keep].tolist(), syms["value"][keep].tolist()):
                end = strtab.find(b"\0", name_off)
                name = strtab[name_off:end if end >= 0 else len(strtab)].decode(errors="replace")
                if not name:
                    continue
                off = _file_offset(loads, value)
                if off is None:
                    continue
                if name in out and out[name] != off:
                    ambiguous.add(name)  # several versions (pthread_cond_init@GLIBC_2.2.5 and @@2.3.2)
                out.setdefault(name, off)
    # a name that is also an ifunc (memcpy: an old FUNC version and the default ifunc) is left to
    # the full reader, which picks the default version and warns about ifuncs
    # versioned twins need the version table to pick the default: also left to the full reader
    for name in ifuncs | ambiguous:
        out.pop(name, None)
    return out


def _file_offset(loads: list, vaddr: int) -> Union[int, None]:
    for seg in loads:
        if seg.executable and seg.vaddr <= vaddr < seg.vaddr + seg.memsz:
            return vaddr - seg.vaddr + seg.offset
    for seg in loads:
        if seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
            return vaddr - seg.vaddr + seg.offset
    return None


@lru_cache(maxsize=16)
def _cached(path: str, key: tuple[int, int, int]) -> dict[str, int]:
    return _offsets(path)


def function_offsets(path: str) -> dict[str, int]:
    """Function name -> uprobe file offset for every defined function of ``path`` (``.symtab``
    and ``.dynsym``; ifuncs excluded). Cached while the file is unchanged.

    Example::

        function_offsets("/bin/bash")["readline"]
    """
    st = os.stat(path)
    return _cached(os.path.realpath(path), (st.st_ino, st.st_size, st.st_mtime_ns))


def matching(path: str, pattern: str, regex: bool = False) -> list[tuple[str, int]]:
    """(name, offset) of the functions of ``path`` matching a glob (or a regular expression), one
    per offset (the first name in name order), sorted by name.

    Example::

        matching("/usr/lib/x86_64-linux-gnu/libc.so.6", "str*")
    """
    match: Callable[[str], bool]
    if regex:
        rx = re.compile(pattern)
        match = lambda n: rx.search(n) is not None  # noqa: E731
    else:
        match = lambda n: fnmatch.fnmatchcase(n, pattern)  # noqa: E731
    by_offset: dict[int, str] = {}
    for name, off in sorted(function_offsets(path).items()):
        if match(name):
            by_offset.setdefault(off, name)
    return sorted(((n, o) for o, n in by_offset.items()), key=lambda t: t[0])

