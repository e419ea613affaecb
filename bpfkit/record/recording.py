"""Reading a recording back: :func:`replay` gives the records as the numpy batches a reader gave
(the recorded dtype, C strings NUL-padded again), so an analysis written against a live buffer
runs offline, in a test or on another machine.

Example::

    rec = bpfkit.replay("getpid.parquet")
    print(rec.records, rec.complete, rec.counts)   # 2000000 True {'dropped': 0, 'lost': 0, ...}
    for batch in rec:                               # one batch per row group
        print(batch["pid"][:3])
    df = rec.to_pandas()                            # or read the file with any Parquet reader
"""
from __future__ import annotations

import os
from typing import Any, Iterator, Optional, Union

import numpy as np

from .. import columnar, display
from ..errors import BpfError, BpfNotFoundError, ObjectFormatError

__all__ = ["Recording", "replay"]


class Recording:
    """A Parquet file written by :class:`~bpfkit.record.Recorder`: its ``dtype``, ``metadata``
    (the ``bpfkit.*`` keys of :data:`~bpfkit.record.recorder.META`), counts, and its records as
    batches (iterate; ``batch_size`` None gives one batch per row group).

    Example::

        for batch in Recording("out.parquet", batch_size=10_000): ...
    """

    def __init__(self, path: Union[str, os.PathLike[str]], batch_size: Optional[int] = None) -> None:
        pq = columnar.require("pyarrow.parquet", "replay()")
        self.path = os.fspath(path)
        self.batch_size = batch_size
        if not os.path.exists(self.path):
            part = self.path + ".part"
            hint = f" ({part} exists: the recorder was not closed, so its footer was never written)" \
                if os.path.exists(part) else ""
            raise BpfNotFoundError(f"no recording at {self.path!r}{hint}")
        try:
            self._file = pq.ParquetFile(self.path)
        except Exception as e:  # pyarrow's ArrowInvalid and OSError, for a file that is not Parquet
            raise ObjectFormatError(f"{self.path}: not a Parquet file ({e})") from None
        raw = self._file.metadata.metadata or {}
        self.metadata: dict[str, str] = {k.decode(): v.decode() for k, v in raw.items() if k.startswith(b"bpfkit.")}
        if "bpfkit.dtype" not in self.metadata:
            raise ObjectFormatError(f"{self.path}: a Parquet file, but not a bpfkit recording (no bpfkit.dtype "
                                    "metadata); read it with pyarrow or pandas instead")
        self.dtype: np.dtype = columnar.dtype_from_json(self.metadata["bpfkit.dtype"])

    @property
    def records(self) -> int:
        """Records in the file.

        Example::

            bpfkit.replay("out.parquet").records
        """
        return int(self._file.metadata.num_rows)

    @property
    def row_groups(self) -> int:
        """Row groups in the file."""
        return int(self._file.num_row_groups)

    @property
    def counts(self) -> dict[str, int]:
        """``dropped``, ``lost``, ``discarded`` while recording, as the recorder counted them.

        Example::

            bpfkit.replay("out.parquet").counts["lost"]
        """
        return {k: int(self.metadata.get(f"bpfkit.{k}", "0")) for k in ("dropped", "lost", "discarded")}

    @property
    def complete(self) -> Optional[bool]:
        """True: nothing was lost while recording; False: something was; None: losses were not
        counted (the program does not use bpfkit.h's BPFKIT_RESERVE).

        Example::

            assert bpfkit.replay("out.parquet").complete
        """
        return {"true": True, "false": False}.get(self.metadata.get("bpfkit.complete", ""))

    def __iter__(self) -> Iterator[np.ndarray]:
        try:
            if self.batch_size is None:
                for i in range(self._file.num_row_groups):
                    yield columnar.from_arrow(self._file.read_row_group(i), self.dtype)
            else:
                pa = columnar.require("pyarrow", "replay()")
                for rb in self._file.iter_batches(batch_size=self.batch_size):
                    yield columnar.from_arrow(pa.Table.from_batches([rb]), self.dtype)
        except OSError as e:
            raise BpfError(f"{self.path}: {e}") from None

    def read(self) -> np.ndarray:
        """Every record as one array.

        Example::

            np.unique(bpfkit.replay("out.parquet").read()["pid"])
        """
        return columnar.from_arrow(self._file.read(), self.dtype)

    def to_arrow(self) -> Any:
        """The file as a ``pyarrow.Table`` (text columns for ``char[]``)."""
        return self._file.read()

    def to_pandas(self) -> Any:
        """The file as a pandas DataFrame (through pyarrow).

        Example::

            bpfkit.replay("out.parquet").to_pandas().groupby("comm").size()
        """
        return self._file.read().to_pandas()

    def to_polars(self) -> Any:
        """The file as a polars DataFrame."""
        pl = columnar.require("polars", "to_polars()")
        return pl.from_arrow(self._file.read())

    def _head(self, limit: int) -> np.ndarray:
        pa = columnar.require("pyarrow", "replay()")
        for rb in self._file.iter_batches(batch_size=limit):
            return columnar.from_arrow(pa.Table.from_batches([rb]), self.dtype)
        return np.zeros(0, self.dtype)

    def _facts(self) -> list[tuple[str, Any]]:
        c = self.counts
        return [("records", f"{self.records:,}"), ("row groups", self.row_groups),
                ("complete", self.metadata.get("bpfkit.complete", "?")), ("dropped", c["dropped"]),
                ("lost", c["lost"]), ("source", self.metadata.get("bpfkit.source", ""))]

    def _table(self) -> tuple[list[str], list[list[Any]]]:
        cols = columnar.leaf_columns(self._head(display.ROWS))
        n = len(cols[0][1]) if cols else 0
        return [name for name, _ in cols], [[col[i] for _, col in cols] for i in range(n)]

    def _repr_html_(self) -> str:
        header, rows = self._table()
        return display.card(f"Recording {self.path}", [*self._facts(), ("dtype", display.dtype_text(self.dtype))],
                            [display.html_table(header, rows, more=self.records - len(rows))])

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        if cycle:
            p.text(repr(self))
            return
        header, rows = self._table()
        facts = ", ".join(f"{k} {v}" for k, v in self._facts())
        p.text(f"Recording {self.path}: {facts}\n" + display.text_table(header, rows, more=self.records - len(rows)))

    def __repr__(self) -> str:
        return (f"<Recording {self.path}: {self.records:,} records in {self.row_groups} row groups, "
                f"complete={self.metadata.get('bpfkit.complete', '?')}>")


def replay(path: Union[str, os.PathLike[str]], batch_size: Optional[int] = None) -> Recording:
    """Open a recording; iterate it for the recorded batches (numpy record arrays of the recorded
    dtype), one per row group or of ``batch_size`` records.

    Example::

        for batch in bpfkit.replay("getpid.parquet"):
            counts += np.bincount(batch["cpu"], minlength=ncpu)
    """
    return Recording(path, batch_size)
