"""The loader's entry points: :func:`open` a BPF object into a spec, :func:`load` it in one step.

A source is a path, the bytes of a ``.bpf.o``, or the name of an object shipped in the package
(``"syscount"``, ``"tests/count"``). Objects are read by bpfkit's own parser whichever backend
loads them: ``loader="native"`` (bpfkit's loader) or ``"libbpf"`` (the system libbpf through
cffi); the default is ``$BPFKIT_LOADER`` or ``"native"``.

Example::

    spec = bpfkit.open("count.bpf.o")
    with bpfkit.load(spec) as obj: ...
"""
from __future__ import annotations

import builtins
import os
from typing import Optional, Union

from ..errors import BpfNotFoundError, BpfPermissionError, BpfUsageError, FeatureNotSupported, ObjectFormatError
from ..shipped import find_object
from .native import parse as native_parse
from .object import Object
from .parts import Namespace
from .spec import LOADERS, ObjectSpec, libbpf_backend

__all__ = ["open", "load", "default_loader"]

Source = Union[str, os.PathLike, bytes]


def default_loader() -> str:
    """The backend used when none is named: ``$BPFKIT_LOADER`` (``native`` or ``libbpf``), else native.

    Example::

        os.environ["BPFKIT_LOADER"] = "libbpf"; default_loader()   # 'libbpf'
    """
    env = os.environ.get("BPFKIT_LOADER", "").strip().lower()
    if env and env not in LOADERS:
        raise BpfUsageError(f"BPFKIT_LOADER={env!r}: expected one of {', '.join(LOADERS)}")
    return env or "native"


def open(source: Source, name: Optional[str] = None, loader: Optional[str] = None) -> ObjectSpec:  # noqa: A001
    """Parse a BPF object file (or its bytes, or a shipped object's name) into an editable
    :class:`ObjectSpec`; ``loader`` picks the backend that :meth:`ObjectSpec.load` uses.

    Example::

        spec = bpfkit.open("count.bpf.o"); spec.rodata.target_pid = 42
        spec = bpfkit.open("count.bpf.o", loader="libbpf")   # load through the system libbpf
    """
    loader = (loader or default_loader()).lower()
    if loader not in LOADERS:
        raise BpfUsageError(f"loader={loader!r}: expected one of {', '.join(LOADERS)}")
    path: Optional[str] = None
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        path = os.fspath(_resolve(source))
        try:
            with builtins.open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            raise BpfNotFoundError(f"BPF object {path!r} not found") from None
        except IsADirectoryError:
            raise BpfUsageError(f"{path!r} is a directory; give a .bpf.o file") from None
        except PermissionError:
            raise BpfPermissionError(f"cannot read BPF object {path!r}: permission denied") from None
    if data[:4] != b"\x7fELF":
        raise ObjectFormatError(f"{path or 'data'} is not an ELF file (expected a clang -target bpf object)")
    obj_name = name or (os.path.basename(path).split(".")[0] if path else "bpfkit")
    try:
        parts = native_parse.parse(data, obj_name)
    except FeatureNotSupported as e:
        if loader != "libbpf" or e.feature != "struct_ops":
            raise
        libbpf_backend()  # struct_ops: only libbpf can load them; it reads what bpfkit's reader validated
        from . import libbpf_open

        lparts = libbpf_open.parse(data, obj_name)
        return ObjectSpec(name=obj_name, elf=data, programs=Namespace(lparts.programs, "program"),
                          maps=Namespace(lparts.maps, "map"), btf=lparts.btf, sections=lparts.sections, path=path,
                          loader=loader)
    return ObjectSpec(name=obj_name, elf=data, programs=Namespace(parts.programs, "program"),
                      maps=Namespace(parts.maps, "map"), btf=parts.btf, sections=parts.sections, path=path,
                      loader=loader, model=parts.model)


def load(source: Union[Source, ObjectSpec], name: Optional[str] = None, loader: Optional[str] = None) -> Object:
    """Open and load in one step. Example: ``with bpfkit.load("x.bpf.o") as obj: ...``"""
    spec = source if isinstance(source, ObjectSpec) else open(source, name, loader)
    return spec.load()


def _resolve(source: Union[str, os.PathLike]) -> Union[str, os.PathLike]:
    """Bare names of shipped objects ('syscount') resolve to the package's prebuilt .bpf.o."""
    if not os.path.exists(source):
        found = find_object(os.fspath(source))
        if found is not None:
            return found
    return source
