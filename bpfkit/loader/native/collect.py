"""Reading a BPF ELF object into a :class:`~bpfkit.loader.native.model.Model`, in libbpf's order:
sections (license, version, code, data), externs, the BTF fix-ups clang leaves to the loader
(section sizes, variable offsets, extern sections), maps, program types from the ``SEC()`` table,
and relocations.

Example::

    model = collect(open("count.bpf.o", "rb").read(), "count")
    [p.name for p in model.entry_progs()]     # ['on_getpid']
"""
from __future__ import annotations

import re
import struct
from functools import lru_cache
from operator import attrgetter, itemgetter
from typing import Optional

from ... import _sys as sc
from ...btf.index import KIND_ARRAY, KIND_DATASEC, KIND_ENUM, KIND_ENUM64, KIND_FUNC, KIND_INT, KIND_VAR
from ...errors import FeatureNotSupported, ObjectFormatError
from ...sections import find as find_section
from .btfext import BtfExt
from .elf import (SHN_LORESERVE, SHN_UNDEF, SHT_LLVM_ADDRSIG, SHT_NOBITS, SHT_PROGBITS, SHT_REL, SHT_STRTAB,
                  SHT_SYMTAB, STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FUNC, STT_NOTYPE, STT_OBJECT, STT_SECTION,
                  STV_HIDDEN, STV_INTERNAL, ElfObject, Section, Symbol)
from .mapdefs import collect_map_slots, user_maps
from .model import (EXT_KCFG, EXT_KSYM, KCFG_BOOL, KCFG_CHAR, KCFG_CHAR_ARR, KCFG_INT, KCFG_TRISTATE, KCFG_UNKNOWN,
                    MAP_BSS, MAP_DATA, MAP_KCONFIG, MAP_RODATA, MAP_USER, RELO_CALL, RELO_DATA, RELO_EXTERN_FUNC,
                    RELO_EXTERN_VAR, RELO_LD64, RELO_SUBPROG_ADDR, Extern, MapDef, Model, Prog, Reloc,
                    internal_map_name)
from .objbtf import ObjBtf, info_word

__all__ = ["collect", "kernel_version"]

_SEC_DATA, _SEC_RODATA, _SEC_BSS = MAP_DATA, MAP_RODATA, MAP_BSS
_VAR_STATIC, _VAR_GLOBAL, _VAR_EXTERN = 0, 1, 2
_FUNC_GLOBAL, _FUNC_EXTERN = 1, 2
_LD_IMM64 = sc.BPF_LD | sc.BPF_IMM | sc.BPF_DW
_CALL = sc.BPF_JMP | sc.BPF_CALL
_RELEASE = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_IMM = struct.Struct("<i")
_offset = itemgetter(1)
_by_insn_kind = attrgetter("insn", "kind")
_DEBUG = (".debug_", ".rel.debug_")


@lru_cache(maxsize=1)
def kernel_version() -> int:
    """LINUX_VERSION_CODE of the running kernel (Ubuntu's /proc/version_signature first), as libbpf
    passes it with every program load and fills ``LINUX_KERNEL_VERSION``."""
    import os

    # (asked first, as libbpf's faccessat: most kernels lack the file, and a failed open's
    # exception was most of this function's time)
    if os.access("/proc/version_signature", os.R_OK):
        try:
            with open("/proc/version_signature") as f:
                parts = f.read().split()
            if len(parts) >= 3:
                major, minor, patch = (int(x) for x in parts[2].split(".")[:3])
                return (major << 16) + (minor << 8) + min(patch, 255)
        except (OSError, ValueError):
            pass
    m = _RELEASE.match(os.uname().release)  # as libbpf's sscanf("%u.%u.%u"): all three or nothing
    if m is None:
        return 0
    return (int(m.group(1)) << 16) + (int(m.group(2)) << 8) + min(int(m.group(3)), 255)


def _ignored(sec: Section) -> bool:
    if sec.type in (SHT_STRTAB, SHT_LLVM_ADDRSIG):
        return True
    if sec.type == SHT_PROGBITS and sec.size == 0 and sec.name == ".text":
        return True
    name = sec.name
    if name.startswith(".debug_"):
        return True
    if name.startswith(".rel"):
        rest = name[4:]
        return rest.startswith(".debug_") or rest in (".BTF", ".BTF.ext")
    return False


def collect(data: bytes, obj_name: str) -> Model:
    """Parse ``data`` into a Model; ObjectFormatError for anything malformed."""
    elf = ElfObject.parse(data, f"BPF object {obj_name!r}")
    c = _Collector(elf, obj_name[: sc.BPF_OBJ_NAME_LEN - 1])
    return c.run()


class _Collector:
    def __init__(self, elf: ElfObject, name: str) -> None:
        self.elf = elf
        self.name = name
        self.license = ""
        self.kern_version = kernel_version()
        self.progs: list[Prog] = []
        self.maps: list[MapDef] = []
        self.externs: list[Extern] = []
        self.text_shndx = 0
        self.maps_shndx = -1
        self.data_secs: dict[int, int] = {}   # section index -> _SEC_*
        self.rel_secs: list[Section] = []
        self.btf: Optional[ObjBtf] = None
        self.ext: Optional[BtfExt] = None
        self._var_syms: Optional[dict[str, Symbol]] = None
        self.datasec_ids: list[int] = []        # the BTF's DATASECs, in id order
        self.datasecs: dict[str, int] = {}      # the first DATASEC of each name
        self._map_at: dict[tuple[int, int], int] = {}  # (section, .maps offset or -origin) -> map index

    def run(self) -> Model:
        self._sections()
        self._externs()
        self._fixup_btf()
        self._maps()
        self._prog_types()
        self._relocations()
        btf_raw = self.btf.encode() if self.btf is not None else b""
        kconfig = -1
        for i, m in enumerate(self.maps):
            if m.origin == MAP_KCONFIG:
                kconfig = i
                break
        return Model(self.name, self.license, self.kern_version, self.progs, self.maps, self.externs, self.btf,
                     btf_raw, self.ext, self.text_shndx, {s.index: s.name for s in self.elf.sections}, kconfig,
                     datasecs=self.datasecs, datasec_ids=self.datasec_ids)

    # -- sections -----------------------------------------------------------------------
    def _sections(self) -> None:
        btf_sec = ext_sec = None
        for sec in self.elf.sections[1:]:
            if sec.name.startswith(_DEBUG) or _ignored(sec):  # (most of an object is DWARF)
                continue
            name = sec.name
            if name == "license":
                self.license = sec.data[:63].split(b"\0")[0].decode(errors="replace")
            elif name == "version":
                if len(sec.data) != 4:
                    raise ObjectFormatError(f"the 'version' section is {len(sec.data)} bytes, not 4")
                (self.kern_version,) = struct.unpack("<I", sec.data)
            elif name == "maps":
                raise ObjectFormatError("legacy map definitions in a 'maps' section are not supported (libbpf "
                                        "1.0 dropped them too): declare maps with BTF in SEC(\".maps\")")
            elif name == ".maps":
                self.maps_shndx = sec.index
            elif name in (".BTF", ".BTF.ext"):
                if sec.type != SHT_PROGBITS:
                    raise ObjectFormatError(f"section {name} has ELF type {sec.type}, not PROGBITS")
                if name == ".BTF":
                    btf_sec = sec
                else:
                    ext_sec = sec
            elif sec.type == SHT_SYMTAB:
                pass
            elif sec.type == SHT_PROGBITS and sec.size > 0:
                if sec.is_exec:
                    if name == ".text":
                        self.text_shndx = sec.index
                    self._add_programs(sec)
                elif name == ".data" or name.startswith(".data."):
                    self.data_secs[sec.index] = _SEC_DATA
                elif name == ".rodata" or name.startswith(".rodata."):
                    self.data_secs[sec.index] = _SEC_RODATA
                elif name == ".struct_ops":
                    raise FeatureNotSupported("struct_ops objects are not supported by bpfkit's own loader yet; "
                                              "open it with loader='libbpf'", feature="struct_ops")
            elif sec.type == SHT_REL:
                target = sec.info
                if target >= len(self.elf.sections):
                    raise ObjectFormatError(f"relocation section {name} targets section #{target}, out of range")
                if self.elf.sections[target].is_exec or name == ".rel.maps":
                    self.rel_secs.append(sec)
            elif sec.type == SHT_NOBITS and (name == ".bss" or name.startswith(".bss.")):
                self.data_secs[sec.index] = _SEC_BSS
        symtab = self.elf.sections[self.elf.symtab_index]
        if not 0 < symtab.link < len(self.elf.sections):
            raise ObjectFormatError("the symbol table's string section is missing")
        self.progs.sort(key=lambda p: (p.sec_idx, p.sec_off))
        if btf_sec is not None:
            self.btf = ObjBtf.parse(btf_sec.data)
            types = self.btf.types
            self.datasec_ids = [i for i, t in enumerate(types) if t and (t[1] >> 24) & 0x1F == KIND_DATASEC]
            for i in reversed(self.datasec_ids):
                self.datasecs[self.btf.name(i)] = i
            if ext_sec is not None:
                btf = self.btf
                self.ext = BtfExt.parse(ext_sec.data, btf.str_at, len(btf.strings))
        elif self.maps_shndx >= 0 or any(_is_extern(s) for s in self.elf.symbols):
            raise ObjectFormatError("the object has no .BTF section, which its maps or externs need "
                                    "(compile with clang -g)")

    def _add_programs(self, sec: Section) -> None:
        for sym in self.elf.symbols:
            if sym.shndx != sec.index or sym.type != STT_FUNC:
                continue
            size, off = sym.size, sym.value
            if off + size > len(sec.data):
                raise ObjectFormatError(f"section '{sec.name}': program '{sym.name}' at offset {off} crosses the "
                                        "section's end")
            if sec.index != self.text_shndx and sym.bind == STB_LOCAL:
                raise ObjectFormatError(f"section '{sec.name}': program '{sym.name}' is static; entry programs "
                                        "must be global functions")
            if size == 0 or size % 8 or off % 8:
                raise ObjectFormatError(f"section '{sec.name}': corrupted program '{sym.name}' (offset {off}, "
                                        f"size {size})")
            section = sec.name[1:] if sec.name.startswith("?") else sec.name
            self.progs.append(Prog(sym.name, section, sec.index, off // 8, sec.data[off: off + size],
                                   autoload=not sec.name.startswith("?"),
                                   mark_static=sym.bind != STB_LOCAL and sym.visibility in (STV_HIDDEN, STV_INTERNAL)))

    # -- externs ------------------------------------------------------------------------
    def _externs(self) -> None:
        btf = self.btf
        syms = [s for s in self.elf.symbols if not s.shndx and s.name and _is_extern(s)]
        if btf is None or (not syms and ".ksyms" not in self.datasecs and ".kconfig" not in self.datasecs):
            return  # (most objects: nothing below applies)
        dummy = _add_dummy_ksym_var(btf)
        for sym in syms:
            btf_id = _extern_btf_id(btf, sym.name)
            sec_id = next((i for i in range(1, len(btf)) if btf.kind(i) == KIND_DATASEC and
                           btf_id in btf.types[i][3::3][:btf.vlen(i)]), -1)
            if sec_id < 0:
                raise ObjectFormatError(f"extern '{sym.name}': its BTF is in no data section (.kconfig or .ksyms)")
            sec_name = btf.name(sec_id)
            ext = Extern(btf.name(btf_id), 0, sym.index, btf_id, sym.bind == STB_WEAK,
                         is_func=btf.kind(btf_id) == KIND_FUNC)
            if sec_name == ".kconfig":
                if ext.is_func:
                    raise ObjectFormatError(f"extern function {ext.name} can't be a __kconfig")
                ext.kind = EXT_KCFG
                ext.kcfg_size = btf.resolve_size(btf.ref(btf_id))
                ext.kcfg_align = btf.align_of(btf.ref(btf_id))
                if ext.kcfg_size <= 0 or ext.kcfg_align <= 0:
                    raise ObjectFormatError(f"extern (kcfg) '{ext.name}': cannot size or align its type")
                ext.kcfg_type, ext.kcfg_signed = _kcfg_type(btf, btf.ref(btf_id))
                if ext.kcfg_type == KCFG_UNKNOWN:
                    raise ObjectFormatError(f"extern (kcfg) '{ext.name}': type is unsupported (use bool, char, "
                                            "an integer, enum libbpf_tristate or char[N])")
            elif sec_name == ".ksyms":
                ext.kind = EXT_KSYM
                ext.ksym_type_id = btf.skip_mods(btf.ref(btf_id))
            else:
                raise ObjectFormatError(f"extern '{ext.name}' is in section '{sec_name}'; externs must be "
                                        "__kconfig (.kconfig) or __ksym (.ksyms)")
            self.externs.append(ext)
        self.externs.sort(key=lambda e: (e.kind, -e.kcfg_align if e.kind == EXT_KCFG else 0,
                                         e.kcfg_size if e.kind == EXT_KCFG else 0, e.name.encode()))
        by_name = {e.name: e for e in self.externs}
        for sec_id in range(1, len(btf)):
            if btf.kind(sec_id) != KIND_DATASEC or btf.name(sec_id) not in (".ksyms", ".kconfig"):
                continue
            t = btf.types[sec_id]
            if btf.name(sec_id) == ".ksyms":
                int_id = next((i for i in range(1, len(btf)) if btf.kind(i) == KIND_INT and
                               btf.types[i][3] & 0xFF == 32), 0)
                for i in range(btf.vlen(sec_id)):
                    vt = t[3 + 3 * i]
                    if btf.name(vt) not in by_name:
                        raise ObjectFormatError(f"no extern symbol for BTF {btf.name(vt)!r} in .ksyms")
                    if btf.kind(vt) == KIND_FUNC:
                        proto = btf.types[btf.ref(vt)]
                        for j in range(btf.vlen(btf.ref(vt))):
                            if proto[4 + 2 * j] and not proto[3 + 2 * j]:
                                proto[3 + 2 * j] = btf.types[dummy][0]
                        t[3 + 3 * i] = dummy
                        btf.types[vt][1] = info_word(KIND_FUNC, _FUNC_GLOBAL)
                    else:
                        btf.types[vt][3] = _VAR_GLOBAL
                        btf.types[vt][2] = int_id
                    t[4 + 3 * i], t[5 + 3 * i] = 4 * i, 4
                t[2] = 4 * btf.vlen(sec_id)
            else:
                off = 0
                for e in self.externs:
                    if e.kind == EXT_KCFG:
                        e.data_off = (off + e.kcfg_align - 1) // e.kcfg_align * e.kcfg_align
                        off = e.data_off + e.kcfg_size
                t[2] = off
                for i in range(btf.vlen(sec_id)):
                    vt = t[3 + 3 * i]
                    found = by_name.get(btf.name(vt))
                    if found is None:
                        raise ObjectFormatError(f"no extern symbol for BTF var {btf.name(vt)!r} in .kconfig")
                    btf.types[vt][3] = _VAR_GLOBAL
                    t[4 + 3 * i] = found.data_off

    # -- BTF fix-ups --------------------------------------------------------------------
    def _fixup_btf(self) -> None:
        btf = self.btf
        if btf is None:
            return
        types = btf.types
        sizes: dict[int, int] = {}  # a variable's type -> its size (most share a few types)
        for sec_id in self.datasec_ids:
            t = types[sec_id]
            name = btf.name(sec_id)
            n = t[1] & 0xFFFF
            if name not in (".kconfig", ".ksyms"):
                fix_offsets = t[2] == 0
                if fix_offsets:
                    sec = self.elf.find(name)
                    if sec is None or not sec.size or sec.size > 0xFFFFFFFF:
                        raise ObjectFormatError(f"BTF data section '{name}' has no ELF section to size it by")
                    t[2] = sec.size
                var_syms = self._var_syms if self._var_syms is not None else self._index_var_symbols()
                for i in range(3, 3 + 3 * n, 3):
                    vt = t[i]
                    var = types[vt]
                    if (var[1] >> 24) & 0x1F != KIND_VAR:
                        raise ObjectFormatError(f"BTF data section '{name}' holds a non-variable type [{vt}]")
                    if var[3] == _VAR_STATIC or var[3] == _VAR_EXTERN:
                        continue
                    sym = var_syms.get(btf.name(vt))
                    if sym is None:
                        raise ObjectFormatError(f"BTF data section '{name}': no ELF symbol for variable "
                                                f"{btf.name(vt)!r}")
                    if fix_offsets:
                        if sym.value > 0xFFFFFFFF:
                            raise ObjectFormatError(f"symbol {sym.name!r} has offset {sym.value}, past any section")
                        t[i + 1] = sym.value
                    if sym.visibility == STV_HIDDEN or sym.visibility == STV_INTERNAL:
                        var[3] = _VAR_STATIC
            entries = sorted([t[i: i + 3] for i in range(3, 3 + 3 * n, 3)], key=_offset)
            t[3:] = [w for v in entries for w in v]
            for vt, off, size in entries:
                # (a type may be smaller than its variable: a flexible array with an initialiser)
                ty = types[vt][2]
                ty_size = sizes.get(ty)
                if ty_size is None:
                    ty_size = sizes[ty] = btf.resolve_size(ty)
                if off + size > t[2] or ty_size > size:
                    raise ObjectFormatError(f"BTF data section '{name}': variable {btf.name(vt)!r} (offset {off}, "
                                            f"size {size}) does not fit the section ({t[2]} bytes) or its type")

    def _index_var_symbols(self) -> dict[str, Symbol]:
        # the first global/weak object symbol of each name
        self._var_syms = {s.name: s for s in reversed(self.elf.symbols)
                          if s.type == STT_OBJECT and (s.bind == STB_GLOBAL or s.bind == STB_WEAK)}
        return self._var_syms

    # -- maps ---------------------------------------------------------------------------
    def _maps(self) -> None:
        if self.maps_shndx >= 0:
            self.maps.extend(user_maps(self.btf, self.elf.sections[self.maps_shndx], self.datasecs.get(".maps", -1)))
        for idx, kind in sorted(self.data_secs.items()):
            sec = self.elf.sections[idx]
            if sec.size:
                data = bytes(sec.size) if kind == _SEC_BSS else sec.data
                self.maps.append(self._internal_map(kind, sec.name, idx, data))
        kcfg = [e for e in self.externs if e.kind == EXT_KCFG]
        if kcfg:
            size = kcfg[-1].data_off + kcfg[-1].kcfg_size
            self.maps.append(self._internal_map(MAP_KCONFIG, ".kconfig", self.elf.symtab_index, bytes(size)))

    def _internal_map(self, kind: int, real_name: str, sec_idx: int, data: bytes) -> MapDef:
        m = MapDef(internal_map_name(self.name, real_name), kind, real_name, sec_idx, map_type=sc.BPF_MAP_TYPE_ARRAY,
                   key_size=4, value_size=len(data), max_entries=1, data=data,
                   flags=sc.BPF_F_RDONLY_PROG if kind in (MAP_RODATA, MAP_KCONFIG) else 0)
        btf = self.btf
        if btf is not None:
            tid = self.datasecs.get(real_name, -1)
            if tid > 0:
                m.value_type_id = tid
                if btf.kind(tid) == KIND_DATASEC:
                    types = btf.types
                    for v in types[tid][3::3][:btf.vlen(tid)]:  # (a loop: a generator costs more here)
                        if (types[v][1] >> 24) & 0x1F == KIND_VAR and types[v][3] != _VAR_STATIC:
                            m.flags |= sc.BPF_F_MMAPABLE
                            break
        return m

    # -- programs -----------------------------------------------------------------------
    def _prog_types(self) -> None:
        for p in self.progs:
            match = find_section(p.section)
            if match is None:
                continue
            d = match.definition
            p.prog_type, p.expected_attach_type, p.flags = d.prog_type, d.attach_type, d.prog_flags

    # -- relocations --------------------------------------------------------------------
    def _relocations(self) -> None:
        # each map by where it is defined (its .maps offset, or its data section), the first of each
        for mi, m in enumerate(self.maps):
            self._map_at.setdefault((m.sec_idx, m.sec_offset) if m.origin == MAP_USER else (m.sec_idx, -m.origin), mi)
        maps_sec = self.elf.sections[self.maps_shndx] if self.maps_shndx >= 0 else None
        for rel_sec in self.rel_secs:
            target = rel_sec.info
            if maps_sec is not None and target == maps_sec.index:
                if self.btf is None:
                    raise ObjectFormatError(".rel.maps needs the object's BTF")
                entry = {p.name: (p.sec_idx, p.sec_off * 8, self._is_subprog(p)) for p in self.progs}
                collect_map_slots(self.btf, self.elf, rel_sec, maps_sec, self.datasecs.get(".maps", -1), self.maps,
                                  entry)
            elif self.elf.sections[target].is_exec:
                self._prog_relos(rel_sec, self.elf.sections[target])
        for p in self.progs:
            p.relos.sort(key=_by_insn_kind)

    def _is_subprog(self, p: Prog) -> bool:
        return p.sec_idx == self.text_shndx and len(self.progs) > 1

    def _prog_relos(self, rel_sec: Section, sec: Section) -> None:
        nsec, syms, n_data = len(self.elf.sections), self.elf.symbols, len(sec.data)
        progs = [p for p in self.progs if p.sec_idx == sec.index]
        for i, rel in enumerate(self.elf.rels(rel_sec)):
            if rel.sym >= len(syms):
                raise ObjectFormatError(f"section '{rel_sec.name}': symbol #{rel.sym} not found for relo #{i}")
            sym = syms[rel.sym]
            if sym.shndx >= nsec:
                raise ObjectFormatError(f"section '{rel_sec.name}': relo #{i} points at symbol #{rel.sym} in "
                                        f"invalid section #{sym.shndx}")
            if rel.offset % 8 or rel.offset >= n_data:
                raise ObjectFormatError(f"section '{rel_sec.name}': invalid offset {rel.offset:#x} for relo #{i}")
            insn_idx = rel.offset // 8
            for prog in progs:
                if prog.sec_off <= insn_idx < prog.sec_off + prog.insn_count:
                    prog.relos.append(self._record(prog, insn_idx - prog.sec_off, sym))
                    break
            # (in no program: an overridden weak function's code)

    def _where(self, prog: Prog, idx: int, sym: Symbol) -> str:
        """Names a relocation in an error."""
        sym_name = self.elf.sections[sym.shndx].name if sym.type == STT_SECTION and not sym.name else sym.name
        return f"program '{prog.name}': relocation against '{sym_name}' at instruction #{idx}"

    def _record(self, prog: Prog, idx: int, sym: Symbol) -> Reloc:
        insns = prog.insns
        code, src = insns[idx * 8], insns[idx * 8 + 1] >> 4
        if code != _LD_IMM64 and code != _CALL:
            raise ObjectFormatError(f"{self._where(prog, idx, sym)}: instruction code {code:#x} cannot be relocated")
        shndx = sym.shndx
        if _is_extern(sym):
            ext_idx = next((i for i, e in enumerate(self.externs) if e.sym_idx == sym.index), -1)
            if ext_idx < 0:
                raise ObjectFormatError(f"{self._where(prog, idx, sym)}: no extern for the symbol")
            return Reloc(RELO_EXTERN_FUNC if code == _CALL else RELO_EXTERN_VAR, idx, sym_off=ext_idx)
        if code == _CALL:
            if src != sc.BPF_PSEUDO_CALL:
                raise ObjectFormatError(f"{self._where(prog, idx, sym)}: a relocated call must be a bpf-to-bpf call")
            if not shndx or shndx != self.text_shndx:
                raise ObjectFormatError(f"{self._where(prog, idx, sym)}: calls must go to functions in .text, not "
                                        f"'{self.elf.sections[shndx].name}'")
            if sym.value % 8:
                raise ObjectFormatError(f"{self._where(prog, idx, sym)}: call target offset {sym.value} is not an "
                                        "instruction")
            return Reloc(RELO_CALL, idx, sym_off=sym.value)
        if not shndx or shndx >= SHN_LORESERVE:
            raise ObjectFormatError(f"{self._where(prog, idx, sym)}: the symbol is in special section {shndx:#x}; "
                                    "an uninitialised global variable? (initialise it, e.g. '= 0')")
        if shndx == self.text_shndx and ((sym.bind == STB_LOCAL and sym.type == STT_SECTION) or
                                         (sym.bind == STB_GLOBAL and sym.type == STT_FUNC)):
            imm = _IMM.unpack_from(insns, idx * 8 + 4)[0]
            if sym.value % 8 or imm % 8:
                raise ObjectFormatError(f"{self._where(prog, idx, sym)}: bad subprogram address {sym.value}+{imm}")
            return Reloc(RELO_SUBPROG_ADDR, idx, sym_off=sym.value)
        if shndx == self.elf.symtab_index:
            raise ObjectFormatError(f"{self._where(prog, idx, sym)}: bad data relocation against the symbol table")
        kind = self.data_secs.get(shndx, MAP_USER)
        if kind == MAP_USER:
            if shndx != self.maps_shndx:
                raise ObjectFormatError(f"{self._where(prog, idx, sym)}: the symbol is in section "
                                        f"'{self.elf.sections[shndx].name}', not a map or data section")
            mi = self._map_at.get((shndx, sym.value), -1)
            if mi < 0:
                raise ObjectFormatError(f"{self._where(prog, idx, sym)}: no map at offset {sym.value} of "
                                        f"'{self.elf.sections[shndx].name}'")
            return Reloc(RELO_LD64, idx, map_idx=mi)
        mi = self._map_at.get((shndx, -kind), -1)
        if mi < 0:
            raise ObjectFormatError(f"{self._where(prog, idx, sym)}: no data map for section "
                                    f"'{self.elf.sections[shndx].name}'")
        return Reloc(RELO_DATA, idx, map_idx=mi, sym_off=sym.value)


def _is_extern(sym: Symbol) -> bool:
    return sym.shndx == SHN_UNDEF and sym.bind in (STB_GLOBAL, STB_WEAK) and sym.type == STT_NOTYPE


def _extern_btf_id(btf: ObjBtf, name: str) -> int:
    for tid in range(1, len(btf)):
        kind = btf.kind(tid)
        if kind not in (KIND_VAR, KIND_FUNC) or btf.name(tid) != name:
            continue
        if (kind == KIND_VAR and btf.types[tid][3] != _VAR_EXTERN) or \
                (kind == KIND_FUNC and btf.vlen(tid) != _FUNC_EXTERN):
            raise ObjectFormatError(f"extern '{name}': its BTF {('variable', 'function')[kind == KIND_FUNC]} is "
                                    "not marked extern")
        return tid
    raise ObjectFormatError(f"extern '{name}' has no BTF (declare it with __kconfig or __ksym)")


def _add_dummy_ksym_var(btf: ObjBtf) -> int:
    """libbpf gives functions in .ksyms a placeholder variable (the kernel wants VARs in a DATASEC)."""
    sec = btf.find(".ksyms", KIND_DATASEC)
    if sec < 0 or not any(btf.kind(v) == KIND_FUNC for v in btf.types[sec][3::3][:btf.vlen(sec)]):
        return 0
    int_id = next((i for i in range(1, len(btf)) if btf.kind(i) == KIND_INT and btf.types[i][3] & 0xFF == 32), 0)
    return btf.add_type([btf.add_string("dummy_ksym"), info_word(KIND_VAR), int_id, _VAR_GLOBAL])


def _kcfg_type(btf: ObjBtf, tid: int) -> tuple[int, bool]:
    t = btf.skip_mods(tid)
    kind = btf.kind(t)
    if kind == KIND_INT:
        enc, size = (btf.types[t][3] >> 24) & 0xF, btf.types[t][2]
        if enc & 4:
            return (KCFG_BOOL if size == 1 else KCFG_UNKNOWN), False
        signed = bool(enc & 1)
        if size == 1:
            return KCFG_CHAR, signed
        if size not in (2, 4, 8):
            return KCFG_UNKNOWN, signed
        return KCFG_INT, signed
    if kind in (KIND_ENUM, KIND_ENUM64):
        if btf.name(t) != "libbpf_tristate" or (kind == KIND_ENUM and btf.types[t][2] != 4):
            return KCFG_UNKNOWN, False
        return KCFG_TRISTATE, False
    if kind == KIND_ARRAY:
        if btf.types[t][5] == 0 or _kcfg_type(btf, btf.types[t][3])[0] != KCFG_CHAR:
            return KCFG_UNKNOWN, False
        return KCFG_CHAR_ARR, False
    return KCFG_UNKNOWN, False

