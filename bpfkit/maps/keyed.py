"""Per-key map access at syscall speed: ``m[k]``, ``m[k] = v``, ``del m[k]``, ``k in m``, ``keys()``.

The general path converts every key and value through numpy (range checks, struct fields, per-CPU
slots) and hands numpy buffers to the kernel: ~10 us a call, for a syscall of under 1 us. A
:class:`Keyed` keeps one :class:`~bpfkit._sys.ElemCall` per map (buffers and syscall arguments made
once) and packs plain integer keys and plain number values with :mod:`struct`; everything else
(structs, per-CPU values, odd keys) still goes through the map's own codec, into the same
buffers. The answers are the general path's: the same types, the same errors.

A Keyed is used under a non-blocking lock: another thread (the foreign call releases the GIL) or
a signal handler that reads the map meanwhile takes the general path, never the shared buffers.

Example::

    k = Keyed(m)              # m: a Map whose class codes keys and values the Map way
    k.get(1234, MISSING)      # the value, or MISSING
"""
from __future__ import annotations

import struct
import threading
from typing import Any, Optional

import numpy as np

from .. import _sys as sc

__all__ = ["Keyed", "MISSING", "struct_for"]

MISSING = object()
ENOENT = 2

_CODES = {("u", 1): "B", ("u", 2): "H", ("u", 4): "I", ("u", 8): "Q", ("i", 1): "b", ("i", 2): "h",
          ("i", 4): "i", ("i", 8): "q", ("f", 2): "e", ("f", 4): "f", ("f", 8): "d", ("b", 1): "?"}


def struct_for(dt: Optional[np.dtype]) -> Optional[struct.Struct]:
    """A :class:`struct.Struct` for one plain number of ``dt`` (None for structs, arrays, bytes).

    Example::

        struct_for(np.dtype("<u8")).format   # '<Q'
    """
    if dt is None or dt.names is not None or dt.shape or dt.kind not in "iufb":
        return None
    code = _CODES.get((dt.kind, dt.itemsize))
    if code is None:
        return None
    return struct.Struct((">" if dt.byteorder == ">" else "<") + code)


class Keyed:
    """One map's fast element access; see the module docstring."""

    __slots__ = ("call", "lock", "fd", "kpack", "vpack", "vdt", "nvals", "map")

    def __init__(self, m: Any) -> None:  # a Map (this module sits below map.py, which uses it)
        vdt, vshape = m._value_layout()
        self.nvals = vshape[0] if vshape else 1
        self.vdt = vdt
        self.fd = m.fd
        self.call = sc.ElemCall(self.fd, m.key_size, vdt.itemsize * self.nvals)
        self.lock = threading.Lock()
        self.kpack = struct_for(m.key_dtype)
        self.vpack = None if m.percpu else struct_for(m.value_dtype)
        self.map = m

    def put_key(self, key: Any) -> None:
        """Write ``key`` into the key buffer (struct for plain ints, the map's codec otherwise)."""
        kp = self.kpack
        if kp is not None and isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            try:
                kp.pack_into(self.call.key, 0, key)
                return
            except struct.error:
                pass  # out of range: the codec says so in its own words
        self.call.key.raw = self.map.key_bytes(key).tobytes()

    def value(self) -> Any:
        """The value buffer decoded as the general path does."""
        vp = self.vpack
        if vp is not None:
            return vp.unpack_from(self.call.value)[0]
        arr = np.frombuffer(bytearray(self.call.value), self.vdt, count=self.nvals)
        return self.map._decode_value(arr)

    def put_value(self, value: Any) -> None:
        """Write ``value`` into the value buffer."""
        vp = self.vpack
        if vp is not None and isinstance(value, (int, float, np.integer, np.floating)) and \
                not isinstance(value, bool) and (self.vdt.kind != "f" or not isinstance(value, (int, np.integer))):
            if self.vdt.kind in "iu" and isinstance(value, (float, np.floating)):
                pass  # the codec refuses floats into integers, with its message
            else:
                try:
                    vp.pack_into(self.call.value, 0, value)
                    return
                except struct.error:
                    pass
        self.call.value.raw = self.map._encode_value(value).tobytes()

    def get(self, key: Any, missing: Any) -> Any:
        """The value of ``key``, or ``missing``; raises BpfError for other failures. (put_key()
        and value() written out for plain ints: m[k]'s whole cost is a handful of calls.)"""
        call, kp, vp = self.call, self.kpack, self.vpack
        if kp is not None and type(key) is int:
            try:
                kp.pack_into(call.key, 0, key)
            except struct.error:
                self.put_key(key)
        else:
            self.put_key(key)
        err = call.lookup()
        if err == 0:
            return vp.unpack_from(call.value)[0] if vp is not None else self.value()
        if err == ENOENT:
            return missing
        raise sc.errno_error(sc.BPF_MAP_LOOKUP_ELEM, self.map._what(), err)

    def contains(self, key: Any) -> bool:
        """Whether ``key`` is in the map."""
        self.put_key(key)
        err = self.call.lookup()
        if err and err != ENOENT:
            raise sc.errno_error(sc.BPF_MAP_LOOKUP_ELEM, self.map._what(), err)
        return err == 0

    def set(self, key: Any, value: Any, flags: int) -> int:
        """Update ``key`` to ``value``: 0 or the errno (the caller words the error)."""
        self.put_key(key)
        self.put_value(value)
        return self.call.update(flags)

    def delete(self, key: Any) -> int:
        """Delete ``key``: 0 or the errno."""
        self.put_key(key)
        return self.call.delete()
