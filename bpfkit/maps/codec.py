"""numpy ⇄ map bytes: how Python keys and values become the buffers the kernel reads, and back.

Conversions refuse what numpy would silently change: floats into integers, integers out of range
(negatives into unsigned), strings parsed as numbers, one plain value spread over every field of
a struct. Per-CPU values are laid out with each CPU's slot rounded up to 8 bytes.

Example::

    as_array(1234, np.dtype("u4"), "key")          # array([1234], dtype=uint32)
    convert([1.5], np.dtype("u8"), "value")         # MapError: 1.5 is a float ...
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Union

import numpy as np

from ..btf import default_dtype
from ..errors import BpfUsageError, MapError

__all__ = ["DTypeLike", "RECORD_LIKE", "dtype_arg", "plain_dtype", "fit", "checked", "slot_dtype", "as_array", "as_array_n",
           "scalar", "convert", "shape_of", "dname", "reduce_cpus", "columns", "records_array"]

DTypeLike = Union[np.dtype, str, type, list, tuple, None]


def reduce_cpus(values: np.ndarray, fn: Callable[..., Any]) -> np.ndarray:
    if values.dtype.names is None:
        return np.asarray(fn(values, axis=1))
    out = np.zeros(values.shape[0], dtype=values.dtype)
    for f in values.dtype.names:
        out[f] = fn(values[f], axis=1)
    return out


def columns(arr: np.ndarray, prefix: str, cols: dict[str, Any]) -> None:
    if arr.dtype.names is not None:
        for f in arr.dtype.names:
            sub = arr[f]
            if sub.dtype.kind == "S":
                cols[f] = [b.decode(errors="replace") for b in sub]
            elif sub.ndim > 1:
                cols[f] = list(sub)
            else:
                cols[f] = sub
    elif arr.ndim > 1:
        for c in range(arr.shape[1]):
            cols[f"{prefix}_{c}"] = arr[:, c]
    else:
        cols[prefix] = arr


def dtype_arg(dt: DTypeLike, what: str = "dtype") -> Optional[np.dtype]:
    """A key/value dtype argument (a dtype, anything np.dtype takes, or a size in bytes) as a
    plain-data dtype; None stays None."""
    if dt is None:
        return None
    if isinstance(dt, int) and not isinstance(dt, bool):
        if dt < 0 or dt >= 1 << 32:
            raise BpfUsageError(f"{what} size {dt} is out of range: a size in bytes is 1..2**32-1")
        return default_dtype(dt) if dt else None
    try:
        out = np.dtype(dt)
    except (TypeError, ValueError) as exc:
        raise MapError(f"not a dtype: {dt!r} ({exc})") from None
    return plain_dtype(out, what)


def plain_dtype(dt: np.dtype, what: str = "dtype") -> np.dtype:
    """``dt`` if it is plain data; object dtypes (or structs holding one) are refused: their bytes
    are pointers into this process, which the kernel would store and a later read would turn
    back into objects that no longer exist (a crash)."""
    if dt.hasobject:
        raise BpfUsageError(f"{what} dtype {dt} holds Python objects (pointers into this process), which "
                            "cannot go into a BPF map; use plain numbers, fixed-size bytes ('S16') or "
                            "structs of them")
    return dt


def fit(dt: Optional[np.dtype], size: int) -> Optional[np.dtype]:
    return dt if dt is not None and dt.itemsize == size else None


_MISSING = object()


def slot_dtype(value_dtype: Optional[np.dtype], slot: int) -> np.dtype:
    assert value_dtype is not None
    return np.dtype({"names": ["v"], "formats": [value_dtype], "offsets": [0], "itemsize": slot})


def checked(dt: Optional[np.dtype], size: int, what: str, name: str) -> np.dtype:
    if dt is None:
        return default_dtype(size)
    dt = plain_dtype(np.dtype(dt), what)
    if dt.itemsize != size:
        raise MapError(f"map {name!r}: {what} dtype {dt} is {dt.itemsize} bytes but the map's {what} "
                       f"size is {size}")
    return dt


def as_array(obj: Any, dt: Optional[np.dtype], what: str) -> np.ndarray:
    """One key/value as a 1-element array of ``dt`` (raw ``bytes`` of the right size pass as is)."""
    assert dt is not None
    if isinstance(obj, np.ndarray) and obj.dtype == dt and obj.size == 1:
        return np.ascontiguousarray(obj.reshape(1))
    if isinstance(obj, (int, np.integer)) and dt.kind in "iu" and not dt.shape:
        # the common m[pid] case, kept cheap (the general path costs ~10x): a range check only
        lo, hi = int_bounds(dt)
        if lo <= obj <= hi:
            return np.array([obj], dt)
    if isinstance(obj, (bytes, bytearray)) and dt.kind not in "S":
        if len(obj) != dt.itemsize:
            raise MapError(f"{what}: {len(obj)} bytes given, {dt.itemsize} expected")
        return np.frombuffer(bytes(obj), dtype=dt).copy()
    arr = convert(obj, dt, what)
    if arr.size != int(np.prod(dt.shape, dtype=np.int64)):
        raise MapError(f"{what}: one {dname(dt)} expected, got shape {shape_of(arr, dt)}")
    return np.ascontiguousarray(arr.reshape((1,) + dt.shape))


def scalar(x: Any) -> Any:
    """Plain ints/floats for scalar dtypes; records and bytes stay numpy."""
    if isinstance(x, np.generic) and x.dtype.names is None and x.dtype.kind in "iufb":
        return x.item()
    return x


def as_array_n(obj: Any, dt: np.dtype, what: str) -> np.ndarray:
    """Many keys/values as a contiguous 1-D array of ``dt`` (rows of a subarray dtype stay 2-D)."""
    if isinstance(obj, np.ndarray) and obj.dtype == dt:
        return np.ascontiguousarray(obj.reshape(-1))
    arr = convert(obj, dt, what)
    return np.ascontiguousarray(arr.reshape((-1,) + dt.shape))


@functools.lru_cache(maxsize=None)
def int_bounds(dt: np.dtype) -> tuple[int, int]:
    info = np.iinfo(dt)
    return int(info.min), int(info.max)


def dname(dt: np.dtype) -> str:
    """A short name for error messages (a struct's full dtype repr is unreadable)."""
    return f"struct({', '.join(dt.names)})" if dt.names else str(dt)


def shape_of(arr: np.ndarray, dt: np.dtype) -> tuple[int, ...]:
    """The element shape of ``arr`` (its shape minus the trailing subarray dims of ``dt``)."""
    return arr.shape[:arr.ndim - len(dt.shape)]


# what a single struct element may be given as
RECORD_LIKE = (tuple, dict, np.void)


def convert(obj: Any, dt: np.dtype, what: str) -> np.ndarray:
    """``obj`` (one element or many) as an array of ``dt``; a subarray dtype gives its base dtype
    with the subarray dims last. Refuses what numpy would silently change: floats into
    integers, integers out of range (negatives into unsigned), strings parsed as numbers, one
    plain value spread over every field of a struct. Element shape is kept (``()`` for one)."""
    if isinstance(obj, np.ndarray) and obj.dtype == dt:
        return obj
    if dt.names is not None:
        return convert_struct(obj, dt, what)
    if dt.base.names is not None:  # a subarray of structs: convert field by field
        return convert_struct(obj, dt.base, what)
    try:
        src = obj if isinstance(obj, np.ndarray) else np.asarray(obj)
    except (ValueError, TypeError) as exc:
        raise MapError(f"{what}: cannot convert {obj!r} to {dt}: {exc}") from None
    if dt.shape and src.shape[src.ndim - len(dt.shape):] != dt.shape:
        raise MapError(f"{what}: shape {src.shape} does not end in {dt.shape} as {dt} needs")
    if src.dtype.names is not None:
        raise MapError(f"{what}: a {dname(src.dtype)} given for the plain dtype {dt}; "
                       "pass the field you mean, e.g. arr['count']")
    refuse_lossy(src, dt, what)
    try:
        return np.asarray(src, dtype=dt.base)
    except (ValueError, TypeError, OverflowError) as exc:
        raise MapError(f"{what}: cannot convert to {dt}: {exc}") from None


def refuse_lossy(src: np.ndarray, dt: np.dtype, what: str) -> None:
    base, kind = dt.base, src.dtype.kind
    if base.kind in "iufb" and kind in "SU":
        raise MapError(f"{what}: strings given but the dtype is {dt}; pass numbers")
    if base.kind in "iu" and kind in "fc":
        raise MapError(f"{what}: {src.reshape(-1)[0].item()!r} is a float but the dtype is {dt}; round explicitly "
                       f"first (e.g. np.rint(x).astype('{base.str}'))")
    if base.kind in "iu" and kind in "iu" and src.size:
        info = np.iinfo(base)
        lo, hi = int(src.min()), int(src.max())
        if lo < info.min:
            raise MapError(f"{what}: {lo} does not fit {dt}" +
                           (" (a negative number into an unsigned type)" if lo < 0 else ""))
        if hi > info.max:
            raise MapError(f"{what}: {hi} does not fit {dt} (max {info.max})")
    if kind == "V" and src.dtype.itemsize != dt.itemsize:
        raise MapError(f"{what}: {src.dtype.itemsize}-byte items given, {dt.itemsize} expected")


def convert_struct(obj: Any, dt: np.dtype, what: str) -> np.ndarray:
    names = dt.names
    assert names is not None
    if isinstance(obj, np.ndarray) and obj.dtype.names is not None:
        try:
            if obj.dtype.itemsize == dt.itemsize and set(obj.dtype.names) != set(names):
                return obj.view(dt)  # same bytes, other field names: reinterpret
            return obj.astype(dt)
        except (ValueError, TypeError) as exc:
            raise MapError(f"{what}: cannot convert {dname(obj.dtype)} to {dname(dt)}: {exc}") from None
    if isinstance(obj, RECORD_LIKE):
        return records_array([obj], dt, what).reshape(())
    rows = list(obj) if isinstance(obj, (list, np.ndarray)) else None
    if rows is not None and (not rows or all(isinstance(r, RECORD_LIKE) for r in rows)):
        return records_array(rows, dt, what)
    # plain values: they fill a struct only when it has one field, anything else is ambiguous
    if len(names) != 1:
        raise MapError(f"{what}: a plain value cannot fill the {len(names)} fields of {dname(dt)}; give one "
                       f"tuple (or dict) per element, e.g. {tuple(range(len(names)))}, or a structured array")
    fdt = dt[names[0]]
    conv = convert(obj, fdt, f"{what} field {names[0]!r}")
    out = np.zeros(shape_of(conv, fdt), dt)
    out[names[0]] = conv
    return out


def records_array(rows: list, dt: np.dtype, what: str) -> np.ndarray:
    """Tuples / dicts / numpy records as an array of the struct dtype ``dt``, field by field so each
    field gets the same checks as a plain value."""
    names = dt.names
    assert names is not None
    if all(isinstance(r, np.void) and r.dtype == dt for r in rows):
        return np.array(rows, dtype=dt)
    cols: dict[str, list[Any]] = {n: [] for n in names}
    for r in rows:
        if isinstance(r, np.void):
            if r.dtype.names is None:
                raise MapError(f"{what}: raw {r.dtype} given for {dname(dt)}; pass bytes or a record")
            r = r.item()
        if isinstance(r, dict):
            unknown = set(r) - set(names)
            if unknown:
                raise MapError(f"{what}: {dname(dt)} has no field {', '.join(map(repr, sorted(unknown)))}")
            for n in names:
                cols[n].append(r.get(n, _MISSING))
        else:
            if len(r) != len(names):
                raise MapError(f"{what}: {len(r)} values given for the {len(names)} fields of {dname(dt)}")
            for n, v in zip(names, r):
                cols[n].append(v)
    out = np.zeros(len(rows), dt)
    for n in names:
        fdt = dt[n]
        idx = [i for i, v in enumerate(cols[n]) if v is not _MISSING]
        if not idx:
            continue
        conv = convert([cols[n][i] for i in idx], fdt, f"{what} field {n!r}")
        try:
            if len(idx) == len(rows):
                out[n] = conv
            else:
                out[n][idx] = conv  # dict rows that left this field out stay zero
        except ValueError as exc:
            raise MapError(f"{what} field {n!r}: shape {conv.shape} does not fit {fdt}: {exc}") from None
    return out

