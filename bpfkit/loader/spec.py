"""The object spec: what a BPF object contains, editable before anything touches the kernel.

``bpfkit.open()`` parses an ELF object into an :class:`ObjectSpec`: programs, maps and global
variables. Change constants and map sizes on the spec, then ``spec.load()`` creates the live
:class:`~bpfkit.loader.object.Object`. A spec can be loaded any number of times: each load starts
again from the ELF bytes with the spec's edits applied.

Example::

    spec = bpfkit.open("count.bpf.o")
    spec.rodata.target_pid = 1234
    spec.maps.counts.max_entries = 65536
    print(spec.programs)
    with spec.load() as obj: ...
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from ..btf import Btf
from ..errors import FeatureNotSupported
from . import views
from .globals import GlobalVars
from .native import backend as native_backend
from .object import Object
from .parts import MapSpec, Namespace, ProgramSpec

__all__ = ["ObjectSpec", "LOADERS", "libbpf_backend"]

LOADERS = ("native", "libbpf")


def libbpf_backend() -> Any:
    """The libbpf backend module, imported on first use: cffi and libbpf only when asked for.

    Example::

        libbpf_backend().load(spec.elf, spec.name, spec.programs, spec.maps, spec.sections)
    """
    try:
        from . import libbpf_load
    except ImportError as e:
        raise FeatureNotSupported(f"loader='libbpf' needs cffi ({e}): pip install 'bpfkit[libbpf]' (and the "
                                  "system libbpf: apt-get install libbpf1), or use the default loader='native'",
                                  feature="libbpf") from None
    return libbpf_load


@dataclass
class ObjectSpec:
    """A parsed BPF object. Nothing exists in the kernel until :meth:`load`.

    Example::

        spec = bpfkit.open("count")
        spec.maps.counts.max_entries = 4096
        obj = spec.load()
    """

    name: str
    elf: bytes
    programs: Namespace[ProgramSpec]
    maps: Namespace[MapSpec]
    btf: Optional[Btf]
    sections: dict[str, GlobalVars] = field(default_factory=dict)
    path: Optional[str] = None
    loader: str = "native"  # the backend load() uses: "native" or "libbpf"
    model: Any = field(default=None, repr=False)  # the native reader's model, for the native backend

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

    def load(self) -> Object:
        """Create maps and programs in the kernel; returns the live Object (a context manager).

        Example: ``with spec.load() as obj: ...``"""
        if self.loader == "libbpf":
            loaded = libbpf_backend().load(self.elf, self.name, self.programs, self.maps, self.sections)
        else:
            if self.model is None:
                from .native.parse import parse

                self.model = parse(self.elf, self.name).model
            loaded = native_backend.load(self.model, self.name, self.programs, self.maps, self.sections)
        return Object(self.name, self.programs, self.maps, self.btf, loaded, self.sections)

    def __repr__(self) -> str:
        return f"<ObjectSpec {self.name}: programs={list(self.programs)} maps={list(self.maps)}>"

    def _facts(self) -> list[tuple[str, object]]:
        return [("path", self.path or "(bytes)"), ("loader", self.loader), ("programs", len(self.programs)),
                ("maps", sum(not m.internal for m in self.maps.values()))]

    def _repr_html_(self) -> str:
        return views.html(f"ObjectSpec {self.name}", self._facts(), views.spec_tables(self))

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self) if cycle else views.text(f"ObjectSpec {self.name}", self._facts(), views.spec_tables(self)))
