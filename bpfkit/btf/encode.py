"""numpy dtype → BTF blob: the types of maps made from Python.

Maps created with :meth:`bpfkit.maps.Map.create` carry BTF built from their dtypes, so
``bpftool map dump`` shows field names and :meth:`Map.from_id` / :meth:`Map.from_pinned`
recover the same structured dtypes later.

Example::

    blob, key_id, value_id = encode(np.dtype("u4"), np.dtype([("n", "u8"), ("comm", "S16")]))
"""
from __future__ import annotations

import struct
from typing import Optional

import numpy as np

from ..errors import MapError
from .types import BTF_MAGIC, INT_BOOL, INT_CHAR, INT_SIGNED, Kind

__all__ = ["encode"]


class _Encoder:
    """Accumulates BTF types and strings; type ids start at 1."""

    def __init__(self) -> None:
        self.types: list[bytes] = []
        self.strings = bytearray(b"\0")
        self._str_off: dict[str, int] = {"": 0}
        self._cache: dict[tuple[object, ...], int] = {}

    def name(self, s: str) -> int:
        if s not in self._str_off:
            self._str_off[s] = len(self.strings)
            self.strings += s.encode() + b"\0"
        return self._str_off[s]

    def _add(self, key: tuple[object, ...], blob: bytes) -> int:
        if key not in self._cache:
            self.types.append(blob)
            self._cache[key] = len(self.types)
        return self._cache[key]

    def int_type(self, size: int, signed: bool, char: bool = False, boolean: bool = False) -> int:
        name = "char" if char else "bool" if boolean else f"{'s' if signed else 'u'}{size * 8}"
        # the kernel accepts at most one encoding bit
        enc = INT_CHAR if char else INT_BOOL if boolean else INT_SIGNED if signed else 0
        blob = struct.pack("<IIII", self.name(name), Kind.INT << 24, size, (enc << 24) | (size * 8))
        return self._add(("int", name), blob)

    def array(self, elem: int, n: int) -> int:
        index = self.int_type(4, False)
        blob = struct.pack("<IIIIII", 0, Kind.ARRAY << 24, 0, elem, index, n)
        return self._add(("array", elem, n), blob)

    def dtype(self, dt: np.dtype, name: str = "") -> int:
        if dt.subdtype is not None:
            base, shape = dt.subdtype
            tid = self.dtype(base)
            for n in reversed(shape):
                tid = self.array(tid, n)
            return tid
        if dt.names is not None:
            members = []
            # the kernel wants members in offset order; numpy allows any
            for f in sorted(dt.names, key=lambda n: dt.fields[n][1]):  # type: ignore[index]
                fdt, off = dt.fields[f][:2]  # type: ignore[index]
                members.append((self.name(f), self.dtype(fdt), off * 8))
            head = struct.pack("<III", self.name(name), (Kind.STRUCT << 24) | len(members), dt.itemsize)
            blob = head + b"".join(struct.pack("<III", *m) for m in members)
            self.types.append(blob)
            return len(self.types)
        if dt.kind in "ui" and dt.itemsize in (1, 2, 4, 8):
            return self.int_type(dt.itemsize, dt.kind == "i")
        if dt.kind == "b":
            return self.int_type(1, False, boolean=True)
        if dt.kind == "f" and dt.itemsize in (4, 8):
            blob = struct.pack("<III", self.name("double" if dt.itemsize == 8 else "float"), Kind.FLOAT << 24,
                               dt.itemsize)
            return self._add(("float", dt.itemsize), blob)
        if dt.kind == "S":
            return self.array(self.int_type(1, False, char=True), dt.itemsize)
        if dt.kind == "V":
            return self.array(self.int_type(1, False), dt.itemsize)
        raise MapError(f"dtype {dt} has no BTF equivalent (use integers, floats, bytes, structs, subarrays)")

    def blob(self) -> bytes:
        types = b"".join(self.types)
        hdr = struct.pack("<HBBIIIII", BTF_MAGIC, 1, 0, 24, 0, len(types), len(types), len(self.strings))
        return hdr + types + bytes(self.strings)


def encode(key_dtype: Optional[np.dtype], value_dtype: Optional[np.dtype],
           value_name: str = "value") -> tuple[bytes, int, int]:
    """BTF blob describing ``key_dtype``/``value_dtype``; returns ``(blob, key_type_id, value_type_id)``
    (0 for a missing side)."""
    enc = _Encoder()
    kid = enc.dtype(key_dtype, "key") if key_dtype is not None else 0
    vid = enc.dtype(value_dtype, value_name) if value_dtype is not None else 0
    return enc.blob(), kid, vid
