"""A small, strict ELF reader: headers, program headers, sections, notes and symbol arrays.

(The one raw ELF reader of bpfkit: the symbolizers build on it; uprobe/USDT lookups and the object
loader can too.) Symbolization needs only a few things from an ELF file (PT_LOAD segments, the build-id note,
``.gnu_debuglink``, ``.gnu_debugdata`` and the raw ``.symtab``/``.dynsym`` arrays), and needs them
fast and without surprises on hostile input. Every read here is bounds-checked against the file
size, so a truncated or corrupted file raises :class:`~bpfkit.errors.ObjectFormatError` naming the
file and the structure that did not fit, never ``struct.error``, an ``IndexError`` or a huge
allocation. Symbol tables come back as numpy structured arrays (one ``np.frombuffer`` each).

Example::

    with ElfReader.open("/usr/bin/python3.11") as elf:
        elf.build_id()                      # '571d98e0...'
        [s.vaddr for s in elf.loads]        # PT_LOAD virtual addresses
        syms = elf.symbols(".dynsym")       # structured array + its string table
"""
from __future__ import annotations

import lzma
import os
import struct
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

import numpy as np

from ..errors import BpfNotFoundError, BpfPermissionError, ObjectFormatError

__all__ = ["ElfReader", "LoadSegment", "Section", "PT_LOAD", "SHT_SYMTAB", "SHT_NOTE", "SHT_NOBITS", "SHT_DYNSYM", "PF_X",
           "ET_EXEC", "ET_DYN", "EM_X86_64", "EM_AARCH64", "NT_GNU_BUILD_ID"]

PT_LOAD = 1
SHT_SYMTAB = 2
SHT_NOTE = 7
SHT_NOBITS = 8
SHT_DYNSYM = 11
PF_X = 1
ET_EXEC = 2
ET_DYN = 3
EM_X86_64 = 62
EM_AARCH64 = 183
NT_GNU_BUILD_ID = 3

# No real binary has more; bounds keep a corrupted header from making us read gigabytes.
_MAX_HEADERS = 1 << 16
_MAX_SECTION = 1 << 30
_MAX_DEBUGDATA = 64 << 20  # real MiniDebugInfo is a few MiB; more is a decompression bomb


@dataclass(frozen=True)
class LoadSegment:
    """One PT_LOAD program header.

    Example::

        [hex(s.vaddr) for s in elf.loads if s.executable]
    """

    vaddr: int
    offset: int
    filesz: int
    memsz: int
    flags: int
    align: int

    @property
    def executable(self) -> bool:
        return bool(self.flags & PF_X)


@dataclass(frozen=True)
class Section:
    """One section header (``name`` resolved through ``.shstrtab``)."""

    name: str
    type: int
    flags: int
    addr: int
    offset: int
    size: int
    link: int
    entsize: int
    info: int = 0  # SHT_REL: the section the relocations apply to


def _sym_dtype(is64: bool, little: bool) -> np.dtype:
    e = "<" if little else ">"
    if is64:
        return np.dtype([("name", e + "u4"), ("info", "u1"), ("other", "u1"), ("shndx", e + "u2"),
                         ("value", e + "u8"), ("size", e + "u8")])
    return np.dtype([("name", e + "u4"), ("value", e + "u4"), ("size", e + "u4"), ("info", "u1"),
                     ("other", "u1"), ("shndx", e + "u2")])


class ElfReader:
    """Bounds-checked access to one ELF image, from an open file or from bytes.

    ``name`` is used in error messages. Raises ObjectFormatError for anything that is not a
    well-formed ELF file (bad magic, truncated headers, tables pointing past the end).

    Example::

        elf = ElfReader(open("/bin/true", "rb"), "/bin/true")
        elf.e_type, elf.machine, len(elf.sections)
        elf.close()
    """

    def __init__(self, source: BinaryIO | bytes, name: str) -> None:
        self.name = name
        self._file: BinaryIO | None = None
        self._data: bytes | None = None
        if isinstance(source, (bytes, bytearray, memoryview)):
            self._data = bytes(source)
            self.size = len(self._data)
        else:
            self._file = source
            self.size = os.fstat(source.fileno()).st_size
        ident = self.read(0, 16, "ELF identification")
        if ident[:4] != b"\x7fELF":
            raise ObjectFormatError(f"{name} is not an ELF file (bad magic {ident[:4]!r})")
        if ident[4] not in (1, 2) or ident[5] not in (1, 2):
            raise ObjectFormatError(f"{name}: unknown ELF class {ident[4]} or data encoding {ident[5]}")
        self.is64 = ident[4] == 2
        self.little = ident[5] == 1
        e = "<" if self.little else ">"
        hdr = struct.Struct(e + ("HHIQQQIHHHHHH" if self.is64 else "HHIIIIIHHHHHH"))
        (self.e_type, self.machine, _v, self.entry, phoff, shoff, _flags, _ehsize,
         phentsize, phnum, shentsize, shnum, shstrndx) = hdr.unpack(self.read(16, hdr.size, "ELF header"))
        self._e = e
        self.sym_dtype = _sym_dtype(self.is64, self.little)
        self.loads = self._read_loads(phoff, phentsize, phnum)
        self.sections = self._read_sections(shoff, shentsize, shnum, shstrndx)

    @classmethod
    def open(cls, path: str) -> "ElfReader":
        """Open ``path`` and parse its headers; the reader owns the file (``close()`` it).

        Raises BpfNotFoundError, BpfPermissionError or ObjectFormatError.

        Example::

            with ElfReader.open("/bin/true") as elf:
                print(elf.build_id())
        """
        try:
            f = open(path, "rb")
        except FileNotFoundError:
            raise BpfNotFoundError(f"{path}: no such file") from None
        except PermissionError:
            raise BpfPermissionError(f"{path}: permission denied") from None
        except OSError as e:
            raise ObjectFormatError(f"{path}: cannot open ({e.strerror})", e.errno or 0) from None
        try:
            return cls(f, path)
        except BaseException:
            f.close()
            raise

    def close(self) -> None:
        """Close the file (a no-op for an in-memory image)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "ElfReader":
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- raw access -----------------------------------------------------------------------------

    def read(self, offset: int, size: int, what: str) -> bytes:
        """``size`` bytes at ``offset``; ObjectFormatError naming ``what`` if they are not all there."""
        if offset < 0 or size < 0 or offset + size > self.size:
            raise ObjectFormatError(
                f"{self.name}: truncated or corrupt ELF file: {what} ({size} bytes at offset {offset:#x}) "
                f"lies outside the file ({self.size} bytes)")
        if self._data is not None:
            return self._data[offset:offset + size]
        if self._file is None:
            raise ObjectFormatError(f"{self.name}: ELF reader already closed")
        try:
            data = os.pread(self._file.fileno(), size, offset)
        except OSError as e:
            raise ObjectFormatError(f"{self.name}: reading {what} failed ({e.strerror})", e.errno or 0) from None
        if len(data) != size:  # the file shrank under us
            raise ObjectFormatError(f"{self.name}: short read of {what} (file changed while reading?)")
        return data

    def _table(self, off: int, entsize: int, num: int, want: int, what: str) -> bytes:
        if num > _MAX_HEADERS or (num and entsize < want):
            raise ObjectFormatError(f"{self.name}: corrupt ELF header: {num} {what} of {entsize} bytes each")
        return self.read(off, entsize * num, what)

    def _read_loads(self, phoff: int, phentsize: int, phnum: int) -> tuple[LoadSegment, ...]:
        ph = struct.Struct(self._e + ("IIQQQQQQ" if self.is64 else "IIIIIIII"))
        raw = self._table(phoff, phentsize, phnum, ph.size, "program headers")
        out = []
        for i in range(phnum):
            f = ph.unpack_from(raw, i * phentsize)
            if self.is64:
                p_type, flags, offset, vaddr, _paddr, filesz, memsz, align = f
            else:
                p_type, offset, vaddr, _paddr, filesz, memsz, flags, align = f
            if p_type == PT_LOAD:
                out.append(LoadSegment(vaddr, offset, filesz, memsz, flags, align))
        return tuple(out)

    def _read_sections(self, shoff: int, shentsize: int, shnum: int, shstrndx: int) -> tuple[Section, ...]:
        if shoff == 0:
            return ()
        sh = struct.Struct(self._e + ("IIQQQQIIQQ" if self.is64 else "IIIIIIIIII"))
        if shnum == 0 or shstrndx == 0xFFFF:  # extended numbering: the real values live in section 0
            first = sh.unpack_from(self._table(shoff, shentsize, 1, sh.size, "section header 0"))
            shnum = shnum or first[5]
            shstrndx = first[6] if shstrndx == 0xFFFF else shstrndx
        raw = self._table(shoff, shentsize, shnum, sh.size, "section headers")
        heads = [sh.unpack_from(raw, i * shentsize) for i in range(shnum)]
        names = b""
        if 0 < shstrndx < shnum and heads[shstrndx][1] != SHT_NOBITS:
            names = self.read(heads[shstrndx][4], min(heads[shstrndx][5], _MAX_SECTION), "section names")
        out = []
        for name_off, typ, flags, addr, offset, size, link, info, _align, entsize in heads:
            end = names.find(b"\0", name_off)
            name = names[name_off:end if end >= 0 else None].decode("utf-8", "replace") if name_off < len(names) else ""
            out.append(Section(name, typ, flags, addr, offset, size, link, entsize, info))
        return tuple(out)

    # -- sections -------------------------------------------------------------------------------

    def section(self, name: str) -> Section | None:
        """The first section called ``name`` (None if absent)."""
        for s in self.sections:
            if s.name == name:
                return s
        return None

    def section_data(self, sec: Section) -> bytes:
        """The bytes of ``sec`` (empty for SHT_NOBITS, as in a separate debug file)."""
        if sec.type == SHT_NOBITS:
            return b""
        if sec.size > _MAX_SECTION:
            raise ObjectFormatError(f"{self.name}: section {sec.name} claims {sec.size} bytes")
        return self.read(sec.offset, sec.size, f"section {sec.name}")

    def has_symtab(self) -> bool:
        """True if a ``.symtab`` with contents is present (i.e. the file is not stripped)."""
        return any(s.type == SHT_SYMTAB and s.size > 0 for s in self.sections)

    def symbols(self, sh_type: int = SHT_SYMTAB) -> tuple[np.ndarray, bytes] | None:
        """``(entries, strtab)`` of the SHT_SYMTAB or SHT_DYNSYM table, or None if there is none.

        ``entries`` is a structured array with fields name, info, other, shndx, value, size.
        """
        for sec in self.sections:
            if sec.type != sh_type or sec.type == SHT_NOBITS:
                continue
            if not 0 <= sec.link < len(self.sections):
                raise ObjectFormatError(f"{self.name}: {sec.name} links to missing string table {sec.link}")
            raw = self.section_data(sec)
            n = len(raw) // self.sym_dtype.itemsize
            entries = np.frombuffer(raw, dtype=self.sym_dtype, count=n)
            return entries, self.section_data(self.sections[sec.link])
        return None

    # -- notes and debug links ----------------------------------------------------------------------

    def build_id(self) -> str | None:
        """The GNU build-id as lowercase hex, from a note section or PT_NOTE data (None if absent)."""
        for sec in self.sections:
            if sec.type == SHT_NOTE and sec.size <= 1 << 20:
                bid = self._note_build_id(self.section_data(sec))
                if bid:
                    return bid
        return None

    def _note_build_id(self, data: bytes) -> str | None:
        pos = 0
        hdr = struct.Struct(self._e + "III")
        while pos + hdr.size <= len(data):
            namesz, descsz, ntype = hdr.unpack_from(data, pos)
            pos += hdr.size
            name_end = pos + ((namesz + 3) & ~3)
            desc_end = name_end + ((descsz + 3) & ~3)
            if desc_end > len(data) + 3:
                return None
            if ntype == NT_GNU_BUILD_ID and data[pos:pos + namesz].rstrip(b"\0") == b"GNU" and descsz:
                return data[name_end:name_end + descsz].hex()
            pos = desc_end
        return None

    def debuglink(self) -> tuple[str, int] | None:
        """``(file name, crc32)`` from ``.gnu_debuglink`` (None if absent or malformed)."""
        sec = self.section(".gnu_debuglink")
        if sec is None:
            return None
        data = self.section_data(sec)
        end = data.find(b"\0")
        if end <= 0:
            return None
        crc_at = (end + 4) & ~3
        if crc_at + 4 > len(data):
            return None
        (crc,) = struct.unpack_from(self._e + "I", data, crc_at)
        return os.fsdecode(data[:end]), crc

    def gnu_debugdata(self) -> bytes | None:
        """The decompressed MiniDebugInfo ELF image from ``.gnu_debugdata`` (None if absent).

        Raises ObjectFormatError if the section is not valid xz/lzma data.
        """
        sec = self.section(".gnu_debugdata")
        if sec is None or sec.type == SHT_NOBITS:
            return None
        packed = self.section_data(sec)
        dec = lzma.LZMADecompressor()
        try:
            out = dec.decompress(packed, max_length=_MAX_DEBUGDATA)
        except lzma.LZMAError as e:
            raise ObjectFormatError(f"{self.name}: .gnu_debugdata is not valid xz data ({e})") from None
        if not dec.eof:
            raise ObjectFormatError(f"{self.name}: .gnu_debugdata is truncated or larger than "
                                    f"{_MAX_DEBUGDATA >> 20} MiB uncompressed")
        return out

    def file_bytes(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes at ``offset`` (clipped at the end of the file, never raising)."""
        size = max(0, min(size, self.size - offset))
        return self.read(offset, size, "code") if size and offset >= 0 else b""
