"""The ELF relocatable objects clang writes for ``-target bpf``: sections, symbols, relocations.

A small strict reader (no pyelftools: it is slow to import and trusting): every header, offset and
index is checked against the file, so a truncated or corrupt object is an
:class:`~bpfkit.errors.ObjectFormatError` naming what is wrong, never an IndexError or a crash.

Example::

    elf = ElfObject.parse(open("count.bpf.o", "rb").read())
    [s.name for s in elf.sections if s.is_exec]      # ['.text', 'tracepoint/syscalls/sys_enter_getpid']
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Optional

from ...errors import ObjectFormatError

__all__ = ["ElfObject", "Section", "Symbol", "Rel", "SHT_PROGBITS", "SHT_SYMTAB", "SHT_NOBITS", "SHT_REL",
           "SHT_STRTAB", "SHF_EXECINSTR", "STT_NOTYPE", "STT_OBJECT", "STT_FUNC", "STT_SECTION", "STB_LOCAL",
           "STB_GLOBAL", "STB_WEAK", "STV_HIDDEN", "STV_INTERNAL", "SHN_UNDEF", "SHN_LORESERVE"]

SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS, SHT_REL = 1, 2, 3, 8, 9
SHT_LLVM_ADDRSIG = 0x6FFF4C03
SHF_EXECINSTR = 0x4
STT_NOTYPE, STT_OBJECT, STT_FUNC, STT_SECTION = 0, 1, 2, 3
STB_LOCAL, STB_GLOBAL, STB_WEAK = 0, 1, 2
STV_INTERNAL, STV_HIDDEN = 1, 2
SHN_UNDEF, SHN_LORESERVE = 0, 0xFF00
ET_REL, EM_NONE, EM_BPF = 1, 0, 247

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
_REL = struct.Struct("<QQ")


@dataclass(slots=True)
class Section:
    """One section header; ``data`` is its bytes (empty for SHT_NOBITS), cut from the file on first
    use (most of an object is DWARF nobody reads)."""

    index: int
    name: str
    type: int
    flags: int
    offset: int
    size: int
    link: int
    info: int
    entsize: int
    file: bytes = b""
    _data: Optional[bytes] = None

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = b"" if self.type == SHT_NOBITS else self.file[self.offset: self.offset + self.size]
        return self._data

    @property
    def is_exec(self) -> bool:
        return bool(self.flags & SHF_EXECINSTR)


@dataclass(slots=True)
class Symbol:
    """One symbol: ``bind``/``type``/``visibility`` decoded from st_info/st_other."""

    index: int
    name: str
    value: int
    size: int
    bind: int
    type: int
    visibility: int
    shndx: int


@dataclass(slots=True)
class Rel:
    """One SHT_REL entry: byte ``offset`` in the target section, symbol index, relocation type."""

    offset: int
    sym: int
    type: int


@dataclass
class ElfObject:
    """A parsed BPF object file."""

    sections: list[Section]
    symbols: list[Symbol]
    symtab_index: int
    by_name: dict[str, Section] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes, what: str = "object") -> "ElfObject":
        """Parse ``data``; ObjectFormatError (naming ``what``) if it is not a sound BPF ELF object."""
        try:
            return _parse(data, what)
        except struct.error as e:
            raise ObjectFormatError(f"{what}: truncated ELF data ({e})") from None

    def section(self, index: int) -> Section:
        if not 0 <= index < len(self.sections):
            raise ObjectFormatError(f"section index {index} is out of range (0..{len(self.sections) - 1})")
        return self.sections[index]

    def find(self, name: str) -> Optional[Section]:
        """The first section called ``name``."""
        return self.by_name.get(name)

    def rels(self, sec: Section) -> list[Rel]:
        """The entries of relocation section ``sec``."""
        if sec.entsize != _REL.size or sec.size % _REL.size:
            raise ObjectFormatError(f"relocation section {sec.name} has entries of {sec.entsize} bytes, not 16")
        out = []
        for off, info in _REL.iter_unpack(sec.data):
            out.append(Rel(off, info >> 32, info & 0xFFFFFFFF))
        return out


def _cstr(table: bytes, off: int, what: str, item: str, i: int) -> str:
    """The NUL-terminated name at ``off`` of a table that is not ASCII, or the error for a bad
    offset or name, naming ``what``'s ``item`` #``i``."""
    end = table.find(b"\0", off) if 0 <= off < len(table) else -2
    if end >= 0:
        try:
            return table[off:end].decode()
        except UnicodeDecodeError:
            raise ObjectFormatError(f"{what}: {item} #{i}: name at offset {off} is not UTF-8") from None
    if end == -2:
        raise ObjectFormatError(f"{what}: {item} #{i}: string offset {off} is outside its string table")
    raise ObjectFormatError(f"{what}: {item} #{i}: string at offset {off} is not NUL-terminated")


def _ascii_text(table: bytes) -> str:
    """The string table as text when it is ASCII (offsets into it are then offsets into the
    text), else '' (its names are read one by one with :func:`_cstr`)."""
    return table.decode("ascii") if table.isascii() else ""


def _outside(what: str, i: int, off: int, size: int, n_data: int) -> ObjectFormatError:
    return ObjectFormatError(f"{what}: section #{i} ({off}+{size}) lies outside the file ({n_data} bytes)")


def _parse(data: bytes, what: str) -> ElfObject:
    if data[:4] != b"\x7fELF":
        raise ObjectFormatError(f"{what} is not an ELF file (expected a clang -target bpf object)")
    (ident, e_type, machine, _ver, _entry, _phoff, shoff, _flags, _ehsize, _phentsize, _phnum, shentsize, shnum,
     shstrndx) = _EHDR.unpack_from(data, 0)
    if ident[4] != 2:
        raise ObjectFormatError(f"{what} is not a 64-bit ELF object")
    if ident[5] != 1:
        raise ObjectFormatError(f"{what} is a big-endian ELF object; this machine is little-endian "
                                "(compile with -target bpfel or -target bpf on x86/arm64)")
    if e_type != ET_REL or machine not in (EM_NONE, EM_BPF):
        raise ObjectFormatError(f"{what} is not an eBPF object file (ELF type {e_type}, machine {machine}; "
                                "expected a relocatable clang -target bpf object)")
    if shentsize != _SHDR.size:
        raise ObjectFormatError(f"{what}: ELF section headers are {shentsize} bytes, not {_SHDR.size}")
    if shnum == 0 or shoff + shnum * shentsize > len(data):
        raise ObjectFormatError(f"{what}: ELF section header table lies outside the file")
    if shstrndx >= shnum:
        raise ObjectFormatError(f"{what}: section-name table index {shstrndx} is out of range")
    heads = list(_SHDR.iter_unpack(data[shoff: shoff + shnum * shentsize]))
    n_data = len(data)

    _, typ, _, _, str_off, str_size = heads[shstrndx][:6]
    if shstrndx and typ != SHT_NOBITS and str_off + str_size > n_data:
        raise _outside(what, shstrndx, str_off, str_size, n_data)  # (before any name is read from it)
    shstr = data[str_off: str_off + str_size]
    n_shstr = len(shstr)
    # an ASCII table (clang's always is) decodes once, and each name is a slice of that text
    text = _ascii_text(shstr)
    _n, typ, flags, _addr, off, size, link, info, _align, entsize = heads[0]
    sections = [Section(0, "", typ, flags, off, size, link, info, entsize, b"")]
    for i in range(1, shnum):
        name_off, typ, flags, _addr, off, size, link, info, _align, entsize = heads[i]
        if typ != SHT_NOBITS and off + size > n_data:
            raise _outside(what, i, off, size, n_data)
        # the common case inline (a NUL-ended name inside the table); _cstr names what is wrong
        end = text.find("\0", name_off) if text and name_off < n_shstr else -1
        name = text[name_off:end] if end >= 0 else _cstr(shstr, name_off, what, "section name", i)
        sections.append(Section(i, name, typ, flags, off, size, link, info, entsize, data))
    symtabs = [s for s in sections if s.type == SHT_SYMTAB]
    if not symtabs:
        raise ObjectFormatError(f"{what} has no symbol table (a stripped object?); BPF objects need one")
    if len(symtabs) > 1:
        raise ObjectFormatError(f"{what} has {len(symtabs)} symbol tables")
    symtab = symtabs[0]
    if symtab.entsize != _SYM.size or symtab.size % _SYM.size:
        raise ObjectFormatError(f"{what}: symbol entries are {symtab.entsize} bytes, not {_SYM.size}")
    if not 0 < symtab.link < len(sections) or sections[symtab.link].type != SHT_STRTAB:
        raise ObjectFormatError(f"{what}: the symbol table's string table (section #{symtab.link}) is missing")
    strtab = sections[symtab.link].data
    if symtab.link != shstrndx:  # (clang writes one table for both)
        text = _ascii_text(strtab)
    symbols = []
    # most symbols are unnamed (offset 0) or share a section's name
    names: dict[int, str] = {0: ""} if strtab[:1] == b"\0" else {}
    n_strtab = len(strtab)
    for i, (name_off, st_info, st_other, shndx, value, size) in enumerate(_SYM.iter_unpack(symtab.data)):
        known = names.get(name_off)
        if known is not None:
            name = known
        else:
            # the common case inline, as for the sections; _cstr names what is wrong
            end = text.find("\0", name_off) if text and name_off < n_strtab else -1
            name = text[name_off:end] if end >= 0 else _cstr(strtab, name_off, what, "symbol", i)
            names[name_off] = name
        symbols.append(Symbol(i, name, value, size, st_info >> 4, st_info & 0xF, st_other & 0x3, shndx))
    # the first section of each name
    return ElfObject(sections, symbols, symtab.index, {s.name: s for s in reversed(sections) if s.index})
