"""USDT (SystemTap SDT) probes in binaries: the ``.note.stapsdt`` notes and their argument operands.

A USDT probe is a ``nop`` plus an ELF note saying where it is and where each
argument lives (``-4@%edi``, ``8@-16(%rbp)``, ``-8@$42``). Attaching one means
a uprobe at the note's file offset (plus, for semaphore-guarded probes, a
``ref_ctr_offset``), and telling the BPF side how to fetch the arguments. The
BPF side's encoding of the operands is :mod:`bpfkit.probes.usdt_spec`. Argument syntax is x86-64 only.

Example::

    from bpfkit.binaries import read_usdt_notes

    [note] = read_usdt_notes("/usr/bin/prog", provider="myapp", name="tick")
    note.arg_specs      # [UsdtArg(size=4, signed=True, kind=REG, register='rdi'), ...]
"""
from __future__ import annotations

import enum
import functools
import os
import re
import struct
from dataclasses import dataclass
from typing import Sequence


from ..errors import BpfError, ObjectFormatError
from .elf import Segment, check_sections, elf_file_key, load_segments, section_data

__all__ = ["PT_REGS_OFFSETS", "UsdtArg", "UsdtArgKind", "UsdtNote", "parse_usdt_args", "read_usdt_notes"]


class UsdtArgKind(enum.IntEnum):
    """Where an argument lives; values equal ``enum __bpf_usdt_arg_type``.

    Example::

        [a.kind for a in read_usdt_notes("./app", "myapp", "tick")[0].arg_specs]   # [REG, DEREF]
    """

    CONST = 0
    REG = 1
    REG_DEREF = 2


@dataclass(frozen=True)
class UsdtArg:
    """One parsed USDT argument.

    ``size`` is in bytes (1, 2, 4 or 8), ``register`` the canonical 64-bit
    register name (``"rdi"`` for ``%edi``/``%dil``...). CONST args carry
    ``value``; REG_DEREF args read ``size`` bytes at ``register + offset``.
    ``symbol`` is set for RIP-relative ``sym(%rip)`` operands, which need the
    symbol's run-time address and cannot be encoded for usdt.bpf.h.

    Example::

        parse_usdt_args("-4@-20(%rbp)")[0]
        # UsdtArg(size=4, signed=True, kind=REG_DEREF, register='rbp', offset=-20, ...)
    """

    size: int
    signed: bool
    kind: UsdtArgKind
    register: str | None = None
    offset: int = 0
    value: int = 0
    symbol: str | None = None
    text: str = ""


@dataclass(frozen=True)
class UsdtNote:
    """One USDT probe site from ``.note.stapsdt``.

    ``address`` is the probe's virtual address after the ``.stapsdt.base``
    adjustment and ``offset`` its file offset (uprobe config1). ``semaphore``
    is the semaphore's virtual address and ``semaphore_offset`` its file
    offset (the kernel's ``ref_ctr_offset``), both 0 without a semaphore.
    ``base`` is the note's recorded ``.stapsdt.base`` address, ``args`` the
    raw argument string.

    Example::

        for n in read_usdt_notes("/usr/lib/libfoo.so"):
            print(f"{n.provider}:{n.name} @ {n.offset:#x} {n.args}")
    """

    path: str
    provider: str
    name: str
    address: int
    offset: int
    base: int
    semaphore: int
    semaphore_offset: int
    args: str

    @property
    def arg_specs(self) -> list[UsdtArg]:
        """``parse_usdt_args(self.args)``."""
        return parse_usdt_args(self.args)


# ---------------------------------------------------------------------------
# Notes

_NT_STAPSDT = 3
_STAPSDT_OWNER = b"stapsdt"


def _to_offset(segments: Sequence[Segment], address: int, what: str, path: str, executable: bool) -> int:
    for seg in segments:
        if seg.contains(address) and (seg.executable or not executable):
            return address - seg.vaddr + seg.offset
    kind = "executable " if executable else ""
    raise ObjectFormatError(f"{path}: {what} at {address:#x} is outside every {kind}PT_LOAD segment")


@functools.lru_cache(maxsize=32)
def _read_notes(key: tuple[str, int, int, int, int]) -> tuple[UsdtNote, ...]:
    from elftools.common.exceptions import ELFError  # imported on first use: see elf.py
    from elftools.elf.elffile import ELFFile

    path = key[0]
    segments = load_segments(path)
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            check_sections(elf)
            notes_sec = elf.get_section_by_name(".note.stapsdt")
            if notes_sec is None:
                return ()
            data = section_data(notes_sec, elf)
            base_sec = elf.get_section_by_name(".stapsdt.base")
            actual_base = base_sec["sh_addr"] if base_sec is not None else None
            endian = "<" if elf.little_endian else ">"
            addr_fmt = endian + ("QQQ" if elf.elfclass == 64 else "III")
    except ELFError as e:
        raise ObjectFormatError(f"{path} is not a valid ELF file ({e})") from e
    except (BpfError, FileNotFoundError):
        raise
    except Exception as e:  # noqa: BLE001 - pyelftools raises whatever a malformed file makes it hit
        raise ObjectFormatError(f"{path}: malformed ELF file ({type(e).__name__}: {e})") from e

    addr_size = struct.calcsize(addr_fmt)
    notes: list[UsdtNote] = []
    pos = 0
    while pos + 12 <= len(data):
        namesz, descsz, ntype = struct.unpack_from(endian + "III", data, pos)
        owner = data[pos + 12 : pos + 12 + namesz].rstrip(b"\0")
        desc_pos = pos + 12 + ((namesz + 3) & ~3)
        desc = data[desc_pos : desc_pos + descsz]
        pos = desc_pos + ((descsz + 3) & ~3)
        if owner != _STAPSDT_OWNER or ntype != _NT_STAPSDT:
            continue  # older note versions carry no argument sizes; libbpf skips them too
        if len(desc) < addr_size + 3:
            raise ObjectFormatError(f"{path}: truncated .note.stapsdt entry at {desc_pos:#x}")
        pc, base, sema = struct.unpack_from(addr_fmt, desc, 0)
        strings = desc[addr_size:].split(b"\0")
        if len(strings) < 3:
            raise ObjectFormatError(f"{path}: malformed .note.stapsdt entry at {desc_pos:#x}")
        provider, name, args = (s.decode("utf-8", "replace") for s in strings[:3])
        # The note stores link-time addresses; if the binary was prelinked or
        # otherwise moved, .stapsdt.base's real address tells by how much.
        if actual_base is not None:
            pc += actual_base - base
            if sema:
                sema += actual_base - base
        notes.append(
            UsdtNote(
                path=path,
                provider=provider,
                name=name,
                address=pc,
                offset=_to_offset(segments, pc, f"USDT probe {provider}:{name}", path, executable=True),
                base=base,
                semaphore=sema,
                semaphore_offset=(
                    _to_offset(segments, sema, f"semaphore of {provider}:{name}", path, executable=False)
                    if sema
                    else 0
                ),
                args=args,
            )
        )
    return tuple(notes)


def read_usdt_notes(
    path: str | os.PathLike[str], provider: str | None = None, name: str | None = None
) -> list[UsdtNote]:
    """USDT probe sites of an executable or shared library, in note order.

    ``path`` may be anything ``resolve_library`` accepts; ``provider`` and
    ``name`` filter the result. A binary without ``.note.stapsdt`` gives [].
    Results are cached per file identity.

    Example::

        read_usdt_notes("c", provider="libc", name="setjmp")
    """
    notes = _read_notes(elf_file_key(path))
    return [n for n in notes if (provider is None or n.provider == provider) and (name is None or n.name == name)]


# ---------------------------------------------------------------------------
# Argument specs (x86-64 AT&T operand syntax)

# Offsets in the kernel's x86-64 struct pt_regs, which uprobe programs get as
# context. This is the UAPI <asm/ptrace.h> order (r15 first); the kernel's own
# struct has the same layout, checked against vmlinux BTF in the tests.
PT_REGS_OFFSETS: dict[str, int] = {
    "r15": 0, "r14": 8, "r13": 16, "r12": 24, "rbp": 32, "rbx": 40, "r11": 48, "r10": 56,
    "r9": 64, "r8": 72, "rax": 80, "rcx": 88, "rdx": 96, "rsi": 104, "rdi": 112,
    "rip": 128, "rsp": 152,
}  # fmt: skip

_REG_ALIASES: dict[str, str] = {"eip": "rip"}
for _r in ("ax", "bx", "cx", "dx"):
    _REG_ALIASES.update({f"r{_r}": f"r{_r}", f"e{_r}": f"r{_r}", _r: f"r{_r}", f"{_r[0]}l": f"r{_r}"})
for _r in ("si", "di", "bp", "sp"):
    _REG_ALIASES.update({f"r{_r}": f"r{_r}", f"e{_r}": f"r{_r}", _r: f"r{_r}", f"{_r}l": f"r{_r}"})
for _n in range(8, 16):
    _REG_ALIASES.update({f"r{_n}": f"r{_n}", f"r{_n}d": f"r{_n}", f"r{_n}w": f"r{_n}", f"r{_n}b": f"r{_n}"})
_REG_ALIASES["rip"] = "rip"

_NUM = r"[-+]?(?:0[xX][0-9a-fA-F]{1,16}|\d{1,20})"
_ARG = re.compile(r"^(?P<size>[-+]?\d{1,3})@(?P<loc>\S+)$")


def _num(text: str) -> int:
    """A decimal or 0x number of an operand (``int(x, 0)`` would refuse decimals with a leading 0)."""
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    return sign * (int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits, 10))
_CONST = re.compile(rf"^\$(?P<val>{_NUM})$")
_REG = re.compile(r"^%(?P<reg>[a-z0-9]+)$")
_DEREF = re.compile(rf"^(?P<disp>{_NUM})?\(%(?P<reg>[a-z0-9]+)\)$")
_RIPSYM = re.compile(rf"^(?P<sym>[A-Za-z_.$][\w.$@]*)(?P<disp>{_NUM})?\(%rip\)$")


def _register(name: str, text: str) -> str:
    reg = _REG_ALIASES.get(name)
    if reg is None:
        if name in ("ah", "bh", "ch", "dh"):
            raise ObjectFormatError(
                f"USDT argument {text!r}: high-byte register %{name} is not supported by libbpf's usdt.bpf.h"
            )
        raise ObjectFormatError(f"USDT argument {text!r}: unknown or unsupported x86-64 register %{name}")
    return reg


def _parse_one(text: str) -> UsdtArg:
    m = _ARG.match(text)
    if not m:
        raise ObjectFormatError(f"USDT argument {text!r}: expected SIZE@LOCATION, e.g. -4@%edi")
    size_signed = int(m.group("size"))
    size = abs(size_signed)
    if size not in (1, 2, 4, 8):
        raise ObjectFormatError(f"USDT argument {text!r}: size {size} is not 1, 2, 4 or 8 bytes")
    signed = size_signed < 0
    loc = m.group("loc")
    if c := _CONST.match(loc):
        return UsdtArg(size, signed, UsdtArgKind.CONST, value=_num(c.group("val")), text=text)
    if r := _REG.match(loc):
        return UsdtArg(size, signed, UsdtArgKind.REG, register=_register(r.group("reg"), text), text=text)
    if d := _DEREF.match(loc):
        disp = _num(d.group("disp")) if d.group("disp") else 0
        reg = _register(d.group("reg"), text)
        return UsdtArg(size, signed, UsdtArgKind.REG_DEREF, register=reg, offset=disp, text=text)
    if s := _RIPSYM.match(loc):
        disp = _num(s.group("disp")) if s.group("disp") else 0
        return UsdtArg(
            size, signed, UsdtArgKind.REG_DEREF, register="rip", offset=disp, symbol=s.group("sym"), text=text
        )
    if "," in loc:
        raise ObjectFormatError(
            f"USDT argument {text!r}: indexed addressing (base,index,scale) is not supported by libbpf's usdt.bpf.h"
        )
    raise ObjectFormatError(f"USDT argument {text!r}: unsupported operand {loc!r}")


def parse_usdt_args(argstr: str) -> list[UsdtArg]:
    """Parse a note's x86-64 argument string into UsdtArgs.

    Raises ObjectFormatError naming the argument it cannot parse.

    Example::

        [a, b] = parse_usdt_args("-4@%edi 8@$5")
        assert (a.register, b.value) == ("rdi", 5)
    """
    return [_parse_one(tok) for tok in argstr.split()]
