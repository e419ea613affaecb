"""numpy dtypes for an object's maps from its BTF: keys and values, ring/perf buffer record types
(declared by ``bpfkit.h``'s ``BPFKIT_RINGBUF``), and global-data sections.

Example::

    dt, err = btf_dtype(btf, map_value_type_id, 8)   # (dtype('uint64'), '')
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np

from ..btf import Btf, Kind, default_dtype
from ..errors import BpfError, BpfNotFoundError
from ..maps.kinds import EVENT_TYPES
from .parts import MapDtypes

__all__ = ["RECORD_MARKER", "DROPS_PREFIX", "WAKE_NS_PREFIX", "btf_dtype", "record_types", "datasec_dtype"]

RECORD_MARKER = "__bpfkit_record__"   # bpfkit.h: a pointer to a map's record type, by map name
DROPS_PREFIX = "__bpfkit_drops__"     # bpfkit.h: a map's count of failed submissions
WAKE_NS_PREFIX = "__bpfkit_wake_ns__"  # bpfkit.h: a ring's adaptive wake-up window (rodata, ns)


def datasec_dtype(btf: Btf, section: str, size: int) -> np.dtype:
    try:
        return btf.datasec_dtype(section, size)
    except BpfNotFoundError:
        return np.dtype({"names": [], "formats": [], "itemsize": size})


def btf_dtype(btf: Optional[Btf], type_id: int, size: int) -> tuple[Optional[np.dtype], str]:
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


def map_dtypes(btf: Optional[Btf], name: str, map_type: int, key_type_id: int, key_size: int, value_type_id: int,
               value_size: int, records: Callable[[], dict[str, np.dtype]]) -> MapDtypes:
    """A map's dtypes from BTF: key, value, why BTF gave none (if so), and for a ring or perf
    buffer the record type ``records()`` names for it.

    Example: ``map_dtypes(btf, "counts", 1, 7, 4, 8, 8, dict).value_dtype   # dtype('uint64')``"""
    key, kerr = btf_dtype(btf, key_type_id, key_size)
    value, verr = btf_dtype(btf, value_type_id, value_size)
    errs = [f"{what} type: {e}" for what, e in (("key", kerr), ("value", verr)) if e]
    # (only a ring or perf buffer carries records: the other maps' dtypes need no look for them)
    record = records().get(name) if map_type in EVENT_TYPES else None
    return MapDtypes(key, value, f"map {name!r}: " + "; ".join(errs) if errs else "", record)


def record_types(btf: Optional[Btf]) -> dict[str, np.dtype]:
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
