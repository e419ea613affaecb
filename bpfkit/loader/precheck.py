"""bpfkit's own checks of a ``.bpf.o`` before any of its bytes reach libbpf.

libbpf 1.1 trusts much of an object: one changed word in ``.BTF`` (a member pointing at type id
1806427025) or ``.BTF.ext`` makes ``bpf_object__open_mem`` read far outside its buffers and kill
the interpreter with SIGSEGV. So the libbpf backend first reads the object with bpfkit's
bounds-checked ELF reader and BTF parser; whatever they refuse is an
:class:`~bpfkit.errors.ObjectFormatError` naming the section, and libbpf only sees objects whose
tables all point inside themselves.

Example::

    check_object(open("count.bpf.o", "rb").read(), "count")   # returns None or raises ObjectFormatError
"""
from __future__ import annotations

import struct

import numpy as np

from ..binaries.elfreader import SHT_NOBITS, SHT_SYMTAB, ElfReader, Section
from ..btf import Btf, Kind
from ..errors import ObjectFormatError

__all__ = ["check_object"]

EM_BPF = 247
ET_REL = 1
SHT_STRTAB = 3
SHT_REL = 9
SHN_LORESERVE = 0xFF00
_SYM_SIZE = 24
_REL_SIZE = 16
_BTF_EXT_MAGIC = 0xEB9F
# .BTF.ext subsections: the smallest record each can have (func_info, line_info, CO-RE relocation)
_EXT_PARTS = (("func_info", 8), ("line_info", 16), ("core_relo", 16))
_MAX_RECORDS = 1 << 24
_SYM = np.dtype([("name", "<u4"), ("info", "u1"), ("other", "u1"), ("shndx", "<u2"), ("value", "<u8"),
                 ("size", "<u8")])
_REL = np.dtype([("offset", "<u8"), ("info", "<u8")])


def check_object(data: bytes, name: str) -> None:
    """Raise ObjectFormatError if ``data`` is not a BPF ELF object whose headers, symbol table,
    relocations, ``.BTF`` and ``.BTF.ext`` are all in bounds and consistent.

    Example::

        check_object(elf_bytes, "count")
    """
    elf = ElfReader(data, name)
    if not elf.is64 or elf.machine != EM_BPF or elf.e_type != ET_REL:
        raise ObjectFormatError(f"{name}: not a BPF object file (ELF class {64 if elf.is64 else 32}, machine "
                                f"{elf.machine}, type {elf.e_type}; expected a clang -target bpf .o)")
    secs = elf.sections
    for s in secs:
        if s.type != SHT_NOBITS and s.size:
            elf.section_data(s)  # in the file, not absurdly large
    symtabs = [i for i, s in enumerate(secs) if s.type == SHT_SYMTAB]
    if len(symtabs) != 1:
        raise ObjectFormatError(f"{name}: {len(symtabs)} symbol tables (a BPF object has exactly one)")
    nsyms = _check_symbols(elf, secs, symtabs[0])
    for s in secs:
        if s.type == SHT_REL:
            _check_relocations(elf, secs, s, symtabs[0], nsyms)
    btf_sec = elf.section(".BTF")
    btf = None
    if btf_sec is not None:
        raw = elf.section_data(btf_sec)
        try:
            btf = Btf.parse(raw)
        except ObjectFormatError as e:
            raise ObjectFormatError(f"{name}: section .BTF: {e}") from None
    ext = elf.section(".BTF.ext")
    if ext is not None:
        if btf is None:
            raise ObjectFormatError(f"{name}: .BTF.ext without .BTF")
        _check_btf_ext(name, elf.section_data(ext), btf)


def _check_symbols(elf: ElfReader, secs: tuple[Section, ...], idx: int) -> int:
    sec = secs[idx]
    if sec.size % _SYM_SIZE:
        raise ObjectFormatError(f"{elf.name}: .symtab size {sec.size} is not a multiple of {_SYM_SIZE}")
    if not 0 < sec.link < len(secs) or secs[sec.link].type != SHT_STRTAB:
        raise ObjectFormatError(f"{elf.name}: .symtab's string table (section {sec.link}) is not a string table")
    strsize = secs[sec.link].size
    n = sec.size // _SYM_SIZE
    syms = np.frombuffer(elf.section_data(sec), _SYM)
    bad = (syms["name"] >= max(strsize, 1)) | ((syms["shndx"] >= len(secs)) & (syms["shndx"] < SHN_LORESERVE))
    if bad.any():
        i = int(np.argmax(bad))
        raise ObjectFormatError(f"{elf.name}: symbol {i} points outside the object (name offset "
                                f"{syms['name'][i]} of {strsize}, section {syms['shndx'][i]} of {len(secs)})")
    return n


def _check_relocations(elf: ElfReader, secs: tuple[Section, ...], sec: Section, symtab: int, nsyms: int) -> None:
    if sec.link != symtab or not 0 < sec.info < len(secs) or sec.size % _REL_SIZE:
        raise ObjectFormatError(f"{elf.name}: relocation section {sec.name} is inconsistent (symbols in section "
                                f"{sec.link}, applies to section {sec.info}, {sec.size} bytes)")
    target = secs[sec.info]
    rels = np.frombuffer(elf.section_data(sec), _REL)
    bad = ((rels["info"] >> np.uint64(32)) >= nsyms) | (rels["offset"] >= max(target.size, 1))
    if bad.any():
        i = int(np.argmax(bad))
        raise ObjectFormatError(f"{elf.name}: relocation {i} of {sec.name} points outside the object "
                                f"(symbol {int(rels['info'][i]) >> 32} of {nsyms}, offset {rels['offset'][i]} "
                                f"of {target.size})")


def _check_btf_ext(name: str, raw: bytes, btf: Btf) -> None:
    def bad(what: str) -> ObjectFormatError:
        return ObjectFormatError(f"{name}: section .BTF.ext: {what}")

    if len(raw) < 24:
        raise bad(f"{len(raw)} bytes, shorter than its header")
    magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", raw)
    if magic != _BTF_EXT_MAGIC or version != 1:
        raise bad(f"bad magic {magic:#x} or version {version}")
    if not 24 <= hdr_len <= len(raw):
        raise bad(f"header length {hdr_len} of {len(raw)} bytes")
    btf_raw = btf.raw
    str_len = struct.unpack_from("<I", btf_raw, 20)[0] if len(btf_raw) >= 24 else 0
    ntypes = len(btf.types)
    kinds = [t.kind for t in btf.types]
    for k, (part, min_rec) in enumerate(_EXT_PARTS):
        if 8 + 8 * k + 8 > hdr_len:
            break  # an older header without this part
        off, length = struct.unpack_from("<II", raw, 8 + 8 * k)
        if not length:
            continue
        start = hdr_len + off
        if start + length > len(raw) or length < 4:
            raise bad(f"{part} ({length} bytes at {off}) lies outside the section")
        rec_size = struct.unpack_from("<I", raw, start)[0]
        if rec_size < min_rec or rec_size % 4 or rec_size > 1024:
            raise bad(f"{part} record size {rec_size}")
        pos, end = start + 4, start + length
        while pos < end:
            if pos + 8 > end:
                raise bad(f"{part}: truncated section header at {pos - hdr_len}")
            sec_name, num = struct.unpack_from("<II", raw, pos)
            pos += 8
            if sec_name >= str_len or not 0 < num <= _MAX_RECORDS or pos + num * rec_size > end:
                raise bad(f"{part}: section entry at {pos - 8 - hdr_len} (name offset {sec_name} of {str_len}, "
                          f"{num} records of {rec_size} bytes) lies outside")
            recs = np.frombuffer(raw, "<u4", num * rec_size // 4, pos).reshape(num, rec_size // 4)
            if part == "func_info":
                tids = recs[:, 1]
                if (tids == 0).any() or (tids >= ntypes).any() or not all(kinds[t] == Kind.FUNC for t in tids):
                    raise bad(f"{part} in section {sec_name}: a record names a type that is not a FUNC")
            elif part == "line_info":
                if (recs[:, 1:3] >= str_len).any():
                    raise bad(f"{part} in section {sec_name}: a file or line string lies past the {str_len} "
                              "bytes of strings")
            elif (recs[:, 1] >= ntypes).any() or (recs[:, 2] >= str_len).any():
                raise bad(f"{part} in section {sec_name}: a record names a type past {ntypes - 1} or an "
                          f"access string past {str_len}")
            pos += num * rec_size
