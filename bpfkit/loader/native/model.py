"""What the native loader reads out of a BPF object: programs with their relocations, map
definitions, externs, license and BTF — the object as libbpf's ``bpf_object__open`` sees it, kept
unchanged afterwards so one parse serves any number of loads.

Example::

    model = collect(elf_bytes, "count")        # collect.py
    model.progs[0].name, model.maps[0].name    # ('on_getpid', 'counts')
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from ... import _sys as sc
from ...btf.index import BtfIndex
from ...errors import ObjectFormatError
from .btfext import BtfExt, CoreRelo
from .objbtf import ObjBtf

__all__ = ["Reloc", "Prog", "MapDef", "Extern", "Model", "internal_map_name", "RELO_LD64", "RELO_CALL",
           "RELO_DATA", "RELO_EXTERN_VAR", "RELO_EXTERN_FUNC", "RELO_SUBPROG_ADDR", "RELO_CORE", "MAP_USER",
           "MAP_DATA", "MAP_BSS", "MAP_RODATA", "MAP_KCONFIG", "EXT_KCFG", "EXT_KSYM", "KCFG_UNKNOWN", "KCFG_CHAR",
           "KCFG_BOOL", "KCFG_INT", "KCFG_TRISTATE", "KCFG_CHAR_ARR", "PIN_BY_NAME"]

# relocation kinds, in libbpf's order (ties at one instruction sort by it)
RELO_LD64, RELO_CALL, RELO_DATA, RELO_EXTERN_VAR, RELO_EXTERN_FUNC, RELO_SUBPROG_ADDR, RELO_CORE = range(7)
# where a map comes from
MAP_USER, MAP_DATA, MAP_BSS, MAP_RODATA, MAP_KCONFIG = range(5)
EXT_KCFG, EXT_KSYM = 1, 2
KCFG_UNKNOWN, KCFG_CHAR, KCFG_BOOL, KCFG_INT, KCFG_TRISTATE, KCFG_CHAR_ARR = range(6)
PIN_BY_NAME = 1


@dataclass
class Reloc:
    """One relocation of a program's instruction ``insn`` (index in the program's own code)."""

    kind: int
    insn: int
    map_idx: int = -1
    sym_off: int = 0       # byte offset of the symbol (calls, data, subprog addresses) or extern index
    core: Optional[CoreRelo] = None
    core_idx: int = 0      # the relocation's number within its section (as libbpf numbers them in messages)


@dataclass
class Prog:
    """A function in an executable section: an entry program, or a subprogram in ``.text``."""

    name: str
    section: str           # SEC() name without a leading '?'
    sec_idx: int
    sec_off: int           # first instruction's index in its section
    insns: bytes
    autoload: bool
    mark_static: bool      # global but hidden: its BTF FUNC is made static before load
    relos: list[Reloc] = field(default_factory=list)
    prog_type: int = sc.BPF_PROG_TYPE_UNSPEC
    expected_attach_type: int = 0
    flags: int = 0
    insn_count: int = 0

    def __post_init__(self) -> None:
        self.insn_count = len(self.insns) // 8


@dataclass
class MapDef:
    """A map to create: BTF-defined (``.maps``), global data, or the ``.kconfig`` externs."""

    name: str              # the kernel's name (libbpf's bpf_map__name)
    origin: int            # MAP_USER / MAP_DATA / ...
    real_name: str = ""    # internal maps: the ELF section
    sec_idx: int = -1
    sec_offset: int = 0
    btf_var_idx: int = -1
    map_type: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    flags: int = 0
    numa_node: int = 0
    map_extra: int = 0
    key_type_id: int = 0
    value_type_id: int = 0
    pinning: int = 0
    pin_path: str = ""
    inner: Optional["MapDef"] = None
    init_slots: dict[int, str] = field(default_factory=dict)  # slot -> map or program name (.rel.maps)
    data: bytes = b""      # internal maps: the initial contents

    @property
    def internal(self) -> bool:
        return self.origin != MAP_USER

    @property
    def libbpf_name(self) -> str:
        """The name libbpf reports (bpf_map__name): custom ``.data.*``/``.rodata.*`` maps go by their
        section, whatever the kernel's 15-character name cut off."""
        if self.origin in (MAP_DATA, MAP_RODATA) and self.real_name not in (".data", ".rodata"):
            return self.real_name
        return self.name


@dataclass
class Extern:
    """A ``__kconfig`` or ``__ksym`` extern."""

    name: str
    kind: int              # EXT_KCFG / EXT_KSYM
    sym_idx: int
    btf_id: int
    is_weak: bool
    is_func: bool = False
    kcfg_type: int = KCFG_UNKNOWN
    kcfg_size: int = 0
    kcfg_align: int = 0
    kcfg_signed: bool = False
    data_off: int = 0
    ksym_type_id: int = 0  # local BTF type of a typed ksym (0: typeless, resolved through kallsyms)


@dataclass
class Model:
    """A parsed object. ``progs`` are sorted by (section, offset) like libbpf's."""

    name: str
    license: str
    kern_version: int
    progs: list[Prog]
    maps: list[MapDef]
    externs: list[Extern]
    btf: Optional[ObjBtf]
    btf_raw: bytes         # ``btf`` encoded after the open-time fix-ups
    ext: Optional[BtfExt]
    text_shndx: int
    sec_names: dict[int, str]
    kconfig_map: int = -1
    datasecs: dict[str, int] = field(default_factory=dict)  # the BTF's first DATASEC of each name
    datasec_ids: list[int] = field(default_factory=list)     # and all of them, in id order
    _local: Optional[BtfIndex] = field(default=None, repr=False)

    def local_index(self) -> Optional[BtfIndex]:
        """The object's BTF (after the open-time fix-ups) as an index, made once: CO-RE reads it."""
        if self._local is None and self.btf is not None:
            self._local = BtfIndex.parse(self.btf_raw)
        return self._local

    def is_subprog(self, p: Prog) -> bool:
        return p.sec_idx == self.text_shndx and len(self.progs) > 1

    def entry_progs(self) -> list[Prog]:
        return [p for p in self.progs if not self.is_subprog(p)]

    def prog_at(self, sec_idx: int, insn: int) -> Optional[Prog]:
        """The program of section ``sec_idx`` containing instruction ``insn``."""
        for p in self.progs:
            if p.sec_idx == sec_idx and p.sec_off <= insn < p.sec_off + p.insn_count:
                return p
        return None


_NAME_OK = re.compile(r"[^A-Za-z0-9_.]")


def internal_map_name(obj_name: str, real_name: str) -> str:
    """libbpf's kernel name for a global-data map: as much of the object name as fits before the
    section name (``count.rodata``), or the section name alone for ``.data.x``/``.rodata.x``."""
    sfx_len = min(max(7, len(real_name)), sc.BPF_OBJ_NAME_LEN - 1)
    pfx_len = 0 if "." in real_name[1:] else min(sc.BPF_OBJ_NAME_LEN - sfx_len - 1, len(obj_name))
    return _NAME_OK.sub("_", (obj_name[:pfx_len] + real_name[:sfx_len])[: sc.BPF_OBJ_NAME_LEN - 1])


def map_def_error(map_name: str, why: str) -> ObjectFormatError:
    return ObjectFormatError(f"map {map_name!r}: {why}")
