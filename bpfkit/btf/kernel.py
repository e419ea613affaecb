"""BTF and the kernel: the running kernel's BTF, and map key/value types loaded into or read back from it.

Example::

    btf = vmlinux_btf()                                   # parsed once per process
    btf, key_id, value_id = load_dtypes(np.dtype("u4"), np.dtype("u8"))
"""
from __future__ import annotations

import io

from functools import lru_cache
from typing import Optional

import numpy as np

from .. import _sys as sc
from ..errors import BpfError
from .encode import encode
from .types import Btf

__all__ = ["vmlinux_btf", "load_dtypes", "dtypes_from_kernel"]


@lru_cache(maxsize=1)
def vmlinux_btf() -> Btf:
    """The running kernel's BTF, parsed once per process (~0.7 s) and shared by every caller
    (feature probes, tracepoint argument listing, dtypes of kernel structs).

    Example::

        btf = vmlinux_btf()
        btf.dtype(btf.find("task_struct", Kind.STRUCT).id)
    """
    return Btf.load_vmlinux()


def load_dtypes(key_dtype: Optional[np.dtype], value_dtype: Optional[np.dtype]) -> tuple[io.FileIO, int, int]:
    """Load BTF describing the dtypes; returns ``(btf, key_type_id, value_type_id)``, the BTF fd inside
    an ``io.FileIO`` the caller closes (it closes itself if dropped).

    Example::

        btf, kid, vid = load_dtypes(np.dtype("u4"), np.dtype([("n", "u8")]))
        with btf: sc.map_create(..., btf_fd=btf.fileno(), btf_key_type_id=kid, ...)
    """
    blob, kid, vid = encode(key_dtype, value_dtype)
    return sc.btf_load_owned(blob, "map key/value types"), kid, vid


def dtypes_from_kernel(btf_id: int, key_type_id: int, value_type_id: int) -> tuple[Optional[np.dtype],
                                                                                   Optional[np.dtype]]:
    """Key/value dtypes recorded in a map's BTF (None where unknown or not representable).

    Example::

        info = sc.map_info(fd)
        kdt, vdt = dtypes_from_kernel(info.btf_id, info.btf_key_type_id, info.btf_value_type_id)
    """
    if not btf_id:
        return None, None
    try:
        btf = Btf.parse(sc.btf_raw_by_id(btf_id))
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
