"""numpy record arrays (map contents, event batches) as columns: Arrow tables, pandas and polars
DataFrames, and back again (for replaying a recording).

A record array stores rows; every columnar format stores columns, so each field is copied once
into its own contiguous column (a plain array of a numeric type goes to Arrow without a copy).
``char[]`` fields become text columns: the C string up to its first NUL, decoded as UTF-8 (bytes
that are not UTF-8 are replaced by U+FFFD). Nested structs are flattened into ``outer.inner``
columns, fixed-size arrays become fixed-size list columns. pandas, pyarrow and polars are
imported only when asked for.

Example::

    table = to_arrow(batch)                 # pyarrow.Table: pid (uint32), comm (string), ...
    df = to_pandas(batch)                   # pandas.DataFrame, same columns
    back = from_arrow(table, batch.dtype)   # the records again (C strings re-encoded)
"""
from __future__ import annotations

import importlib
from typing import Any, Sequence, Union

import numpy as np

from .errors import BpfError

__all__ = ["Columns", "leaf_columns", "decode_c_strings", "to_arrow", "to_pandas", "to_polars", "arrow_schema",
           "from_arrow", "dtype_to_json", "dtype_from_json", "require"]

# a record array, or already-flattened (name, column) pairs (a map's keys and values side by side)
Columns = Union[np.ndarray, Sequence[tuple[str, np.ndarray]]]

_EXTRAS = {"pyarrow": "arrow", "pandas": "pandas", "polars": "polars"}


def require(module: str, what: str) -> Any:
    """Import an optional dependency, or raise BpfError naming the pip extra that brings it.

    Example::

        pa = require("pyarrow", "to_arrow()")
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = _EXTRAS.get(module.split(".")[0], module)
        top = module.split(".")[0]
        raise BpfError(f"{what} needs {top}: pip install {top} (or pip install 'bpfkit[{extra}]')") from None


def leaf_columns(arr: np.ndarray, prefix: str = "") -> list[tuple[str, np.ndarray]]:
    """``(name, column)`` for every leaf field, nested structs as ``outer.inner``; a plain array
    is one column named ``prefix`` (or ``"value"``). Columns are views into ``arr``.

    Example::

        [n for n, _ in leaf_columns(batch)]   # ['pid', 'comm', 'addr.port']
    """
    names = arr.dtype.names
    if names is None:
        return [(prefix or "value", arr)]
    out: list[tuple[str, np.ndarray]] = []
    for name in names:
        out += leaf_columns(arr[name], f"{prefix}.{name}" if prefix else name)
    return out


def _pairs(data: Columns) -> list[tuple[str, np.ndarray]]:
    return leaf_columns(data) if isinstance(data, np.ndarray) else list(data)


def _c_strings(col: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A ``char[N]`` column as ``(u8, lengths)``: an (n, N) uint8 array in which every byte after
    a string's first NUL is zero, and each string's length up to that NUL."""
    n, size = len(col), col.dtype.itemsize
    col = np.ascontiguousarray(col)
    u8 = col.view(np.uint8).reshape(n, size)
    # numpy's S strips trailing NULs only (str_len); a NUL before that means the C string ended
    # there, and the bytes after it (left over in a reused buffer) are not part of it
    lengths = np.strings.str_len(col)
    nonzero = u8 != 0
    first = np.argmin(nonzero, axis=1)  # the first NUL (0 also when there is none)
    cut = (first < lengths) & ~nonzero[np.arange(n), first]
    if cut.any():
        lengths = np.where(cut, first, lengths)
        u8 = np.where(np.arange(size) < lengths[:, None], u8, np.uint8(0)).astype(np.uint8)
    return u8, lengths


def decode_c_strings(col: np.ndarray) -> np.ndarray:
    """A ``char[N]`` column (numpy ``S``) as an array of ``str``: each up to its first NUL.

    Example::

        decode_c_strings(np.array([b"cat\\0xx", b"sh"], "S6"))   # array(['cat', 'sh'], dtype='<U3')
    """
    n, size = len(col), col.dtype.itemsize
    if n == 0 or size == 0:
        return np.zeros(n, dtype="U1")
    u8, _ = _c_strings(col)
    return np.char.decode(u8.view(f"S{size}").reshape(n), "utf-8", "replace")


# -- Arrow ---------------------------------------------------------------------------------------

def _arrow_type(pa: Any, dt: np.dtype, decode: bool) -> Any:
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        t = _arrow_type(pa, base, decode)
        for n in reversed(shape):
            t = pa.list_(t, n)
        return t
    if dt.kind == "S":
        return pa.string() if decode else pa.binary(dt.itemsize)
    if dt.kind == "V":
        return pa.binary(dt.itemsize)
    return pa.from_numpy_dtype(dt)


def arrow_schema(dtype: np.dtype, decode: bool = True, metadata: Any = None) -> Any:
    """The Arrow schema :func:`to_arrow` gives records of ``dtype`` (fields flattened as there).

    Example::

        arrow_schema(np.dtype([("pid", "u4"), ("comm", "S16")]))   # pid: uint32, comm: string
    """
    pa = require("pyarrow", "arrow_schema()")
    empty = np.zeros(0, dtype)
    fields = [pa.field(name, _arrow_type(pa, col.dtype if col.ndim == 1 else _sub(col), decode), nullable=False)
              for name, col in leaf_columns(empty)]
    return pa.schema(fields, metadata=metadata)


def _sub(col: np.ndarray) -> np.dtype:
    return np.dtype((col.dtype, col.shape[1:]))


def _arrow_strings(pa: Any, col: np.ndarray) -> Any:
    n = len(col)
    u8, lengths = _c_strings(col)
    data = u8[u8 != 0]  # after _c_strings the non-zero bytes are exactly the strings, in row order
    offsets = np.zeros(n + 1, np.int32)
    np.cumsum(lengths, out=offsets[1:])
    binary = pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    try:
        return binary.cast(pa.string())  # checks that every value is UTF-8, in C++
    except pa.ArrowInvalid:
        return pa.array([bytes(b).decode("utf-8", "replace") for b in binary.to_pylist()], pa.string())


def _arrow_array(pa: Any, col: np.ndarray, decode: bool) -> Any:
    if col.ndim > 1:  # fixed-size array field: a list column of the flattened elements
        inner = _arrow_array(pa, col.reshape(-1, *col.shape[2:]), decode)
        return pa.FixedSizeListArray.from_arrays(inner, col.shape[1])
    kind = col.dtype.kind
    if kind == "S":
        if decode:
            return _arrow_strings(pa, col)
        raw = np.ascontiguousarray(col).view(np.uint8)
        return pa.Array.from_buffers(pa.binary(col.dtype.itemsize), len(col), [None, pa.py_buffer(raw)])
    if kind == "V":
        raw = np.ascontiguousarray(col).view(np.uint8)
        return pa.Array.from_buffers(pa.binary(col.dtype.itemsize), len(col), [None, pa.py_buffer(raw)])
    # contiguous columns (a plain array) are wrapped without a copy; struct fields are strided
    return pa.array(np.ascontiguousarray(col))


def to_arrow(data: Columns, decode: bool = True) -> Any:
    """A ``pyarrow.Table`` with one column per leaf field; ``char[]`` as strings when ``decode``.

    Example::

        to_arrow(batch).schema   # pid: uint32 not null, comm: string not null, ...
    """
    pa = require("pyarrow", "to_arrow()")
    pairs = _pairs(data)
    arrays = [_arrow_array(pa, col, decode) for _, col in pairs]
    fields = [pa.field(name, a.type, nullable=False) for (name, _), a in zip(pairs, arrays)]
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def to_polars(data: Columns, decode: bool = True) -> Any:
    """A polars DataFrame (built on :func:`to_arrow`, which polars takes without a copy).

    Example::

        to_polars(batch).group_by("pid").len()
    """
    pl = require("polars", "to_polars()")
    return pl.from_arrow(to_arrow(data, decode))


def to_pandas(data: Columns, decode: bool = True) -> Any:
    """A pandas DataFrame with one column per leaf field (``char[]`` as str when ``decode``,
    fixed-size arrays as one numpy array per cell). Needs pandas, not pyarrow.

    Example::

        to_pandas(batch).groupby("comm").size()
    """
    pd = require("pandas", "to_pandas()")
    cols: dict[str, Any] = {}
    for name, col in _pairs(data):
        if col.dtype.kind == "S" and col.ndim == 1 and decode:
            cols[name] = _pandas_strings(col)
        elif col.ndim > 1:
            cols[name] = list(col)
        else:
            cols[name] = col
    return pd.DataFrame(cols)


def _pandas_strings(col: np.ndarray) -> Any:
    try:
        import pyarrow as pa
    except ImportError:
        return decode_c_strings(col)
    return _arrow_strings(pa, col).to_pandas()  # decoded in C++, not a Python call per value


# -- back to records -----------------------------------------------------------------------------

def _encode_strings(arr: Any, size: int) -> np.ndarray:
    """Arrow strings (or binary) into an (n, size) uint8 array, NUL-padded (cut at ``size`` bytes)."""
    n = len(arr)
    out = np.zeros((n, size), np.uint8)
    if n == 0:
        return out
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], np.int32, n + 1, arr.offset * 4).astype(np.int64)
    data = np.frombuffer(buffers[2], np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    if lengths.max() > size:  # rare: text that grew when decoded (U+FFFD for each bad byte)
        for i in range(n):
            row = data[offsets[i]: offsets[i] + min(int(lengths[i]), size)]
            out[i, : len(row)] = row
        return out
    out[np.arange(size) < lengths[:, None]] = data[offsets[0]: offsets[-1]]
    return out


def _to_numpy(pa: Any, arr: Any, dt: np.dtype) -> np.ndarray:
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        flat = arr.flatten()
        for _ in shape[1:]:
            flat = flat.flatten()
        return _to_numpy(pa, flat, base).reshape(len(arr), *shape)
    if dt.kind in "SV":
        if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_binary(arr.type):
            return _encode_strings(arr.cast(pa.binary()), dt.itemsize).view(dt).reshape(len(arr))
        raw = np.frombuffer(arr.buffers()[1], np.uint8, len(arr) * dt.itemsize, arr.offset * dt.itemsize)
        return raw.view(dt)
    return arr.to_numpy(zero_copy_only=False).astype(dt, copy=False)


def from_arrow(table: Any, dtype: np.dtype) -> np.ndarray:
    """Records of ``dtype`` from a table :func:`to_arrow` made (or read back from Parquet).
    C strings come back NUL-padded; what followed a string's NUL in the original is not kept.

    Example::

        np.array_equal(from_arrow(to_arrow(batch), batch.dtype)["pid"], batch["pid"])   # True
    """
    pa = require("pyarrow", "from_arrow()")
    out = np.zeros(table.num_rows, dtype)
    for name, col in leaf_columns(out):
        if name not in table.column_names:
            raise BpfError(f"the table has no column {name!r} for the records' field of that name")
        arr = table.column(name).combine_chunks()
        target = col.dtype if col.ndim == 1 else _sub(col)
        col[...] = _to_numpy(pa, arr, target)
    return out


# -- dtypes as text (a recording keeps the records' exact layout in its metadata) ---------------

def _dtype_obj(dt: np.dtype) -> Any:
    if dt.subdtype is not None:
        return {"base": _dtype_obj(dt.subdtype[0]), "shape": list(dt.subdtype[1])}
    if dt.names is None:
        return dt.str
    fields = dt.fields
    assert fields is not None
    return {"names": list(dt.names), "formats": [_dtype_obj(fields[n][0]) for n in dt.names],
            "offsets": [fields[n][1] for n in dt.names], "itemsize": dt.itemsize}


def _dtype_from(obj: Any) -> np.dtype:
    if isinstance(obj, str):
        return np.dtype(obj)
    if "base" in obj:
        return np.dtype((_dtype_from(obj["base"]), tuple(obj["shape"])))
    return np.dtype({"names": obj["names"], "formats": [_dtype_from(f) for f in obj["formats"]],
                     "offsets": obj["offsets"], "itemsize": obj["itemsize"]})


def dtype_to_json(dtype: np.dtype) -> str:
    """A dtype, offsets and padding included, as JSON (:func:`dtype_from_json` reverses it).

    Example::

        dtype_from_json(dtype_to_json(batch.dtype)) == batch.dtype   # True
    """
    import json

    return json.dumps(_dtype_obj(np.dtype(dtype)), separators=(",", ":"))


def dtype_from_json(text: str) -> np.dtype:
    """The dtype :func:`dtype_to_json` wrote.

    Example::

        dtype_from_json('"<u4"')   # dtype('uint32')
    """
    import json

    return _dtype_from(json.loads(text))
