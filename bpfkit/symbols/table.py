"""Sorted symbol tables looked up a whole numpy array at a time, and the frames they produce.

A :class:`SymbolTable` is a set of address ranges ``[start, end)`` with names. Lookup is one
``np.searchsorted`` over the starts for all addresses, so symbolizing a million addresses costs
a few tens of milliseconds, not a million Python calls. Names are decoded lazily, only for the
symbols some address actually hit, so a table of a million symbols costs nothing until used.

Example::

    t = SymbolTable.from_arrays([0x1000, 0x1040], [0x1040, 0x1100], ["main", "helper"])
    idx, off = t.lookup(np.array([0x1004, 0x1050, 0x2000], np.uint64))
    idx.tolist(), off.tolist()          # ([0, 1, -1], [4, 16, 0])
    t.names_of(idx).tolist()            # ['main', 'helper', '[unknown]']
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple, Sequence

import numpy as np

from .demangle import demangle

UNKNOWN = "[unknown]"


def filled(n: int, value: object) -> np.ndarray:
    """An object array of ``n`` times ``value`` (``np.full`` is ~40x slower for objects)."""
    out = np.empty(n, dtype=object)
    out.fill(value)
    return out


class _Names:
    """Symbol names decoded on demand from one or more ELF string tables (or given outright)."""

    def __init__(self, strtabs: Sequence[bytes], src: np.ndarray, off: np.ndarray) -> None:
        self._strtabs = list(strtabs)
        self._src = src
        self._off = off
        self._cache = filled(len(off), None)
        self._done = np.zeros(len(off), bool)

    @classmethod
    def of(cls, names: Sequence[str]) -> "_Names":
        n = cls([], np.zeros(len(names), np.uint8), np.zeros(len(names), np.uint32))
        for i, name in enumerate(names):
            n._cache[i] = name
        n._done[:] = True
        return n

    def __len__(self) -> int:
        return len(self._off)

    def take(self, idx: np.ndarray) -> np.ndarray:
        """Names at ``idx`` (all valid indices) as an object array."""
        if len(idx) == 0:
            return np.empty(0, dtype=object)
        need = ~self._done[idx]
        if need.any():
            new = np.unique(idx[need]).tolist()
            decoded = []
            for i in new:
                tab = self._strtabs[int(self._src[i])]
                start = int(self._off[i])
                end = tab.find(b"\0", start)
                decoded.append(tab[start:end if end >= 0 else None].decode("utf-8", "replace") or UNKNOWN)
            if any(d.startswith("_Z") for d in decoded):
                decoded = demangle(decoded)
            for i, d in zip(new, decoded):
                self._cache[i] = d
                self._done[i] = True
        return self._cache[idx]

    def shape(self) -> tuple[np.ndarray, np.ndarray]:
        """``(leading underscores, length)`` of every name, computed on the string tables with
        numpy (underscores counted up to 8)."""
        n = len(self._off)
        under = np.zeros(n, np.int64)
        length = np.zeros(n, np.int64)
        for s, tab in enumerate(self._strtabs):
            sel = np.flatnonzero(self._src == s)
            if not len(sel):
                continue
            arr = np.frombuffer(tab + b"\0" * 9, np.uint8)
            zeros = np.flatnonzero(arr == 0)
            st = np.minimum(self._off[sel].astype(np.int64), len(tab))
            length[sel] = zeros[np.searchsorted(zeros, st)] - st
            run = np.ones(len(sel), bool)
            for k in range(8):
                run &= arr[st + k] == 95  # "_"
                under[sel] += run
        given = np.flatnonzero(self._done)
        if not self._strtabs and len(given):
            strs = [str(x) for x in self._cache[given]]
            length[given] = [len(x) for x in strs]
            under[given] = [min(8, len(x) - len(x.lstrip("_"))) for x in strs]
        return under, length

    def subset(self, keep: np.ndarray) -> "_Names":
        n = _Names(self._strtabs, self._src[keep], self._off[keep])
        n._cache = self._cache[keep]
        n._done = self._done[keep]
        return n


def pick_aliases(value: np.ndarray, rank: np.ndarray, names: _Names) -> np.ndarray:
    """Sorted indices to keep so each address has one name. ``rank``: lower is better (e.g. global
    before weak before local); ties go to the name with the fewest leading underscores, then the
    shortest -- perf's choice, which gives ``malloc`` over ``__libc_malloc`` and
    ``__x64_sys_getpid`` over ``__ia32_sys_getpid``. Fully vectorised: names are not decoded.

    Example::

        keep = pick_aliases(value, rank, names)
    """
    under, length = names.shape()
    order = np.lexsort((length, under, rank, value))
    v = value[order]
    first = np.ones(len(v), bool)
    first[1:] = v[1:] != v[:-1]
    return np.sort(order[first])


class SymbolTable:
    """Named, non-overlapping-or-nested address ranges sorted by start.

    Built by :func:`bpfkit.symbols.load_elf_symbols`, the kallsyms reader and the perf-map
    reader; ``from_arrays`` makes one by hand.

    Example::

        t = SymbolTable.from_arrays([0x10, 0x20], [0x18, 0x30], ["a", "b"])
        t.lookup(np.array([0x1a], np.uint64))[0]      # array([-1]): in the gap after "a"
    """

    def __init__(self, starts: np.ndarray, ends: np.ndarray, names: _Names) -> None:
        if len(starts) > 1 and np.any(starts[1:] < starts[:-1]):
            order = np.argsort(starts, kind="stable")
            starts, ends, names = starts[order], ends[order], names.subset(order)
        self.starts = np.ascontiguousarray(starts, dtype=np.uint64)
        self.ends = np.ascontiguousarray(np.maximum(ends, starts), dtype=np.uint64)
        self._names = names
        # Running maximum of ends: an address past its nearest symbol's end may still lie inside an
        # earlier, enclosing symbol (e.g. a function with a nested local label symbol).
        self._cover = np.maximum.accumulate(self.ends) if len(self.ends) else self.ends

    @classmethod
    def from_arrays(cls, starts: Sequence[int] | np.ndarray, ends: Sequence[int] | np.ndarray,
                    names: Sequence[str]) -> "SymbolTable":
        """A table from parallel sequences of starts, ends (exclusive) and names.

        Example::

            SymbolTable.from_arrays([0x1000], [0x1010], ["f"])
        """
        return cls(np.asarray(starts, dtype=np.uint64), np.asarray(ends, dtype=np.uint64), _Names.of(list(names)))

    def __len__(self) -> int:
        return len(self.starts)

    def lookup(self, addrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(index, offset)`` per address: the symbol containing it (-1 if none) and the distance
        from that symbol's start (0 where index is -1).

        Example::

            idx, off = table.lookup(np.asarray(addresses, np.uint64))
        """
        addrs = np.asarray(addrs, dtype=np.uint64)
        if len(self.starts) == 0 or len(addrs) == 0:
            return np.full(len(addrs), -1, np.int64), np.zeros(len(addrs), np.uint64)
        i = np.searchsorted(self.starts, addrs, side="right").astype(np.int64) - 1
        ok = i >= 0
        ic = np.where(ok, i, 0)
        inside = ok & (addrs < self.ends[ic])
        nested = ok & ~inside & (addrs < self._cover[ic])
        if nested.any():  # rare: walk back to the enclosing symbol
            for k in np.flatnonzero(nested).tolist():
                a, j = addrs[k], int(ic[k])
                while j >= 0 and not (self.starts[j] <= a < self.ends[j]):
                    j -= 1
                ic[k] = max(j, 0)
                inside[k] = j >= 0
        idx = np.where(inside, ic, -1)
        off = np.where(inside, addrs - self.starts[ic], np.uint64(0)).astype(np.uint64)
        return idx, off

    def names_of(self, idx: np.ndarray) -> np.ndarray:
        """Names for indices from :meth:`lookup` (``"[unknown]"`` where the index is -1)."""
        idx = np.asarray(idx, dtype=np.int64)
        out = filled(len(idx), UNKNOWN)
        hit = idx >= 0
        if hit.any():
            out[hit] = self._names.take(idx[hit])
        return out

    def name_at(self, i: int) -> str:
        """The name of symbol ``i``."""
        return str(self._names.take(np.array([i]))[0])

    def find(self, name: str) -> list[int]:
        """Indices of the symbols called ``name`` (decodes every name once; for tests and tools,
        not hot paths)."""
        names = self._names.take(np.arange(len(self.starts)))
        return np.flatnonzero(names == name).tolist()


class Frame(NamedTuple):
    """One symbolized address.

    ``module`` is the file the address lies in as the process sees it ("/usr/lib/.../libc.so.6"),
    ``"[kernel]"``, a kernel module ``"[ext4]"``, ``"[vdso]"``, ``"[heap]"``, ``"[anon]"``, a perf
    map path, or ``""`` when no mapping covers the address. ``offset`` is from the symbol's start,
    or from the start of ``module``'s file when the name is unknown.

    Example::

        f = sym.user(pid, [addr])[0]
        f.name, hex(f.offset), f.module
    """

    address: int
    name: str
    offset: int
    module: str
    source: str = ""  # "file:line" when DWARF line info was asked for and found

    @property
    def known(self) -> bool:
        return self.name != UNKNOWN

    def label(self, offset: bool = False, module: bool = False) -> str:
        """bcc's ``BPF.sym`` spelling: ``name``, ``name+0x1a``, ``name+0x1a [libc.so.6]``."""
        text = self.name
        if offset and self.known:
            text += f"+{self.offset:#x}"
        if module and self.module:
            mod = self.module if self.module.startswith("[") else f"[{self.module.rsplit('/', 1)[-1]}]"
            text += " " + mod
        return text


@dataclass
class Frames:
    """Symbolized addresses as parallel arrays (one element per input address).

    Example::

        fr = sym.user(pid, addrs)
        fr.names[:3], fr.offsets[:3], fr.modules[:3]
        [f.label(offset=True) for f in fr]
    """

    addresses: np.ndarray  # uint64
    names: np.ndarray      # object (str), "[unknown]" where no symbol covers the address
    offsets: np.ndarray    # uint64
    modules: np.ndarray    # object (str)
    sources: np.ndarray | None = None  # object (str) "file:line", if requested

    @classmethod
    def empty(cls, addrs: np.ndarray) -> "Frames":
        n = len(addrs)
        return cls(np.asarray(addrs, np.uint64), filled(n, UNKNOWN), np.asarray(addrs, np.uint64).copy(),
                   filled(n, ""))

    def __len__(self) -> int:
        return len(self.addresses)

    def __getitem__(self, i: int) -> Frame:
        src = "" if self.sources is None else (self.sources[i] or "")
        return Frame(int(self.addresses[i]), str(self.names[i]), int(self.offsets[i]), str(self.modules[i]), src)

    def __iter__(self) -> Iterator[Frame]:
        return (self[i] for i in range(len(self)))

    @property
    def known(self) -> np.ndarray:
        """Boolean mask of addresses that got a name."""
        return self.names != UNKNOWN

    def labels(self, offset: bool = False, module: bool = False) -> list[str]:
        """:meth:`Frame.label` of every frame."""
        if not offset and not module:
            return [str(n) for n in self.names]
        return [f.label(offset, module) for f in self]
