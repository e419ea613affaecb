"""``.BTF.ext``: per-instruction BTF facts clang records for each code section — function info,
line info (so verifier logs quote source lines) and CO-RE relocations.

Parsed strictly: a record size below the minimum, a section past the end or a record count that
does not fit is an :class:`~bpfkit.errors.ObjectFormatError` (libbpf silently drops the whole
section, and with it every CO-RE relocation; loading such an object would read the wrong offsets).

Example::

    ext = BtfExt.parse(elf.find(".BTF.ext").data, btf.str_at)
    ext.core_relos["kprobe/do_unlinkat"][0]     # CoreRelo(insn_off=16, type_id=42, access='0:1', kind=0)
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Callable

from ...errors import ObjectFormatError

__all__ = ["BtfExt", "CoreRelo", "FUNC_INFO_MIN", "LINE_INFO_MIN", "CORE_RELO_MIN"]

FUNC_INFO_MIN, LINE_INFO_MIN, CORE_RELO_MIN = 8, 16, 16


@dataclass(frozen=True)
class CoreRelo:
    """One ``struct bpf_core_relo``: instruction byte offset in its section, local root type,
    access string (``0:1:2``) and relocation kind (BPF_CORE_*)."""

    insn_off: int
    type_id: int
    access: str
    kind: int


@dataclass
class BtfExt:
    """Records per ELF section name. ``func_info``/``line_info`` keep each section's records as
    raw bytes (``rec_size`` each, first u32 = instruction byte offset), in the object's order, since
    the kernel takes them as they are once that offset counts instructions."""

    func_rec_size: int = 0
    line_rec_size: int = 0
    func_info: dict[str, bytes] = field(default_factory=dict)
    line_info: dict[str, bytes] = field(default_factory=dict)
    core_relos: dict[str, list[CoreRelo]] = field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes, str_at: Callable[[int], str], str_len: int) -> "BtfExt":
        """Parse ``.BTF.ext``; ``str_at``/``str_len`` read the object's BTF strings (section names
        and access strings live there)."""
        try:
            return _parse(data, str_at, str_len)
        except struct.error as e:
            raise ObjectFormatError(f".BTF.ext is truncated ({e})") from None


def _segment(data: bytes, hdr_len: int, off: int, length: int, min_rec: int, what: str, str_at: Callable[[int], str],
             str_len: int) -> tuple[int, dict[str, bytes]]:
    out: dict[str, bytes] = {}
    if length == 0:
        return 0, out
    start = hdr_len + off
    if off % 4 or start + length > len(data) or length < 4:
        raise ObjectFormatError(f".BTF.ext {what} ({off}+{length}) lies outside the section or is misaligned")
    (rec_size,) = struct.unpack_from("<I", data, start)
    if rec_size < min_rec or rec_size % 4:
        raise ObjectFormatError(f".BTF.ext {what} has invalid record size {rec_size} (minimum {min_rec})")
    pos, end = start + 4, start + length
    if pos == end:
        raise ObjectFormatError(f".BTF.ext {what} has no records")
    while pos < end:
        if pos + 8 > end:
            raise ObjectFormatError(f".BTF.ext {what}: section header cut off")
        name_off, num = struct.unpack_from("<II", data, pos)
        pos += 8
        if num == 0 or pos + num * rec_size > end:
            raise ObjectFormatError(f".BTF.ext {what}: {num} records of {rec_size} bytes do not fit")
        if name_off >= str_len:
            raise ObjectFormatError(f".BTF.ext {what}: section name offset {name_off} is outside the BTF strings")
        name = str_at(name_off)
        recs = data[pos: pos + num * rec_size]
        out[name] = out[name] + recs if name in out else recs
        pos += num * rec_size
    return rec_size, out


def _parse(data: bytes, str_at: Callable[[int], str], str_len: int) -> BtfExt:
    if len(data) < 24:
        raise ObjectFormatError(f".BTF.ext of {len(data)} bytes is shorter than its header")
    magic, version, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    if magic != 0xEB9F or version != 1:
        raise ObjectFormatError(f".BTF.ext has bad magic {magic:#x} or version {version}")
    if hdr_len < 24 or hdr_len > len(data):
        raise ObjectFormatError(f".BTF.ext header length {hdr_len} is invalid")
    f_off, f_len, l_off, l_len = struct.unpack_from("<IIII", data, 8)
    ext = BtfExt()
    ext.func_rec_size, ext.func_info = _segment(data, hdr_len, f_off, f_len, FUNC_INFO_MIN, "func_info", str_at,
                                                str_len)
    ext.line_rec_size, ext.line_info = _segment(data, hdr_len, l_off, l_len, LINE_INFO_MIN, "line_info", str_at,
                                                str_len)
    if hdr_len >= 32:
        c_off, c_len = struct.unpack_from("<II", data, 24)
        size, raw = _segment(data, hdr_len, c_off, c_len, CORE_RELO_MIN, "core_relo", str_at, str_len)
        for sec, recs in raw.items():
            relos = []
            for at in range(0, len(recs), size):
                insn_off, type_id, access_off, kind = struct.unpack_from("<IIII", recs, at)
                if access_off >= str_len:
                    raise ObjectFormatError(f".BTF.ext CO-RE relocation in {sec}: access string offset "
                                            f"{access_off} is outside the BTF strings")
                relos.append(CoreRelo(insn_off, type_id, str_at(access_off), kind))
            ext.core_relos[sec] = relos
    return ext
