"""The loader's entry points: :func:`open` a BPF object into a spec, :func:`load` it in one step.

A source is a path, the bytes of a ``.bpf.o``, or the name of an object shipped in the package
(``"syscount"``, ``"tests/count"``).

Example::

    spec = bpfkit.open("count.bpf.o")
    with bpfkit.load(spec) as obj: ...
"""
from __future__ import annotations

import builtins
import os
from typing import Optional, Union

from ..errors import BpfNotFoundError, ObjectFormatError
from ..shipped import find_object
from . import libbpf_open
from .object import Object
from .parts import Namespace
from .spec import ObjectSpec

__all__ = ["open", "load"]

Source = Union[str, os.PathLike, bytes]


def open(source: Source, name: Optional[str] = None) -> ObjectSpec:  # noqa: A001 - bpfkit.open
    """Parse a BPF object file (or its bytes, or a shipped object's name) into an editable
    :class:`ObjectSpec`.

    Example::

        spec = bpfkit.open("count.bpf.o"); spec.rodata.target_pid = 42
    """
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
    if data[:4] != b"\x7fELF":
        raise ObjectFormatError(f"{path or 'data'} is not an ELF file (expected a clang -target bpf object)")
    obj_name = name or (os.path.basename(path).split(".")[0] if path else "bpfkit")
    parts = libbpf_open.parse(data, obj_name)
    return ObjectSpec(name=obj_name, elf=data, programs=Namespace(parts.programs, "program"),
                      maps=Namespace(parts.maps, "map"), btf=parts.btf, sections=parts.sections, path=path)


def load(source: Union[Source, ObjectSpec], name: Optional[str] = None) -> Object:
    """Open and load in one step. Example: ``with bpfkit.load("x.bpf.o") as obj: ...``"""
    spec = source if isinstance(source, ObjectSpec) else open(source, name)
    return spec.load()


def _resolve(source: Union[str, os.PathLike]) -> Union[str, os.PathLike]:
    """Bare names of shipped objects ('syscount') resolve to the package's prebuilt .bpf.o."""
    if not os.path.exists(source):
        found = find_object(os.fspath(source))
        if found is not None:
            return found
    return source
