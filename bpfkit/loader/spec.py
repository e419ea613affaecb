"""Specs: what a BPF object contains, editable before anything touches the kernel.

``bpfkit.open()`` parses an ELF object into an :class:`ObjectSpec`: programs,
maps and global variables. Change constants and map sizes on the spec, then
``spec.load()`` creates the live :class:`~bpfkit.Object`. A spec can be loaded
any number of times.

Example::

    spec = bpfkit.open("count.bpf.o")
    spec.rodata.target_pid = 1234
    spec.maps.counts.max_entries = 65536
    print(spec.programs)
    with spec.load() as obj: ...
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Iterator, Optional, TypeVar, Union

import numpy as np

from .. import _sys as sc
from ..btf import Btf, Kind, default_dtype
from ..errors import BpfError, BpfNotFoundError, MapError
from .globals import GlobalVars

if TYPE_CHECKING:
    from ..object import Object

T = TypeVar("T")

GLOBAL_SECTIONS = (".bss", ".data", ".rodata", ".kconfig")
RECORD_MARKER = "__bpfkit_record__"


class Namespace(Generic[T]):
    """A read-only mapping whose entries are also attributes: ``ns.counts`` == ``ns["counts"]``."""

    _items: dict[str, T]
    _kind: str

    def __init__(self, items: dict[str, T], kind: str) -> None:
        object.__setattr__(self, "_items", items)
        object.__setattr__(self, "_kind", kind)

    def __getattr__(self, name: str) -> T:
        items = object.__getattribute__(self, "_items")
        if name in items:
            return items[name]
        raise AttributeError(f"no {self._kind} {name!r}; there are: {', '.join(items) or 'none'}")

    def __getitem__(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise BpfNotFoundError(f"no {self._kind} {name!r}; there are: "
                                   f"{', '.join(self._items) or 'none'}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> Any:
        return self._items.values()

    def items(self) -> Any:
        return self._items.items()

    def __dir__(self) -> list[str]:
        return list(self._items)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k}: {v!r}" for k, v in self._items.items()) + "}"


@dataclass
class ProgramSpec:
    """A program in the object: ``section`` is its SEC() name, ``type`` libbpf's type name."""

    name: str
    section: str
    type: str
    prog_type: int
    expected_attach_type: int
    insn_count: int
    autoload: bool = True
    flags: int = 0  # BPF_F_SLEEPABLE etc., for sections this libbpf does not know

    def __repr__(self) -> str:
        return f"<ProgramSpec {self.name} SEC({self.section!r}) {self.type} {self.insn_count} insns>"


@dataclass
class MapSpec:
    """A map in the object. ``max_entries``, ``flags`` and the dtypes may be changed before load."""

    name: str
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    key_type_id: int = 0
    value_type_id: int = 0
    key_dtype: Optional[np.dtype] = None
    value_dtype: Optional[np.dtype] = None
    record_dtype: Optional[np.dtype] = None  # ring/perf buffers: the record type from BTF
    dtype_error: str = ""  # why BTF gave no usable dtype (e.g. bitfields): reads refuse with this
    internal: bool = False
    section: str = ""
    libbpf_name: str = ""

    def __setattr__(self, name: str, value: Any) -> None:
        # edits are checked here, before anything reaches libbpf or the kernel
        if name in ("max_entries", "flags") and "name" in self.__dict__:
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < 1 << 32:
                raise MapError(f"map {self.name!r}: {name} must be an integer in 0..2**32-1, not {value!r}")
            value = int(value)
        elif name in ("key_dtype", "value_dtype") and value is not None and "name" in self.__dict__:
            size = self.key_size if name == "key_dtype" else self.value_size
            try:
                value = np.dtype(value)
            except TypeError as exc:
                raise MapError(f"map {self.name!r}: {name}: {exc}") from None
            if value.itemsize != size:
                raise MapError(f"map {self.name!r}: {name} {value} is {value.itemsize} bytes, the map's "
                               f"{name[:-6]} is {size} bytes")
            self.__dict__["dtype_error"] = ""  # an explicit dtype replaces what BTF could not give
        super().__setattr__(name, value)

    @property
    def type(self) -> str:
        """Map type name, e.g. 'hash'."""
        return sc.MAP_TYPE_NAMES.get(self.map_type, str(self.map_type))

    def __repr__(self) -> str:
        return (f"<MapSpec {self.name} {self.type} key={self.key_size}B value={self.value_size}B "
                f"max_entries={self.max_entries}>")


@dataclass
class ObjectSpec:
    """A parsed BPF object. Nothing exists in the kernel until :meth:`load`."""

    name: str
    elf: bytes
    programs: Namespace[ProgramSpec]
    maps: Namespace[MapSpec]
    btf: Optional[Btf]
    sections: dict[str, GlobalVars] = field(default_factory=dict)
    path: Optional[str] = None

    @property
    def progs(self) -> Namespace[ProgramSpec]:
        """Alias of :attr:`programs`."""
        return self.programs

    def _section(self, name: str) -> GlobalVars:
        if name not in self.sections:
            raise AttributeError(f"object {self.name!r} has no {name} section (no "
                                 f"{'const volatile ' if name == '.rodata' else ''}globals of that kind)")
        return self.sections[name]

    @property
    def rodata(self) -> GlobalVars:
        """``const volatile`` globals: set them here, before load."""
        return self._section(".rodata")

    @property
    def data(self) -> GlobalVars:
        """Initialised globals (``.data``)."""
        return self._section(".data")

    @property
    def bss(self) -> GlobalVars:
        """Zero-initialised globals (``.bss``)."""
        return self._section(".bss")

    def load(self) -> "Object":
        """Create maps and programs in the kernel; returns the live Object (a context manager)."""
        from ..object import Object

        return Object.load(self)

    def __repr__(self) -> str:
        return f"<ObjectSpec {self.name}: programs={list(self.programs)} maps={list(self.maps)}>"


def open_spec(source: Union[str, os.PathLike, bytes], name: Optional[str] = None) -> ObjectSpec:
    """Parse a ``.bpf.o`` (path or bytes) into an ObjectSpec."""
    from . import libbpf as lb

    path: Optional[str] = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = os.fspath(source)
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise BpfNotFoundError(f"BPF object {path!r} not found") from None
    if data[:4] != b"\x7fELF":
        from ..errors import ObjectFormatError

        raise ObjectFormatError(f"{path or 'data'} is not an ELF file (expected a clang -target bpf object)")
    obj_name = name or (os.path.basename(path).split(".")[0] if path else "bpfkit")
    obj, keep = lb.open_object(data, obj_name)
    try:
        raw_btf = lb.object_btf(obj)
        btf = Btf.parse(raw_btf) if raw_btf else None
        programs: dict[str, ProgramSpec] = {}
        for p in lb.programs(obj):
            t = lb.lib.bpf_program__type(p)
            pname = lb.string(lb.lib.bpf_program__name(p))
            programs[pname] = ProgramSpec(
                name=pname, section=lb.string(lb.lib.bpf_program__section_name(p)),
                type=lb.prog_type_name(t), prog_type=t,
                expected_attach_type=lb.lib.bpf_program__expected_attach_type(p),
                insn_count=int(lb.lib.bpf_program__insn_cnt(p)), autoload=bool(lb.lib.bpf_program__autoload(p)),
                flags=int(lb.lib.bpf_program__flags(p)))
            _newer_sections(programs[pname])
        maps: dict[str, MapSpec] = {}
        sections: dict[str, GlobalVars] = {}
        records = _record_types(btf)
        for m in lb.maps(obj):
            mname = lb.string(lb.lib.bpf_map__name(m))
            internal = bool(lb.lib.bpf_map__is_internal(m))
            spec = MapSpec(
                name=mname, map_type=lb.lib.bpf_map__type(m), key_size=lb.lib.bpf_map__key_size(m),
                value_size=lb.lib.bpf_map__value_size(m), max_entries=lb.lib.bpf_map__max_entries(m),
                flags=lb.lib.bpf_map__map_flags(m), key_type_id=lb.lib.bpf_map__btf_key_type_id(m),
                value_type_id=lb.lib.bpf_map__btf_value_type_id(m), internal=internal, libbpf_name=mname)
            if internal:
                spec.section = _section_of(mname, btf)
                spec.name = spec.section
                if spec.section != ".kconfig" and btf is not None and spec.value_size:
                    dt = _datasec_dtype(btf, spec.section, spec.value_size)
                    buf = bytearray(spec.value_size)
                    init = lb.initial_value(m)
                    buf[: len(init)] = init
                    spec.value_dtype = dt
                    sections[spec.section] = GlobalVars(buf, dt, spec.section, owner=buf)
            else:
                spec.key_dtype, kerr = _btf_dtype(btf, spec.key_type_id, spec.key_size)
                spec.value_dtype, verr = _btf_dtype(btf, spec.value_type_id, spec.value_size)
                errs = [f"{what} type: {e}" for what, e in (("key", kerr), ("value", verr)) if e]
                if errs:
                    spec.dtype_error = f"map {mname!r}: " + "; ".join(errs)
                spec.record_dtype = records.get(mname)
            maps[spec.name] = spec
    finally:
        lb.lib.bpf_object__close(obj)
        del keep
    return ObjectSpec(name=obj_name, elf=data, programs=Namespace(programs, "program"),
                      maps=Namespace(maps, "map"), btf=btf, sections=sections, path=path)


# SEC() names newer than the system libbpf (1.1 knows none of these): (prog type, attach type, flags)
_NEWER_SECTIONS = {
    "uprobe.multi": (sc.BPF_PROG_TYPE_KPROBE, sc.BPF_TRACE_UPROBE_MULTI, 0),
    "uretprobe.multi": (sc.BPF_PROG_TYPE_KPROBE, sc.BPF_TRACE_UPROBE_MULTI, 0),
    "uprobe.multi.s": (sc.BPF_PROG_TYPE_KPROBE, sc.BPF_TRACE_UPROBE_MULTI, sc.BPF_F_SLEEPABLE),
    "uretprobe.multi.s": (sc.BPF_PROG_TYPE_KPROBE, sc.BPF_TRACE_UPROBE_MULTI, sc.BPF_F_SLEEPABLE),
    "tcx/ingress": (sc.BPF_PROG_TYPE_SCHED_CLS, sc.BPF_TCX_INGRESS, 0),
    "tcx/egress": (sc.BPF_PROG_TYPE_SCHED_CLS, sc.BPF_TCX_EGRESS, 0),
}


def _newer_sections(ps: ProgramSpec) -> None:
    """Give programs in sections this libbpf does not know the type a newer libbpf would."""
    kind = ps.section.split("/", 1)[0]
    known = _NEWER_SECTIONS.get(ps.section if kind == "tcx" else kind)
    if known is not None and ps.prog_type == sc.BPF_PROG_TYPE_UNSPEC:
        ps.prog_type, ps.expected_attach_type, flags = known
        ps.flags |= flags
        ps.type = sc.PROG_TYPE_NAMES[ps.prog_type]


def _section_of(map_name: str, btf: Optional[Btf]) -> str:
    """libbpf names internal maps '<obj prefix>.<section>'; recover the section."""
    if btf is not None:
        secs = sorted((t.name for t in btf if t.kind == Kind.DATASEC), key=len, reverse=True)
        for sec in secs:
            if map_name.endswith(sec) or map_name.endswith(sec[: len(map_name)]):
                return sec
    dot = map_name.find(".")
    return map_name[dot:] if dot >= 0 else map_name


def _datasec_dtype(btf: Btf, section: str, size: int) -> np.dtype:
    try:
        dt = btf.datasec_dtype(section)
    except BpfNotFoundError:
        return np.dtype({"names": [], "formats": [], "itemsize": size})
    if dt.itemsize < size and dt.fields is not None:
        names = list(dt.names or ())
        layout: dict[str, Any] = {"names": names, "formats": [dt.fields[n][0] for n in names],
                                  "offsets": [dt.fields[n][1] for n in names], "itemsize": size}
        dt = np.dtype(layout)  # type: ignore[call-overload]
    return dt


def _btf_dtype(btf: Optional[Btf], type_id: int, size: int) -> tuple[Optional[np.dtype], str]:
    """The dtype for a key/value and, when BTF cannot give one (bitfields...), the reason."""
    if not size:
        return None, ""
    if btf is None or not type_id:
        return default_dtype(size), ""
    try:
        dt = btf.dtype(type_id)
    except BpfError as e:
        return np.dtype(f"V{size}"), str(e)  # raw bytes; reads refuse until the user gives a dtype
    if dt.itemsize != size:
        return np.dtype(f"V{size}"), f"BTF type is {dt.itemsize} bytes but the map's size is {size}"
    return dt, ""


def _record_types(btf: Optional[Btf]) -> dict[str, np.dtype]:
    """Ring/perf buffer record types declared with BPFKIT_RECORD_TYPE / BPFKIT_RINGBUF."""
    out: dict[str, np.dtype] = {}
    if btf is None:
        return out
    for t in btf:
        if t.kind == Kind.VAR and t.name.startswith(RECORD_MARKER):
            ptr = btf.resolve(t.type_id)
            if ptr.kind == Kind.PTR:
                try:
                    out[t.name[len(RECORD_MARKER):]] = btf.dtype(ptr.type_id)
                except BpfError:
                    pass
    return out
