"""JIT symbol maps: ``/tmp/perf-PID.map``, as written by ``python3.12 -X perf``, Node's
``--perf-basic-prof``, JVM agents and LuaJIT.

Each line is ``START SIZE NAME`` (hex, ``0x`` optional; the name may contain spaces). Runtimes
append to the file while they run, so :class:`PerfMap` re-reads it when its size or mtime
changes. When a region is reused, the later line wins, as in perf. Lines that do not parse are
skipped and counted, never raised.

Example::

    pm = PerfMap("/tmp/perf-1234.map")
    pm.table.names_of(pm.table.lookup(np.array([0x7f00deadbeef], np.uint64))[0])
"""
from __future__ import annotations

import os

import numpy as np

from .table import SymbolTable

# A JIT map of a long-running JVM can be large; beyond this it is more likely garbage.
_MAX_BYTES = 256 << 20


def parse_perf_map(text: str) -> tuple[SymbolTable, list[str]]:
    """``(table, skipped reasons)`` for the text of a perf map.

    Example::

        table, bad = parse_perf_map("7f0000001000 40 py::f:/x.py\\n")
    """
    starts: list[int] = []
    sizes: list[int] = []
    names: list[str] = []
    skipped: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.strip().split(None, 2)
        if not parts:
            continue
        try:
            if len(parts) < 3:
                raise ValueError("expected 'START SIZE NAME'")
            start, size = int(parts[0], 16), int(parts[1], 16)
            if not 0 < start < 1 << 64 or not 0 <= size < 1 << 40:
                raise ValueError("address or size out of range")
        except ValueError as e:
            if len(skipped) < 20:
                skipped.append(f"line {n}: {e}: {line[:120]!r}")
            else:
                skipped[-1] = f"... and more bad lines up to line {n}"
            continue
        starts.append(start)
        sizes.append(max(size, 1))
        names.append(parts[2])
    s = np.array(starts, np.uint64)
    ends = s + np.array(sizes, np.uint64)
    # Later lines win for the same start: keep the last occurrence of each start address.
    if len(s):
        rev = np.arange(len(s))[::-1]
        _u, first_in_rev = np.unique(s[rev], return_index=True)
        keep = np.sort(rev[first_in_rev])
        s, ends, names = s[keep], ends[keep], [names[i] for i in keep.tolist()]
    return SymbolTable.from_arrays(s, ends, names), skipped


class PerfMap:
    """A perf map file, re-read when it changes.

    ``exists`` is False if there is no such file (the usual case: most processes have none).

    Example::

        pm = PerfMap(f"/proc/{pid}/root/tmp/perf-{nspid}.map")
        if pm.exists:
            pm.refresh()
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._key: tuple[int, int, int] | None = None
        self.table = SymbolTable.from_arrays([], [], [])
        self.skipped: list[str] = []
        self.exists = False
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the file if it changed; True if the table was (re)loaded."""
        try:
            st = os.stat(self.path)
        except OSError:
            return False
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key == self._key:
            return False
        try:
            with open(self.path, "rb") as f:
                data = f.read(_MAX_BYTES)
        except OSError as e:
            self.skipped = [f"{self.path}: {e.strerror}"]
            return False
        self.table, self.skipped = parse_perf_map(data.decode("utf-8", "replace"))
        self._key = key
        self.exists = True
        return True
