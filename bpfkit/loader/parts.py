"""The parts of a BPF object's spec, editable before anything touches the kernel: programs
(:class:`ProgramSpec`), maps (:class:`MapSpec`), the name-or-attribute :class:`Namespace` both are
listed in, and :class:`Loaded`, what a loader backend hands back.

Example::

    spec.maps.counts.max_entries = 65536        # a MapSpec edit, checked here
    spec.programs.on_exec.autoload = False
"""
from __future__ import annotations

from dataclasses import MISSING, dataclass, field, fields
from functools import partial
from typing import Any, Callable, Generic, Iterator, NamedTuple, Optional, TypeVar

import numpy as np

from .. import _sys as sc
from .._sys import Resource
from ..errors import BpfNotFoundError, MapError
from ..maps.codec import plain_dtype
from .globals import INTERNAL_PREFIX

__all__ = ["Namespace", "ProgramSpec", "MapSpec", "MapDtypes", "Once", "Loaded", "value_dtype_of"]

T = TypeVar("T")


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

    def __setattr__(self, name: str, value: Any) -> None:
        # edits are checked here, before anything reaches libbpf or the kernel (u32 fields there)
        if name in ("prog_type", "expected_attach_type", "flags") and "name" in self.__dict__:
            value = sc.check_u32(f"program {self.name!r}: {name}", value)
        super().__setattr__(name, value)

    @classmethod
    def from_reader(cls, **values: Any) -> "ProgramSpec":
        """A ProgramSpec from an object reader's checked values, without the per-field edit checks
        of ``__setattr__`` (as :meth:`MapSpec.from_reader`).

        Example: ``ProgramSpec.from_reader(name="f", section="xdp", type="xdp", prog_type=6, expected_attach_type=0, insn_count=2)``"""
        return _from_reader(cls, values, _PROGSPEC_DEFAULTS, _PROGSPEC_REQUIRED)

    def __repr__(self) -> str:
        return f"<ProgramSpec {self.name} SEC({self.section!r}) {self.type} {self.insn_count} insns>"


class MapDtypes(NamedTuple):
    """A map's numpy view of its BTF: what :class:`MapSpec` and the live Map call their dtypes."""

    key_dtype: Optional[np.dtype]
    value_dtype: Optional[np.dtype]
    dtype_error: str
    record_dtype: Optional[np.dtype]


class Once(Generic[T]):
    """``make()``'s result, made on the first call and kept.

    Example: ``records = Once(partial(record_types, btf)); records()["events"]``"""

    __slots__ = ("_make", "_got")

    def __init__(self, make: Callable[[], T]) -> None:
        self._make: Optional[Callable[[], T]] = make
        self._got: Optional[T] = None

    def __call__(self) -> T:
        make = self._make
        if make is not None:
            self._got = make()
            self._make = None  # (what it needed, e.g. the reader's model, can go)
        return self._got  # type: ignore[return-value]


_DTYPE_FIELDS = MapDtypes._fields


def _none() -> None:
    return None


def _empty() -> str:
    return ""


def _merged(explicit: dict[str, Any], base: Callable[[], MapDtypes]) -> MapDtypes:
    return base()._replace(**explicit)


@dataclass
class MapSpec:
    """A map in the object. ``max_entries``, ``flags`` and the dtypes may be changed before load.

    A spec read from an object works out its dtypes (numpy's view of the BTF) when one is first
    asked for, here or on the live Map: a program's maps are mostly never read from Python, and
    making their dtypes was a sixth of an open+load.
    """

    name: str
    map_type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    key_type_id: int = 0
    value_type_id: int = 0
    # (defaults made per instance, so that the class has no attribute of these names: a reader's
    # spec leaves them out until asked, and __getattr__ makes them)
    key_dtype: Optional[np.dtype] = field(default_factory=_none)
    value_dtype: Optional[np.dtype] = field(default_factory=_none)
    # ring/perf buffers: the record type from BTF
    record_dtype: Optional[np.dtype] = field(default_factory=_none)
    # why BTF gave no usable dtype (e.g. bitfields): reads refuse with this
    dtype_error: str = field(default_factory=_empty)
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
                value = plain_dtype(np.dtype(value), f"map {self.name!r}: {name[:-6]}")
            except TypeError as exc:
                raise MapError(f"map {self.name!r}: {name}: {exc}") from None
            if value.itemsize != size:
                raise MapError(f"map {self.name!r}: {name} {value} is {value.itemsize} bytes, the map's "
                               f"{name[:-6]} is {size} bytes")
            self.__dict__["dtype_error"] = ""  # an explicit dtype replaces what BTF could not give
        super().__setattr__(name, value)

    def __getattr__(self, name: str) -> Any:
        # only reached for the dtypes of a reader's spec, not yet made (no class attribute has
        # their names); an explicit edit made before stays
        d = self.__dict__
        lazy = d.get("_dtypes")
        if lazy is None or name not in _DTYPE_FIELDS:
            raise AttributeError(f"'MapSpec' object has no attribute {name!r}")
        for f, value in zip(_DTYPE_FIELDS, lazy()):
            d.setdefault(f, value)
        return d[name]

    @classmethod
    def from_reader(cls, dtypes: Optional[Callable[[], MapDtypes]] = None, **values: Any) -> "MapSpec":
        """A MapSpec from an object reader's values, which it has checked already: skips the
        per-field edit checks of ``__setattr__`` (6 µs a map, every open). ``dtypes`` (a
        :class:`Once`) makes the dtypes when first asked for.

        Example: ``MapSpec.from_reader(name="counts", map_type=1, key_size=4, value_size=8, max_entries=1, flags=0)``"""
        if dtypes is None:
            return _from_reader(cls, values, _MAPSPEC_DEFAULTS, _MAPSPEC_REQUIRED)
        spec = _from_reader(cls, values, _MAPSPEC_LAZY_DEFAULTS, _MAPSPEC_REQUIRED)
        spec.__dict__["_dtypes"] = dtypes
        return spec

    def live_dtypes(self) -> Callable[[], MapDtypes]:
        """What a live Map made from this spec now calls its dtypes, made when it first needs
        them: later edits of this spec do not reach it.

        Example: ``Map(fd, ..., dtypes=spec.live_dtypes())``"""
        d = self.__dict__
        lazy = d.get("_dtypes")
        if lazy is None or all(f in d for f in _DTYPE_FIELDS):
            return partial(MapDtypes, self.key_dtype, self.value_dtype, self.dtype_error, self.record_dtype)
        explicit = {f: d[f] for f in _DTYPE_FIELDS if f in d}
        return Once(partial(_merged, explicit, lazy))

    @property
    def type(self) -> str:
        """Map type name, e.g. 'hash'."""
        return sc.MAP_TYPE_NAMES.get(self.map_type, str(self.map_type))

    def __repr__(self) -> str:
        if self.map_type == sc.BPF_MAP_TYPE_RINGBUF:  # no key or value: its size and what it carries
            return f"<MapSpec {self.name} ringbuf {_size(self.max_entries)} record={_dt(self.record_dtype)}>"
        if self.map_type == sc.BPF_MAP_TYPE_PERF_EVENT_ARRAY:
            return f"<MapSpec {self.name} perf_event_array record={_dt(self.record_dtype)}>"
        if self.internal:  # a global-data section: its variables, as spec.rodata/obj.bss list them
            names = [n for n in (self.value_dtype.names or ()) if not n.startswith(INTERNAL_PREFIX)] \
                if self.value_dtype is not None else []
            return f"<MapSpec {self.name} global variables: {', '.join(names) or 'none'}>"
        key = _dt(self.key_dtype) if self.key_dtype is not None else f"{self.key_size}B"
        value = _dt(self.value_dtype) if self.value_dtype is not None else f"{self.value_size}B"
        return f"<MapSpec {self.name} {self.type} key={key} value={value} max_entries={self.max_entries}>"


def _from_reader(cls: type[T], values: dict[str, Any], defaults: dict[str, Any], required: frozenset[str]) -> T:
    keys = values.keys()
    if not required <= keys or not keys <= _FIELDS[cls]:  # (two subset tests in C; the sets only for an error)
        unknown = keys - defaults.keys() - required
        missing = required - keys
        raise TypeError(f"{cls.__name__}.from_reader: unknown fields {sorted(unknown)}, missing {sorted(missing)}")
    spec = cls.__new__(cls)
    spec.__dict__.update(defaults)
    spec.__dict__.update(values)
    return spec


def value_dtype_of(dtypes: Callable[[], MapDtypes]) -> np.dtype:
    """The value dtype ``dtypes`` make, for a global-data section's GlobalVars (a section with
    globals has one).

    Example: ``GlobalVars(buf, partial(value_dtype_of, dtypes), ".bss", lazy=True)``"""
    dt = dtypes().value_dtype
    assert dt is not None
    return dt


def _defaults(cls: type) -> dict[str, Any]:
    return {f.name: (f.default if f.default is not MISSING else f.default_factory())  # type: ignore[operator]
            for f in fields(cls) if f.default is not MISSING or f.default_factory is not MISSING}


_MAPSPEC_DEFAULTS = _defaults(MapSpec)
_MAPSPEC_LAZY_DEFAULTS = {k: v for k, v in _MAPSPEC_DEFAULTS.items() if k not in _DTYPE_FIELDS}
_MAPSPEC_REQUIRED = frozenset(f.name for f in fields(MapSpec) if f.name not in _MAPSPEC_DEFAULTS)
_PROGSPEC_DEFAULTS = _defaults(ProgramSpec)
_PROGSPEC_REQUIRED = frozenset(f.name for f in fields(ProgramSpec) if f.name not in _PROGSPEC_DEFAULTS)
_FIELDS: dict[type, frozenset[str]] = {cls: frozenset(f.name for f in fields(cls)) for cls in (MapSpec, ProgramSpec)}


def _dt(dtype: Optional[np.dtype]) -> str:
    if dtype is None:
        return "unknown (declare it with BPFKIT_RINGBUF/BPFKIT_PERFBUF, or pass dtype= to the reader)"
    return str(dtype)


def _size(n: int) -> str:
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


@dataclass
class Loaded(Resource):
    """What a loader backend hands back: an fd per program and per map (internal maps under their
    section name), owned by the backend until :meth:`close` (``release`` closes them its way); closed
    when collected, so an exception before the live Object takes it leaves nothing behind."""

    prog_fds: dict[str, int]
    map_fds: dict[str, int]
    release: Callable[[], None]

    def close(self) -> None:
        """Close every fd. Idempotent."""
        release, self.release = getattr(self, "release", _nothing), _nothing
        release()


def _nothing() -> None:
    pass
