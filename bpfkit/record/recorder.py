"""Recording ring/perf buffer batches to Parquet, with the facts that say whether the recording is
complete.

The file's schema comes from the record type (the buffer's BTF record type, as the reader's dtype
has it): one column per field, ``char[]`` as text, nested structs as ``outer.inner``, fixed-size
arrays as list columns. A row group is written every ``rows_per_group`` records. The exact numpy
dtype and the loss counters go into the file's key-value metadata (:data:`META`), so
:func:`bpfkit.replay` gives back the same records and says whether any were lost. The file is
written as ``PATH.part`` and renamed to ``PATH`` when the recorder closes: a file at ``PATH`` is
always a finished recording.

Example::

    with obj.attach(), Recorder("getpid.parquet", reader=obj.reader("events")) as rec:
        rec.record(duration=5)          # or: rec.write(batch) for batches you read yourself
    print(rec.records, rec.complete)
"""
from __future__ import annotations

import os
import queue
import signal
import threading
import time
from typing import Any, Optional, Union

import numpy as np

from .. import columnar
from .._sys import Resource
from ..errors import BpfError, BpfUsageError, ClosedError
from ..events import EventReader, RawBatch
from ..events.batch import concat_records

__all__ = ["Recorder", "META", "ROWS_PER_GROUP", "COMPRESSIONS"]

ROWS_PER_GROUP = 1 << 16
QUEUED_GROUPS = 16  # row groups waiting for the writer thread before write() waits for it
COMPRESSIONS = ("snappy", "zstd", "lz4", "gzip", "none")
# the file metadata a recording carries (all values are text): key -> meaning
META = {
    "bpfkit.version": "the bpfkit that wrote the file",
    "bpfkit.dtype": "the records' numpy dtype as JSON (offsets and padding included)",
    "bpfkit.source": "what was recorded, e.g. 'OBJECT:MAP'",
    "bpfkit.records": "records written",
    "bpfkit.row_groups": "row groups written",
    "bpfkit.rows_per_group": "records per row group (the last one may have fewer)",
    "bpfkit.dropped": "records the BPF side failed to submit while recording (bpfkit.h counter)",
    "bpfkit.lost": "records the kernel reported lost while recording (perf buffers)",
    "bpfkit.discarded": "records the program discarded on purpose (ring buffers): not a loss",
    "bpfkit.drops_counted": "'true' if the program counts failed submissions (BPFKIT_RESERVE/_PERF_OUTPUT)",
    "bpfkit.complete": "'true': nothing lost; 'false': some lost; 'unknown': losses are not counted",
    "bpfkit.started_ns": "CLOCK_REALTIME ns when recording started",
    "bpfkit.stopped_ns": "CLOCK_REALTIME ns when the recorder closed",
    "bpfkit.host": "the machine's node name",
    "bpfkit.kernel": "the kernel release",
}


class Recorder(Resource):
    """Writes record batches to a Parquet file at ``path``. ``reader`` (a ring or perf buffer
    reader) gives the dtype and the loss counters; without one, give ``dtype`` and, at close, the
    counts you know (:meth:`close`). ``compression`` is one of :data:`COMPRESSIONS`.

    Example::

        rec = Recorder("out.parquet", reader=obj.reader("events"), rows_per_group=100_000)
        rec.record(duration=10)
        rec.close()                     # the file appears at out.parquet now
    """

    def __init__(self, path: Union[str, os.PathLike[str]], dtype: Any = None, *,
                 reader: Optional[EventReader] = None, rows_per_group: int = ROWS_PER_GROUP,
                 compression: str = "snappy", source: str = "", metadata: Optional[dict[str, str]] = None) -> None:
        self._writer: Any = None
        pa = columnar.require("pyarrow", "Recorder")
        pq = columnar.require("pyarrow.parquet", "Recorder")
        if dtype is None and reader is not None:
            dtype = reader.dtype
        if dtype is None:
            raise BpfUsageError("the records have no fixed type (variable-size records): give dtype=, e.g. "
                                "Recorder(path, dtype=np.dtype([('seq', 'u8')]), reader=rb); the leading bytes of "
                                "each record are recorded as that type")
        if isinstance(rows_per_group, bool) or not isinstance(rows_per_group, int) or rows_per_group < 1:
            raise BpfUsageError(f"rows_per_group must be a positive integer, not {rows_per_group!r}")
        if compression not in COMPRESSIONS:
            raise BpfUsageError(f"compression {compression!r}: use one of {', '.join(COMPRESSIONS)}")
        self.path = os.fspath(path)
        self.dtype = np.dtype(dtype)
        self.reader = reader
        self.rows_per_group = rows_per_group
        self.accepted = 0  # records given to write() (and not cut by count=)
        self.records = 0  # records in row groups written
        self.row_groups = 0
        self.interrupted = False
        self._pending: list[np.ndarray] = []
        self._pending_rows = 0
        # full row groups go to a writer thread: Arrow and Parquet encode without the GIL, so the
        # buffer keeps being read meanwhile instead of filling up during each write
        self._groups: queue.Queue[Optional[list[np.ndarray]]] = queue.Queue(maxsize=QUEUED_GROUPS)
        self._failed: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None
        self._base = self._counters()
        self._final: Optional[dict[str, int]] = None
        self._known: Optional[bool] = None
        self.started_ns = time.time_ns()
        self._meta = {"bpfkit.version": _version(), "bpfkit.dtype": columnar.dtype_to_json(self.dtype),
                      "bpfkit.source": source or (reader.name if reader is not None else ""),
                      "bpfkit.rows_per_group": str(rows_per_group), "bpfkit.started_ns": str(self.started_ns),
                      "bpfkit.host": os.uname().nodename, "bpfkit.kernel": os.uname().release, **(metadata or {})}
        self._schema = columnar.arrow_schema(self.dtype, metadata=self._meta)
        self._part = self.path + ".part"
        self._writer = pq.ParquetWriter(self._part, self._schema, compression=compression,
                                        **_encodings(pa, self._schema))
        self._thread = threading.Thread(target=self._write_groups, name=f"bpfkit-recorder {self.path}", daemon=True)
        self._thread.start()

    # -- loss counters -----------------------------------------------------------------------
    def _counters(self) -> dict[str, int]:
        r = self.reader
        if r is None:
            return {"dropped": 0, "lost": 0, "discarded": 0}
        return {"dropped": r.dropped, "lost": int(getattr(r, "lost", 0)), "discarded": int(getattr(r, "discarded", 0))}

    @property
    def counts(self) -> dict[str, int]:
        """``dropped``, ``lost`` and ``discarded`` since this recorder started (final once closed).

        Example::

            rec.counts   # {'dropped': 0, 'lost': 0, 'discarded': 0}
        """
        if self._final is not None:  # closed, or record(count=) took its last record
            return dict(self._final)
        now = self._counters()
        return {k: now[k] - self._base[k] for k in now}

    @property
    def drops_counted(self) -> bool:
        """Whether losses are known: perf buffers always count them (the kernel's LOST records);
        ring buffers only when the program reserves with bpfkit.h's ``BPFKIT_RESERVE``."""
        if self._known is not None:
            return self._known
        r = self.reader
        return r is not None and (r.has_drop_counter or hasattr(r, "lost"))

    @property
    def complete(self) -> Optional[bool]:
        """True when nothing was lost, False when something was, None when losses are not counted.

        Example::

            assert rec.complete, rec.counts
        """
        c = self.counts
        if c["dropped"] or c["lost"]:
            return False
        return True if self.drops_counted else None

    # -- writing -------------------------------------------------------------------------------
    def write(self, batch: Union[np.ndarray, RawBatch]) -> None:
        """Append a batch (records of the recorder's dtype; a RawBatch is read as that dtype).
        Each time ``rows_per_group`` records are waiting they go to the writer thread as one row
        group (a copy of the batch is not needed: readers hand out batches they no longer touch).

        Example::

            for batch in rb.read(timeout=1.0): rec.write(batch)
        """
        if self._writer is None:
            raise ClosedError(f"the recorder of {self.path!r} is closed")
        self._check()
        arr = batch.view(self.dtype) if isinstance(batch, RawBatch) else batch
        if arr.dtype != self.dtype:
            if arr.dtype.itemsize != self.dtype.itemsize:
                raise BpfUsageError(f"batch of {arr.dtype} ({arr.dtype.itemsize} bytes) given to a recorder of "
                                    f"{self.dtype} ({self.dtype.itemsize} bytes)")
            arr = arr.view(self.dtype)
        self.accepted += len(arr)
        while len(arr):
            take = min(len(arr), self.rows_per_group - self._pending_rows)
            self._pending.append(arr[:take])
            self._pending_rows += take
            arr = arr[take:]
            if self._pending_rows == self.rows_per_group:
                self._hand_over()

    def _hand_over(self) -> None:
        if self._pending_rows:
            group, self._pending, self._pending_rows = self._pending, [], 0
            self._groups.put(group)

    def _check(self) -> None:
        if self._failed is not None:
            raise BpfError(f"writing {self._part} failed: {self._failed}") from self._failed

    def _write_groups(self) -> None:
        while True:
            group = self._groups.get()
            if group is None:
                return
            if self._failed is not None:
                continue  # keep taking groups so that write() never blocks on a dead writer
            try:
                records = group[0] if len(group) == 1 else concat_records(group)
                table = columnar.to_arrow(records).replace_schema_metadata(self._schema.metadata)
                self._writer.write_table(table, row_group_size=len(records))
                self.records += len(records)
                self.row_groups += 1
            except BaseException as e:  # told to the reading thread at its next write() or close()
                self._failed = e

    def record(self, reader: Optional[EventReader] = None, *, duration: Optional[float] = None,
               count: Optional[int] = None, idle: Optional[float] = None) -> int:
        """Read ``reader`` (default: the recorder's) and write what arrives, until ``duration``
        seconds passed, ``count`` records were written (later ones are not), nothing came for
        ``idle`` seconds, or Ctrl-C / SIGTERM (which end the recording, not the program: the
        signal handlers are bpfkit's while this runs in the main thread). Returns the records
        written by this call.

        Example::

            rec.record(duration=10)     # then rec.close()
        """
        reader = reader if reader is not None else self.reader
        if reader is None:
            raise BpfUsageError("record() needs a reader: Recorder(path, reader=obj.reader('events'))")
        start = self.accepted
        stop = threading.Event()
        deadline = None if duration is None else time.monotonic() + duration
        quiet_since = time.monotonic()

        def take(batch: Any) -> None:
            if count is not None:
                batch = batch[: max(count - (self.accepted - start), 0)]
                if self.accepted + len(batch) - start >= count:
                    stop.set()
            self.write(batch)

        with _stop_on_signals(stop):
            while not stop.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                got = reader.run(take, duration=0.25 if left is None else min(left, 0.25))
                if reader.interrupted:  # a KeyboardInterrupt not sent as a signal (e.g. raised in take)
                    stop.set()
                if got:
                    quiet_since = time.monotonic()
                elif idle is not None and time.monotonic() - quiet_since >= idle:
                    break
        full = count is not None and self.accepted - start >= count
        self.interrupted = stop.is_set() and not full
        if full and self._final is None:
            # the recording ends here: what the buffer loses from now on (nobody reads it any
            # more) was never going to be recorded, so it does not make the file incomplete
            self._final = self.counts
        return self.accepted - start

    def close(self, *, dropped: Optional[int] = None, lost: Optional[int] = None) -> None:
        """Write the last row group and the metadata, and rename ``PATH.part`` to ``PATH``.
        Without a reader, ``dropped``/``lost`` say what you know about losses (given, losses
        count as known). Idempotent; a recorder collected without close() is closed so too.

        Example::

            rec.close()
        """
        if getattr(self, "_writer", None) is None:
            return
        try:
            self._hand_over()
            self._groups.put(None)
            if self._thread is not None:
                self._thread.join()
            self._check()
            counts = self.counts
            if dropped is not None:
                counts["dropped"] = dropped
            if lost is not None:
                counts["lost"] = lost
            known = self.drops_counted if self.reader is not None else (dropped is not None or lost is not None)
            self._final, self._known = counts, known
            self._writer.add_key_value_metadata({
                "bpfkit.records": str(self.records), "bpfkit.row_groups": str(self.row_groups),
                **{f"bpfkit.{k}": str(v) for k, v in counts.items()},
                "bpfkit.drops_counted": "true" if known else "false",
                "bpfkit.complete": {True: "true", False: "false", None: "unknown"}[self.complete],
                "bpfkit.stopped_ns": str(time.time_ns())})
        finally:
            writer, self._writer = self._writer, None
            writer.close()
        os.replace(self._part, self.path)

    def __repr__(self) -> str:
        state = "closed" if self._writer is None else "open"
        return f"<Recorder {self.path} {state}: {self.accepted:,} records>"


def _encodings(pa: Any, schema: Any) -> dict[str, Any]:
    """Parquet encodings by column type: dictionaries for text (comm, file names repeat), delta
    encoding for integers (timestamps, counters and ids change little from record to record).
    Trying a dictionary on every column costs 3x the write time on high-cardinality integers."""
    text = [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_binary(f.type)
            or pa.types.is_fixed_size_binary(f.type)]
    ints = {f.name: "DELTA_BINARY_PACKED" for f in schema if pa.types.is_integer(f.type)}
    return {"use_dictionary": text, "column_encoding": ints}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bpfkit")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class _stop_on_signals:
    """SIGINT/SIGTERM set ``stop`` instead of raising, in the main thread (elsewhere: nothing)."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.old: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for s in (signal.SIGINT, signal.SIGTERM):
            self.old[s] = signal.signal(s, lambda *_: self.stop.set())

    def __exit__(self, *exc: Any) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)
