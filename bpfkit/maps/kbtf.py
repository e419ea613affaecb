"""BTF for maps made from Python: numpy dtype → BTF blob → kernel, and back from a map's BTF id.

Maps created with :meth:`bpfkit.maps.Map.create` carry BTF built from their dtypes, so
``bpftool map dump`` shows field names and :meth:`Map.from_id` / :meth:`Map.from_pinned`
recover the same structured dtypes later. Local-storage maps (task/inode/sk/cgroup) cannot
be created without it.

Example::

    fd, key_id, value_id = load_dtypes(np.dtype("u4"), np.dtype([("n", "u8"), ("comm", "S16")]))
"""
from __future__ import annotations

import ctypes
import os
import struct
from ctypes import Structure, c_uint32, c_uint64
from typing import Optional

import numpy as np

from .. import syscall as sc
from ..btf import Btf
from ..errors import BpfError, MapError

_KIND_INT, _KIND_ARRAY, _KIND_STRUCT, _KIND_FLOAT = 1, 3, 4, 16
_INT_SIGNED, _INT_CHAR, _INT_BOOL = 1, 2, 4


class _BtfLoadAttr(Structure):
    _fields_ = [("btf", c_uint64), ("btf_log_buf", c_uint64), ("btf_size", c_uint32),
                ("btf_log_size", c_uint32), ("btf_log_level", c_uint32)]


class _BtfInfo(Structure):
    _fields_ = [("btf", c_uint64), ("btf_size", c_uint32), ("id", c_uint32), ("name", c_uint64),
                ("name_len", c_uint32), ("kernel_btf", c_uint32)]


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
        enc = _INT_CHAR if char else _INT_BOOL if boolean else _INT_SIGNED if signed else 0
        blob = struct.pack("<IIII", self.name(name), _KIND_INT << 24, size, (enc << 24) | (size * 8))
        return self._add(("int", name), blob)

    def array(self, elem: int, n: int) -> int:
        index = self.int_type(4, False)
        blob = struct.pack("<IIIIII", 0, _KIND_ARRAY << 24, 0, elem, index, n)
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
            head = struct.pack("<III", self.name(name), (_KIND_STRUCT << 24) | len(members), dt.itemsize)
            blob = head + b"".join(struct.pack("<III", *m) for m in members)
            self.types.append(blob)
            return len(self.types)
        if dt.kind in "ui" and dt.itemsize in (1, 2, 4, 8):
            return self.int_type(dt.itemsize, dt.kind == "i")
        if dt.kind == "b":
            return self.int_type(1, False, boolean=True)
        if dt.kind == "f" and dt.itemsize in (4, 8):
            blob = struct.pack("<III", self.name("double" if dt.itemsize == 8 else "float"), _KIND_FLOAT << 24,
                               dt.itemsize)
            return self._add(("float", dt.itemsize), blob)
        if dt.kind == "S":
            return self.array(self.int_type(1, False, char=True), dt.itemsize)
        if dt.kind == "V":
            return self.array(self.int_type(1, False), dt.itemsize)
        raise MapError(f"dtype {dt} has no BTF equivalent (use integers, floats, bytes, structs, subarrays)")

    def blob(self) -> bytes:
        types = b"".join(self.types)
        hdr = struct.pack("<HBBIIIII", 0xEB9F, 1, 0, 24, 0, len(types), len(types), len(self.strings))
        return hdr + types + bytes(self.strings)


def encode(key_dtype: Optional[np.dtype], value_dtype: Optional[np.dtype],
           value_name: str = "value") -> tuple[bytes, int, int]:
    """BTF blob describing ``key_dtype``/``value_dtype``; returns ``(blob, key_type_id, value_type_id)``
    (0 for a missing side)."""
    enc = _Encoder()
    kid = enc.dtype(key_dtype, "key") if key_dtype is not None else 0
    vid = enc.dtype(value_dtype, value_name) if value_dtype is not None else 0
    return enc.blob(), kid, vid


def btf_load(blob: bytes) -> int:
    """BPF_BTF_LOAD; returns the BTF fd. On rejection the kernel's log is in the error message."""
    data = ctypes.create_string_buffer(blob, len(blob))
    log = ctypes.create_string_buffer(64 * 1024)
    attr = _BtfLoadAttr(btf=ctypes.addressof(data), btf_size=len(blob))
    ret, err = sc.bpf_errno(sc.BPF_BTF_LOAD, attr)
    if ret >= 0:
        return ret
    attr = _BtfLoadAttr(btf=ctypes.addressof(data), btf_size=len(blob), btf_log_buf=ctypes.addressof(log),
                        btf_log_size=len(log), btf_log_level=1)
    ret, err = sc.bpf_errno(sc.BPF_BTF_LOAD, attr)
    if ret >= 0:
        return ret
    text = log.value.decode(errors="replace").strip().splitlines()
    raise BpfError.from_errno(err, "BPF_BTF_LOAD of map key/value types" + (f": {text[-1]}" if text else ""))


def load_dtypes(key_dtype: Optional[np.dtype], value_dtype: Optional[np.dtype]) -> tuple[int, int, int]:
    """Load BTF for the dtypes; returns ``(btf_fd, key_type_id, value_type_id)``. Caller closes the fd."""
    blob, kid, vid = encode(key_dtype, value_dtype)
    return btf_load(blob), kid, vid


def raw_btf_by_id(btf_id: int) -> bytes:
    """The raw BTF blob of kernel BTF object ``btf_id``."""
    fd = sc.btf_fd_by_id(btf_id)
    try:
        info = _BtfInfo()
        sc.bpf(sc.BPF_OBJ_GET_INFO_BY_FD,
               sc.InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info), info=ctypes.addressof(info)), f"btf id {btf_id}")
        buf = ctypes.create_string_buffer(info.btf_size)
        info2 = _BtfInfo(btf=ctypes.addressof(buf), btf_size=info.btf_size)
        sc.bpf(sc.BPF_OBJ_GET_INFO_BY_FD,
               sc.InfoAttr(bpf_fd=fd, info_len=ctypes.sizeof(info2), info=ctypes.addressof(info2)),
               f"btf id {btf_id}")
        return buf.raw[: info2.btf_size]
    finally:
        os.close(fd)


def dtypes_from_kernel(btf_id: int, key_type_id: int, value_type_id: int) -> tuple[Optional[np.dtype],
                                                                                   Optional[np.dtype]]:
    """Key/value dtypes recorded in a map's BTF (None where unknown or not representable)."""
    if not btf_id:
        return None, None
    try:
        btf = Btf.parse(raw_btf_by_id(btf_id))
    except BpfError:
        return None, None

    def one(tid: int) -> Optional[np.dtype]:
        if not tid:
            return None
        try:
            return btf.dtype(tid)
        except (BpfError, IndexError):
            return None

    return one(key_type_id), one(value_type_id)
