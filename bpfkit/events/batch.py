"""Event batches: numpy record arrays (fixed-size records) and :class:`RawBatch` (variable-size).

Strings stay numpy ``S`` bytes (``char comm[16]`` -> ``S16``) until you ask for text, so a batch
costs one copy however many string fields it has. Convert when you need Python objects:

Example::

    batch = rb.drain()                     # structured array: batch["pid"], batch["comm"]
    names = decode_strings(batch["comm"])  # array of str
    rows = to_dicts(batch)                 # [{"pid": 1, "comm": "bash", ...}, ...]
    df = to_pandas(batch)                  # needs pandas
"""
from __future__ import annotations

import functools
from typing import Any, Iterator, Optional, Sequence, Union, overload

import numpy as np

from .. import columnar, display
from ..errors import BpfError, BpfUsageError

__all__ = [
    "RawBatch", "Batch", "split", "join", "concat_records", "convert", "gather_fixed", "strided_words",
    "decode_strings", "to_dicts", "to_pandas", "to_arrow", "to_polars", "batch_html", "batch_text",
]


class RawBatch(Sequence[bytes]):
    """Variable-size records copied out of a buffer: ``data`` holds the payloads back to back,
    record ``i`` is ``data[offsets[i]: offsets[i] + lengths[i]]``. Indexing gives ``bytes``.
    ``size`` is the common record size when every record has the same one (None otherwise): such
    a batch is one block of ``len * size`` bytes, and :meth:`view` is a reshape, not a gather.

    Example::

        for rec in rb.drain_raw(): print(len(rec))
        heads = batch.view(np.dtype([("seq", "u8")]))   # decode each record's leading bytes
    """

    __slots__ = ("data", "_offsets", "_lengths", "size", "_n")

    def __init__(self, data: np.ndarray, offsets: np.ndarray, lengths: np.ndarray) -> None:
        self.data = data
        self._offsets: Optional[np.ndarray] = offsets
        self._lengths: Optional[np.ndarray] = lengths
        self.size: Optional[int] = None
        self._n = int(offsets.shape[0])

    @classmethod
    def fixed(cls, data: np.ndarray, size: int, count: int) -> "RawBatch":
        """``count`` records of ``size`` bytes each, back to back in ``data`` (uint8); the offsets
        and lengths arrays are made only if asked for.

        Example::

            RawBatch.fixed(np.zeros(64, np.uint8), 32, 2)   # two 32-byte records
        """
        b = cls.__new__(cls)
        b.data, b._offsets, b._lengths, b.size, b._n = data, None, None, size, count
        return b

    @property
    def offsets(self) -> np.ndarray:
        """Where each record starts in ``data``."""
        if self._offsets is None:
            self._offsets = np.arange(self._n, dtype=np.int64) * (self.size or 0)
        return self._offsets

    @property
    def lengths(self) -> np.ndarray:
        """Each record's size in bytes."""
        if self._lengths is None:
            self._lengths = np.full(self._n, self.size or 0, np.uint32)
        return self._lengths

    @classmethod
    def empty(cls) -> "RawBatch":
        """A batch with no records."""
        return cls(np.empty(0, np.uint8), np.empty(0, np.int64), np.empty(0, np.uint32))

    @classmethod
    def from_chunks(cls, chunks: Sequence[Any]) -> "RawBatch":
        """Build from buffers (one per record), copying them once."""
        if not chunks:
            return cls.empty()
        lengths = np.fromiter((len(c) for c in chunks), dtype=np.uint32, count=len(chunks))
        offsets = np.zeros(len(chunks), dtype=np.int64)
        np.cumsum(lengths[:-1], out=offsets[1:])
        data = np.frombuffer(b"".join(chunks), dtype=np.uint8)
        return cls(data, offsets, lengths)

    @classmethod
    def concat(cls, batches: Sequence["RawBatch"]) -> "RawBatch":
        """One batch holding the records of ``batches`` in order."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        size = batches[0].size
        if size is not None and all(b.size == size for b in batches):
            return cls.fixed(np.frombuffer(bytearray().join([b.data for b in batches]),  # type: ignore[misc]
                                           np.uint8), size,
                             sum(len(b) for b in batches))
        bases = np.cumsum([0] + [b.data.size for b in batches[:-1]])
        return cls(np.concatenate([b.data for b in batches]),
                   np.concatenate([b.offsets + base for b, base in zip(batches, bases)]),
                   np.concatenate([b.lengths for b in batches]))

    @classmethod
    def of_array(cls, arr: np.ndarray) -> "RawBatch":
        """Each element of a (fixed-size record) array as one raw record."""
        return cls.fixed(np.ascontiguousarray(arr).view(np.uint8).reshape(-1), arr.dtype.itemsize, len(arr))

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> bytes: ...

    @overload
    def __getitem__(self, i: slice) -> list[bytes]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[bytes, list[bytes]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if self.size is not None:
            j = range(self._n)[i]  # IndexError and negative indexes as for a list
            return self.data[j * self.size: (j + 1) * self.size].tobytes()
        o = int(self.offsets[i])
        return self.data[o: o + int(self.lengths[i])].tobytes()

    def __iter__(self) -> Iterator[bytes]:
        data = self.data.tobytes()
        if self.size is not None:
            size = self.size
            for o in range(0, self._n * size, size):
                yield data[o: o + size]
            return
        for o, n in zip(self.offsets.tolist(), self.lengths.tolist()):
            yield data[o: o + n]

    def view(self, dtype: Any) -> np.ndarray:
        """The first ``dtype.itemsize`` bytes of every record decoded as ``dtype`` (one gather, no
        Python loop). Raises BpfError if a record is shorter than the dtype."""
        dt = np.dtype(dtype)
        if len(self) == 0:
            return np.empty(0, dtype=dt)
        if self.size is not None and self.size >= dt.itemsize:
            if self.size == dt.itemsize:
                return self.data.view(dt)
            rows = self.data.reshape(self._n, self.size)[:, :dt.itemsize]
            return np.ascontiguousarray(rows).view(dt).reshape(-1)
        if int(self.lengths.min()) < dt.itemsize:
            raise BpfError(f"a record of {int(self.lengths.min())} bytes is shorter than the "
                           f"{dt.itemsize}-byte dtype {dt}")
        idx = self.offsets[:, None] + np.arange(dt.itemsize)[None, :]
        return np.ascontiguousarray(self.data[idx]).view(dt).reshape(-1)

    def __repr__(self) -> str:
        return f"<RawBatch {len(self)} records, {self.data.nbytes} bytes>"

    def _repr_html_(self) -> str:
        return batch_html(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self) if cycle else batch_text(self))


Batch = Union[np.ndarray, RawBatch]


def split(batch: Batch, k: int) -> tuple[Batch, Batch]:
    """(first ``k`` records, the rest)."""
    if isinstance(batch, RawBatch):
        if batch.size is not None:
            k = min(max(k, 0), len(batch))
            cut = k * batch.size
            return (RawBatch.fixed(batch.data[:cut], batch.size, k),
                    RawBatch.fixed(batch.data[cut:], batch.size, len(batch) - k))
        return (RawBatch(batch.data, batch.offsets[:k], batch.lengths[:k]),
                RawBatch(batch.data, batch.offsets[k:], batch.lengths[k:]))
    return batch[:k], batch[k:]


def join(batches: Sequence[Batch], dtype: Any) -> Batch:
    """Batches of ``dtype`` (RawBatches for None) as one, in order; an empty one for none."""
    if dtype is None:
        return RawBatch.concat(batches)  # type: ignore[arg-type]
    arrays = [b for b in batches if len(b)]
    if not arrays:
        return np.empty(0, dtype=dtype)
    return arrays[0] if len(arrays) == 1 else concat_records(arrays)  # type: ignore[arg-type]


def concat_records(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """``np.concatenate(arrays)`` for 1-D arrays of one dtype, as a new writable array.

    Contiguous arrays are joined as bytes: numpy's concatenate of structured arrays promotes the
    dtype field by field first (~10 us for three arrays, more than the copy of a few records)."""
    dt = arrays[0].dtype
    if all(a.dtype == dt and a.ndim == 1 and a.flags.c_contiguous for a in arrays):
        return np.frombuffer(bytearray().join(arrays), dtype=dt)  # type: ignore[arg-type]
    return np.concatenate(arrays)


def convert(batch: Batch, dtype: Any, what: str = "buffer") -> Batch:
    """``batch`` as ``dtype`` records (RawBatch for None): for records read with one dtype and
    asked for with another (e.g. by an interrupted drain and the next one)."""
    if dtype is None:
        return batch if isinstance(batch, RawBatch) else RawBatch.of_array(batch)
    dt = np.dtype(dtype)
    if isinstance(batch, RawBatch):
        return batch.view(dt)
    if batch.dtype == dt:
        return batch
    if batch.dtype.itemsize == dt.itemsize:
        return batch.view(dt)
    raise BpfUsageError(f"{what}: {len(batch)} records read as {batch.dtype} ({batch.dtype.itemsize} bytes) "
                        f"by an interrupted drain cannot be handed out as {dt} ({dt.itemsize} bytes); "
                        "drain them with the dtype they were read with first")


def gather_fixed(buf: np.ndarray, start: int, count: int, stride: int, offset: int, dtype: np.dtype) -> np.ndarray:
    """Copy ``count`` records of ``dtype`` found every ``stride`` bytes at ``offset`` into ``buf``
    (uint8, from ``start``) into a new contiguous array. Always a copy, never a view of ``buf``.

    Viewing the span as a structured type whose one field is opaque bytes lets numpy copy each
    record as a block; a (count, size) uint8 slice would be copied byte by byte (2x slower)."""
    holder = _holder(f"V{dtype.itemsize}", offset, stride)
    return buf[start: start + count * stride].view(holder)["p"].copy().view(dtype)


def strided_words(buf: np.ndarray, start: int, count: int, stride: int, word: str = "<u8",
                  offset: int = 0) -> np.ndarray:
    """A (view) array of the ``word`` at ``offset`` in each of ``count`` records ``stride`` apart."""
    return buf[start: start + count * stride].view(_holder(word, offset, stride))["p"]


@functools.lru_cache(maxsize=256)
def _holder(field: str, offset: int, stride: int) -> np.dtype:
    """A record of ``stride`` bytes with one field ``p`` at ``offset``; cached because building a
    structured dtype costs microseconds, paid on every read of a few records otherwise."""
    return np.dtype({"names": ["p"], "formats": [field], "offsets": [offset], "itemsize": stride})


def decode_strings(arr: np.ndarray, encoding: str = "utf-8") -> np.ndarray:
    """``S``-dtype array (NUL-padded C strings) -> array of ``str``; undecodable bytes are replaced.

    Example: ``decode_strings(batch["comm"])`` -> ``array(['bash', 'python3'], dtype='<U7')``
    """
    return np.char.decode(np.asarray(arr), encoding, "replace")


def _to_py(value: Any, dtype: np.dtype, decode: bool) -> Any:
    if dtype.names is not None:
        return {n: _to_py(value[n], dtype.fields[n][0], decode) for n in dtype.names}  # type: ignore[index]
    if dtype.subdtype is not None:
        base = dtype.subdtype[0]
        return [_to_py(v, base, decode) for v in value]
    if dtype.kind == "S":
        b = bytes(value)
        return b.decode("utf-8", "replace") if decode else b
    if dtype.kind == "V":
        return bytes(value)
    return value.item() if isinstance(value, np.generic) else value


def to_dicts(batch: Batch, decode: bool = True) -> list[Any]:
    """One dict per record (nested structs as dicts, arrays as lists, ``char[]`` as str when
    ``decode``). A RawBatch gives its records as bytes.

    Example::

        to_dicts(batch)[0]   # {'pid': 1234, 'cpu': 0, 'comm': 'python3'}
    """
    if isinstance(batch, RawBatch):
        return list(batch)
    dt = batch.dtype
    if dt.names is None:
        return [_to_py(v, dt, decode) for v in batch]
    # column-wise: one tolist() per scalar field instead of a numpy scalar access per cell
    cols: dict[str, list[Any]] = {}
    for name in dt.names:
        fdt = dt.fields[name][0]  # type: ignore[index]
        col = batch[name]
        if fdt.kind in "iufb" and fdt.subdtype is None:
            cols[name] = col.tolist()
        elif fdt.kind == "S" and decode:
            cols[name] = decode_strings(col).tolist()
        else:
            cols[name] = [_to_py(v, fdt, decode) for v in col]
    names = list(dt.names)
    return [dict(zip(names, row)) for row in zip(*(cols[n] for n in names))]


def to_pandas(batch: np.ndarray, decode: bool = True) -> Any:
    """A pandas DataFrame with one column per field; ``char[]`` fields become str columns (up to
    the first NUL) when ``decode``, nested structs are flattened as ``outer.inner``. Needs pandas.

    Example: ``to_pandas(batch).groupby("pid").size()``
    """
    return columnar.to_pandas(batch, decode)


def to_arrow(batch: np.ndarray, decode: bool = True) -> Any:
    """A ``pyarrow.Table`` with the columns of :func:`to_pandas` (numeric fields copied once into
    their columns, ``char[]`` as string columns). Needs pyarrow.

    Example: ``to_arrow(batch).column("pid")``
    """
    return columnar.to_arrow(batch, decode)


def to_polars(batch: np.ndarray, decode: bool = True) -> Any:
    """A polars DataFrame with the columns of :func:`to_pandas` (made from :func:`to_arrow`
    without another copy). Needs polars and pyarrow.

    Example: ``to_polars(batch).group_by("comm").len()``
    """
    return columnar.to_polars(batch, decode)


def _raw_rows(batch: RawBatch, limit: int) -> tuple[list[str], list[list[Any]]]:
    rows = []
    for i in range(min(len(batch), limit)):
        rec = batch[i]
        rows.append([i, len(rec), rec[:24].hex(" ") + (" …" if len(rec) > 24 else "")])
    return ["#", "bytes", "data"], rows


def batch_html(batch: Batch, title: str = "events", limit: int = display.ROWS) -> str:
    """The notebook view of a batch: record count, dtype, the first ``limit`` records as a table
    (``char[]`` as text). The IPython extension (``%load_ext bpfkit``) shows record arrays so.

    Example::

        IPython.display.HTML(batch_html(batch))
    """
    if isinstance(batch, RawBatch):
        header, rows = _raw_rows(batch, limit)
        return display.card(title, [("records", f"{len(batch):,}"), ("bytes", f"{batch.data.nbytes:,}"),
                                    ("dtype", "variable-size bytes")],
                            [display.html_table(header, rows, more=len(batch) - len(rows))])
    return display.records_html(batch, title, limit=limit)


def batch_text(batch: Batch, title: str = "events", limit: int = display.ROWS) -> str:
    """The same view as text.

    Example::

        print(batch_text(batch))
    """
    if isinstance(batch, RawBatch):
        header, rows = _raw_rows(batch, limit)
        head = f"{title}: {len(batch):,} records, {batch.data.nbytes:,} bytes, variable-size"
        return head + ("\n" + display.text_table(header, rows, more=len(batch) - len(rows)) if len(batch) else "")
    return display.records_text(batch, title, limit=limit)
