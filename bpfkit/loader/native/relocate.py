"""From an object's code to the instructions the kernel gets, per entry program, in libbpf's order:
CO-RE relocations on every function, then bpf-to-bpf calls (each used ``.text`` function appended
once, depth first, in order of first call), its func/line info moved along, then map, global-data
and extern references.

The appending order and every rewritten field follow libbpf, so the kernel's translated
instructions are the same whichever backend loaded the object (the differential tests check it).

Example::

    codes = working_copies(model)
    core_log = apply_core(model, codes, ctx)
    linked = link(model, prog, codes, ctx)       # Linked.insns, func_info, line_info
    relocate_data(model, linked, map_fds, externs)
"""
from __future__ import annotations

import re
import struct
import sys
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import Callable, Optional

from ... import _sys as sc
from ...btf.index import KIND_ENUM, KIND_ENUM64, BtfIndex
from ...errors import LoadError, ObjectFormatError
from . import core
from .model import (RELO_CALL, RELO_DATA, RELO_EXTERN_FUNC, RELO_EXTERN_VAR, RELO_LD64, RELO_SUBPROG_ADDR,
                    EXT_KCFG, Model, Prog, Reloc)

__all__ = ["Poisoned", "Linked", "CoreContext", "working_copies", "apply_core", "link", "relocate_data",
           "ExternValue"]

_INSN = struct.Struct("<BBhi")
_LD_IMM64 = sc.BPF_LD | sc.BPF_IMM | sc.BPF_DW
_CALL = sc.BPF_JMP | sc.BPF_CALL
# an instruction's opcode and registers byte: a bpf-to-bpf call (src BPF_PSEUDO_CALL, dst 0), or
# ld_imm64 of a function's address (src BPF_PSEUDO_FUNC, any dst)
_TO_FUNCTION = re.compile(re.escape(bytes([_CALL, sc.BPF_PSEUDO_CALL << 4])) + b"|" + re.escape(bytes([_LD_IMM64])) +
                          b"[" + re.escape(bytes([sc.BPF_PSEUDO_FUNC << 4])) + b"-" +
                          re.escape(bytes([(sc.BPF_PSEUDO_FUNC << 4) | 0xF])) + b"]")
_M64 = (1 << 64) - 1
_BIG_ENDIAN = sys.byteorder == "big"  # (.BTF.ext is little-endian; array() is in the host's order)


@dataclass
class Poisoned:
    """A CO-RE relocation that found nothing and poisoned instruction ``insn`` (of its function)."""

    prog: str
    insn: int
    section: str
    number: int
    relo: core.CoreRelo
    result: core.Result


@dataclass
class Linked:
    """One entry program ready for BPF_PROG_LOAD."""

    insns: bytearray
    relos: list[Reloc]
    func_info: bytes = b""       # the records as the kernel takes them
    line_info: bytes = b""
    n_func_info: int = 0
    n_line_info: int = 0
    poisoned: list[tuple[int, Poisoned]] = field(default_factory=list)  # (final insn index, what)
    layout: list[tuple[int, str]] = field(default_factory=list)        # (first insn, function) in order


@dataclass
class ExternValue:
    """How an extern resolved: a kconfig value lives in the .kconfig map; a ksym is a kernel BTF id
    (in vmlinux or a module's BTF, ``btf_fd`` then > 0 and ``fd_index`` its fd_array slot) or an
    address from kallsyms."""

    is_set: bool = False
    btf_id: int = 0
    btf_fd: int = 0
    fd_index: int = 0
    addr: int = 0


@dataclass
class CoreContext:
    """What CO-RE needs: the object's BTF as an index and a candidate finder over target BTF."""

    local: BtfIndex
    find_cands: Callable[[str, tuple[int, ...]], core.Candidates]
    cache: dict[int, core.Candidates] = field(default_factory=dict)


def _get(code: bytearray, i: int) -> tuple[int, int, int, int]:
    return _INSN.unpack_from(code, i * 8)


def _put(code: bytearray, i: int, op: int, regs: int, off: int, imm: int) -> None:
    _INSN.pack_into(code, i * 8, op, regs, off, ((imm & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000)


def working_copies(model: Model) -> dict[int, bytearray]:
    """A mutable copy of every function's code, keyed by its index in ``model.progs``; ld_imm64
    instructions loading a function's address get src_reg BPF_PSEUDO_FUNC."""
    codes = {}
    for i, p in enumerate(model.progs):
        code = bytearray(p.insns)
        for r in p.relos:
            if r.kind == RELO_SUBPROG_ADDR:
                op, regs, off, imm = _get(code, r.insn)
                _put(code, r.insn, op, (regs & 0x0F) | (sc.BPF_PSEUDO_FUNC << 4), off, imm)
        codes[i] = code
    return codes


# -- CO-RE ----------------------------------------------------------------------------------

def apply_core(model: Model, codes: dict[int, bytearray], ctx: CoreContext,
               autoload: Callable[[Prog], bool]) -> dict[int, list[Poisoned]]:
    """Apply every CO-RE relocation of the functions that will be loaded; returns the poisoned ones
    per function index. CoreError for a relocation that cannot be applied at all."""
    poisoned: dict[int, list[Poisoned]] = {}
    if model.ext is None:
        return poisoned
    sec_index: dict[str, int] = {}
    for idx, name in sorted(model.sec_names.items()):
        sec_index.setdefault(name, idx)
    for sec_name, relos in model.ext.core_relos.items():
        sec_idx = sec_index.get(sec_name, -1)
        for number, relo in enumerate(relos):
            if relo.insn_off % 8:
                raise ObjectFormatError(f"CO-RE relocation #{number} of '{sec_name}' is not at an instruction")
            insn = relo.insn_off // 8
            pi = next((i for i, p in enumerate(model.progs) if p.sec_idx == sec_idx and
                       p.sec_off <= insn < p.sec_off + p.insn_count), -1)
            if pi < 0:
                continue  # an overridden weak function's relocation
            prog = model.progs[pi]
            if not (model.is_subprog(prog) or autoload(prog)):
                continue
            idx = insn - prog.sec_off
            where = f"program '{prog.name}': CO-RE relocation #{number} at instruction #{idx}"
            try:
                res = _resolve_one(ctx, relo)
                _patch(codes[pi], idx, relo, res, where)
            except core.CoreError as e:
                raise core.CoreError(f"{where} ({_describe_local(ctx.local, relo)}): {e}") from None
            if res.poison:
                poisoned.setdefault(pi, []).append(Poisoned(prog.name, idx, sec_name, number, relo, res))
    return poisoned


def _describe_local(local: BtfIndex, relo: core.CoreRelo) -> str:
    try:
        return f"{core.relo_kind_name(relo.kind)} of {core.access_string(core.parse_spec(local, relo))}"
    except (core.CoreError, ObjectFormatError):
        return f"{core.relo_kind_name(relo.kind)} of type [{relo.type_id}] access {relo.access!r}"


def _resolve_one(ctx: CoreContext, relo: core.CoreRelo) -> core.Result:
    local = ctx.local
    if not 0 < relo.type_id < local.count:
        raise core.CoreError(f"local type id {relo.type_id} is out of range")
    spec = core.parse_spec(local, relo)
    if relo.kind == core.TYPE_ID_LOCAL:
        return core.resolve(spec, relo, [])
    name = local.name(relo.type_id)
    if not name:
        raise core.CoreError(f"<{core.relo_kind_name(relo.kind)}> relocations of anonymous types are not supported")
    cands = ctx.cache.get(relo.type_id)
    if cands is None:
        kind = local.kind(relo.type_id)
        kinds = (KIND_ENUM, KIND_ENUM64) if kind in (KIND_ENUM, KIND_ENUM64) else (kind,)
        cands = ctx.cache[relo.type_id] = ctx.find_cands(name, kinds)
    return core.resolve(spec, relo, cands)


def _patch(code: bytearray, idx: int, relo: core.CoreRelo, res: core.Result, where: str) -> None:
    """Rewrite instruction ``idx`` with the relocated value (libbpf's bpf_core_patch_insn)."""
    if not 0 <= idx < len(code) // 8:
        raise core.CoreError("instruction out of range")
    op, regs, off, imm = _get(code, idx)
    if res.poison:
        _poison(code, idx)
        return
    cls = op & 0x07
    orig, new = res.orig_val & _M64, res.new_val & _M64
    if cls in (sc.BPF_ALU, sc.BPF_ALU64):
        if op & 0x08:
            raise core.CoreError("an ALU instruction with a register operand cannot be relocated")
        if res.validate and imm & _M64 != orig:
            raise core.CoreError(f"unexpected ALU immediate {imm}, expected {orig} -> {new}")
        _put(code, idx, op, regs, off, new)
    elif cls in (sc.BPF_LDX, sc.BPF_ST, sc.BPF_STX):
        if res.validate and off & _M64 != orig:
            raise core.CoreError(f"unexpected memory offset {off}, expected {orig} -> {new}")
        if new > 0x7FFF:
            raise core.CoreError(f"memory offset {new} is too big for the instruction")
        if res.fail_memsz_adjust:
            _poison(code, idx)  # reading a field whose size changed incompatibly: refuse to read garbage
            res.poison = True
            res.reason = ("the field's size changed and it is not a pointer or unsigned integer; access "
                          "pointers, unsigned integers, or fields of matching type and size")
            return
        if res.new_sz != res.orig_sz:
            sizes = {sc.BPF_DW: 8, sc.BPF_W: 4, sc.BPF_H: 2, sc.BPF_B: 1}
            if sizes.get(op & 0x18) != res.orig_sz:
                raise core.CoreError(f"unexpected memory size {sizes.get(op & 0x18)}, expected {res.orig_sz}")
            new_code = {8: sc.BPF_DW, 4: sc.BPF_W, 2: sc.BPF_H, 1: sc.BPF_B}.get(res.new_sz)
            if new_code is None:
                raise core.CoreError(f"invalid new memory size {res.new_sz}")
            op = (op & 0xE0) | new_code | cls
        _put(code, idx, op, regs, new, imm)
    elif cls == sc.BPF_LD:
        if op != _LD_IMM64 or idx + 1 >= len(code) // 8:
            raise core.CoreError("a BPF_LD instruction that is not a 64-bit immediate load")
        op1, regs1, off1, imm1 = _get(code, idx + 1)
        if regs >> 4 or off or op1 or regs1 or off1:
            raise core.CoreError("64-bit immediate load of unexpected form")
        cur = (imm & 0xFFFFFFFF) | ((imm1 & 0xFFFFFFFF) << 32)
        if res.validate and cur != orig:
            raise core.CoreError(f"unexpected 64-bit immediate {cur}, expected {orig} -> {new}")
        _put(code, idx, op, regs, off, new)
        _put(code, idx + 1, op1, regs1, off1, new >> 32)
    else:
        raise core.CoreError(f"instruction code {op:#x} cannot be relocated")


def _poison(code: bytearray, idx: int) -> None:
    if _get(code, idx)[0] == _LD_IMM64 and idx + 1 < len(code) // 8:
        _put(code, idx + 1, _CALL, 0, 0, core.POISON_IMM)
    _put(code, idx, _CALL, 0, 0, core.POISON_IMM)


# -- calls and func/line info ----------------------------------------------------------------

def _is_subprog_call(op: int, regs: int, off: int) -> bool:
    return op == _CALL and regs == sc.BPF_PSEUDO_CALL << 4 and off == 0


def link(model: Model, pi: int, codes: dict[int, bytearray], poisoned: dict[int, list[Poisoned]],
         with_info: bool) -> Linked:
    """Entry program ``pi`` with the functions it calls appended, calls and func/line info fixed."""
    main = model.progs[pi]
    out = Linked(bytearray(codes[pi]), list(main.relos))
    out.layout.append((0, main.name))
    for pz in poisoned.get(pi, ()):
        out.poisoned.append((pz.insn, pz))
    # (an object, not nested functions: a recursive closure is a reference cycle, which kept every
    # load's Model alive until the garbage collector ran)
    linker = _Linker(model, pi, codes, poisoned, out, with_info)
    linker.reloc_code(pi)
    for kind, got in linker.infos.items():
        if got:
            recs = got[0]
            for more in got[1:]:
                recs += more  # (every array here is this link's own copy)
            size = model.ext.func_rec_size if kind == "func" else model.ext.line_rec_size  # type: ignore[union-attr]
            if _BIG_ENDIAN:
                recs.byteswap()
            if kind == "func":
                out.func_info, out.n_func_info = recs.tobytes(), len(recs) * 4 // size
            else:
                out.line_info, out.n_line_info = recs.tobytes(), len(recs) * 4 // size
    return out


class _Linker:
    def __init__(self, model: Model, pi: int, codes: dict[int, bytearray], poisoned: dict[int, list[Poisoned]],
                 out: Linked, with_info: bool) -> None:
        self.model, self.pi, self.codes, self.poisoned, self.out = model, pi, codes, poisoned, out
        self.sub_off: dict[int, int] = {pi: 0}
        # per kind: the records so far, one array of u32 words per function (None: send none)
        self.infos: dict[str, Optional[list[array[int]]]] = {"func": [] if with_info else None,
                                                             "line": [] if with_info else None}
        self.text_progs = [i for i, p in enumerate(model.progs) if p.sec_idx == model.text_shndx]

    def add_info(self, fi: int) -> None:
        model, infos = self.model, self.infos
        if model.ext is None:
            return
        p = model.progs[fi]
        sec = model.sec_names.get(p.sec_idx, "")
        delta = self.sub_off[fi] - p.sec_off
        for kind, table, size in (("func", model.ext.func_info, model.ext.func_rec_size),
                                  ("line", model.ext.line_info, model.ext.line_rec_size)):
            acc = infos[kind]
            if acc is None or (fi != self.pi and not acc):
                continue
            words = array("I", table.get(sec, b""))
            if _BIG_ENDIAN:
                words.byteswap()
            step = size // 4
            # records are sorted by instruction (the kernel requires it): this function's are one run
            offs = words[::step]
            lo, hi = bisect_left(offs, p.sec_off * 8), bisect_left(offs, (p.sec_off + p.insn_count) * 8)
            if lo == hi:
                if fi != self.pi:
                    raise LoadError(f"program '{model.progs[self.pi].name}': function '{p.name}' has no "
                                    f".BTF.ext {kind} info")
                infos[kind] = None  # the entry program has none: send none (libbpf warns and does the same)
                continue
            # the object counts bytes from its section's start, the kernel instructions from the program's
            mine = words[lo * step: hi * step]
            mine[::step] = array("I", [off // 8 + delta for off in offs[lo:hi]])
            acc.append(mine)

    def reloc_code(self, fi: int) -> None:
        self.add_info(fi)
        model, out, sub_off = self.model, self.out, self.sub_off
        p = model.progs[fi]
        base = sub_off[fi]
        # only a bpf-to-bpf call or a function's address (ld_imm64 of src BPF_PSEUDO_FUNC) refers to
        # a function: their first two bytes are found in C (a match inside another instruction's
        # fields is not at an instruction's start); the list is made before callees are appended
        start = base * 8
        found = [m.start() for m in _TO_FUNCTION.finditer(out.insns, start, (base + p.insn_count) * 8)]
        if not found:
            return
        by_insn = {r.insn: r for r in reversed(p.relos)}
        code = out.insns
        for k in [(at - start) // 8 for at in found if not (at - start) % 8]:
            op, regs, off, imm = _INSN.unpack_from(code, (base + k) * 8)
            if op == _LD_IMM64 and regs >> 4 == sc.BPF_PSEUDO_FUNC:
                pseudo_func = True
            elif _is_subprog_call(op, regs, off):
                pseudo_func = False
            else:
                continue
            pos = base + k
            relo = by_insn.get(k)
            if relo is not None and relo.kind == RELO_EXTERN_FUNC:
                continue
            if relo is not None and relo.kind not in (RELO_CALL, RELO_SUBPROG_ADDR):
                raise LoadError(f"program '{p.name}': unexpected relocation at instruction #{k}")
            if relo is not None:
                target = (relo.sym_off // 8 + imm + 1 if relo.kind == RELO_CALL else (relo.sym_off + imm) // 8)
            elif pseudo_func:
                raise LoadError(f"program '{p.name}': function address at instruction #{k} has no relocation")
            else:
                target = p.sec_off + k + imm + 1
            sub = next((i for i in self.text_progs if model.progs[i].sec_off <= target <
                        model.progs[i].sec_off + model.progs[i].insn_count), None)
            if sub is None:
                raise LoadError(f"program '{p.name}': instruction #{k} calls instruction {target} of .text, "
                                "where no function is")
            if sub not in sub_off:
                sub_off[sub] = len(out.insns) // 8
                out.insns += self.codes[sub]
                out.layout.append((sub_off[sub], model.progs[sub].name))
                out.relos.extend(Reloc(r.kind, r.insn + sub_off[sub], r.map_idx, r.sym_off, r.core, r.core_idx)
                                 for r in model.progs[sub].relos)
                for pz in self.poisoned.get(sub, ()):
                    out.poisoned.append((pz.insn + sub_off[sub], pz))
                self.reloc_code(sub)
            op, regs, off, imm = _get(out.insns, pos)
            _put(out.insns, pos, op, regs, off, sub_off[sub] - pos - 1)


# -- data references -----------------------------------------------------------------------------

def relocate_data(model: Model, linked: Linked, map_fds: list[int], externs: list[ExternValue]) -> None:
    """Map fds, global data offsets, kconfig values, ksym ids/addresses and kfunc ids."""
    code = linked.insns
    for r in linked.relos:
        op, regs, off, imm = _get(code, r.insn)
        if r.kind == RELO_LD64:
            _put(code, r.insn, op, (regs & 0x0F) | (sc.BPF_PSEUDO_MAP_FD << 4), off, map_fds[r.map_idx])
        elif r.kind == RELO_DATA:
            op1, regs1, off1, _ = _get(code, r.insn + 1)
            _put(code, r.insn + 1, op1, regs1, off1, imm + r.sym_off)
            _put(code, r.insn, op, (regs & 0x0F) | (sc.BPF_PSEUDO_MAP_VALUE << 4), off, map_fds[r.map_idx])
        elif r.kind == RELO_EXTERN_VAR:
            ext, val = model.externs[r.sym_off], externs[r.sym_off]
            op1, regs1, off1, _ = _get(code, r.insn + 1)
            if ext.kind == EXT_KCFG:
                _put(code, r.insn, op, (regs & 0x0F) | (sc.BPF_PSEUDO_MAP_VALUE << 4), off,
                     map_fds[model.kconfig_map])
                _put(code, r.insn + 1, op1, regs1, off1, ext.data_off)
            elif ext.ksym_type_id and val.is_set:
                _put(code, r.insn, op, (regs & 0x0F) | (sc.BPF_PSEUDO_BTF_ID << 4), off, val.btf_id)
                _put(code, r.insn + 1, op1, regs1, off1, val.btf_fd)
            else:
                _put(code, r.insn, op, regs, off, val.addr & 0xFFFFFFFF)
                _put(code, r.insn + 1, op1, regs1, off1, val.addr >> 32)
        elif r.kind == RELO_EXTERN_FUNC:
            val = externs[r.sym_off]
            regs = (regs & 0x0F) | (sc.BPF_PSEUDO_KFUNC_CALL << 4)
            if val.is_set:
                _put(code, r.insn, op, regs, val.fd_index, val.btf_id)
            else:
                _put(code, r.insn, op, regs, 0, 0)
        elif r.kind == RELO_SUBPROG_ADDR and (regs >> 4) != sc.BPF_PSEUDO_FUNC:
            raise LoadError(f"relocation at instruction #{r.insn}: bad function address load")
