"""Kernel addresses → names from ``/proc/kallsyms``, parsed and looked up with numpy.

``/proc/kallsyms`` has a line per symbol, ``ffffffff81000000 T _stext``, and for module symbols
(including BPF programs and trampolines, listed as pseudo-modules ``[bpf]``) a tab and
``[module]``. The file is parsed without a Python loop per line: the hex addresses, type letters
and the positions of names and module names come out of whole-buffer numpy operations, and
names are decoded only for the symbols a lookup hits. Only text symbols (``tTwW``) are kept:
stack addresses are code.

Example::

    ks = kernel_symbols()
    fr = ks.lookup(np.array([ks.address("do_syscall_64") + 5], np.uint64))
    fr[0]          # Frame(address=..., name='do_syscall_64', offset=5, module='[kernel]')
"""
from __future__ import annotations

import errno
import os
import threading

import numpy as np

from bpfkit.errors import BpfNotFoundError, BpfPermissionError, ObjectFormatError

from .table import Frames, SymbolTable, _Names, filled, pick_aliases

KALLSYMS = "/proc/kallsyms"
# Kernel symbols carry no size; an address this far past the last symbol before it is not in it.
_MAX_SYMBOL_SIZE = 1 << 20

_HEX = np.full(256, 255, np.uint8)
_HEX[np.frombuffer(b"0123456789", np.uint8)] = np.arange(10)
_HEX[np.frombuffer(b"abcdef", np.uint8)] = np.arange(10, 16)
_HEX[np.frombuffer(b"ABCDEF", np.uint8)] = np.arange(10, 16)
_TEXT_TYPES = np.zeros(256, bool)
_TEXT_TYPES[np.frombuffer(b"tTwW", np.uint8)] = True


class KernelSymbols:
    """The kernel's text symbols as a sorted table with vectorised lookup.

    ``skipped`` counts malformed lines (with the first few reasons in ``skipped_reasons``).
    Raises BpfPermissionError when the addresses are hidden (not root, or
    ``kernel.kptr_restrict``), BpfNotFoundError if the file does not exist.

    Example::

        ks = KernelSymbols()
        ks.name(ks.address("vfs_read") + 3)     # 'vfs_read'
    """

    def __init__(self, path: str = KALLSYMS, data: bytes | None = None) -> None:
        if data is None:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                raise BpfNotFoundError(f"{path} does not exist (kernel built without CONFIG_KALLSYMS?)",
                                       errno.ENOENT) from None
            except PermissionError:
                raise BpfPermissionError(f"cannot read {path}: run as root", errno.EACCES) from None
        self.path = path
        self.skipped = 0
        self.skipped_reasons: list[str] = []
        self._parse(data)

    def _skip(self, n: int, reason: str) -> None:
        if n:
            self.skipped += n
            if len(self.skipped_reasons) < 5:
                self.skipped_reasons.append(f"{n} line(s): {reason}")

    def _parse(self, data: bytes) -> None:
        if data and not data.endswith(b"\n"):
            data += b"\n"
        buf = np.frombuffer(data, np.uint8)
        nl = np.flatnonzero(buf == 10)
        starts = np.concatenate(([0], nl[:-1] + 1)).astype(np.int64) if len(nl) else np.zeros(0, np.int64)
        width = data.find(b" ")
        if len(nl) == 0 or not 8 <= width <= 16:
            raise ObjectFormatError(f"{self.path}: not in kallsyms format (first line {data[:80]!r})")
        # "ADDR T NAME[\tMODULE]": the layout is fixed-width up to the name.
        ok = nl - starts > width + 3
        safe = np.where(ok, starts, 0)
        padded = np.concatenate((buf, np.zeros(width + 3, np.uint8)))  # line 0 may be shorter than `safe` reads
        ok &= (padded[safe + width] == 32) & (padded[safe + width + 2] == 32)
        self._skip(int((~ok).sum()), "not 'ADDRESS TYPE NAME'")
        starts, nl = starts[ok], nl[ok]
        text = _TEXT_TYPES[buf[starts + width + 1]]
        starts, nl = starts[text], nl[text]
        digits = _HEX[buf[starts[:, None] + np.arange(width)]]
        good = (digits != 255).all(axis=1)
        self._skip(int((~good).sum()), "address is not hexadecimal")
        starts, nl, digits = starts[good], nl[good], digits[good]
        addrs = np.zeros(len(starts), np.uint64)
        for k in range(width):
            addrs = (addrs << np.uint64(4)) | digits[:, k].astype(np.uint64)
        if len(addrs) and not addrs.any():
            raise BpfPermissionError(
                f"{self.path} shows every address as 0: kernel addresses are hidden from this process; " +
                ("sysctl kernel.kptr_restrict is 2 (hidden even from root): set it to 1" if os.geteuid() == 0
                 else "run as root (and check sysctl kernel.kptr_restrict)"), errno.EPERM)
        types = buf[starts + width + 1]
        is_global = (types >= ord("A")) & (types <= ord("Z"))
        # Names end at a tab (then "[module]") or at the newline: make both NULs for the lazy decoder.
        z = buf.copy()
        z[z == 10] = 0
        tabs = np.flatnonzero(buf == 9)
        z[tabs] = 0
        has_mod = np.zeros(len(starts), bool)
        mod_off = np.zeros(len(starts), np.int64)
        if len(starts) and len(tabs):
            line = np.searchsorted(nl, tabs)  # the first kept line ending after the tab...
            ok_t = line < len(nl)
            line, tabs = line[ok_t], tabs[ok_t]
            inside = tabs > starts[line] + width + 2  # ...holds it only if the tab is past its name start
            line, tabs = line[inside], tabs[inside]
            first_tab = np.ones(len(line), bool)
            first_tab[1:] = line[1:] != line[:-1]
            has_mod[line[first_tab]] = True
            mod_off[line[first_tab]] = tabs[first_tab] + 2  # skip "\t["
        brackets = nl[has_mod] - 1
        z[brackets[buf[brackets] == ord("]")]] = 0
        blob = z.tobytes()
        rank = (~is_global).astype(np.int64)
        order = np.lexsort((rank, addrs))
        addrs, starts, has_mod, mod_off, rank = addrs[order], starts[order], has_mod[order], mod_off[order], rank[order]
        names = _Names([blob], np.zeros(len(addrs), np.uint8), (starts + width + 3).astype(np.uint32))
        keep = pick_aliases(addrs, rank, names)
        addrs, has_mod, mod_off, names = addrs[keep], has_mod[keep], mod_off[keep], names.subset(keep)
        nxt = np.append(addrs[1:], np.uint64(np.iinfo(np.uint64).max))
        ends = np.minimum(nxt, addrs + np.uint64(_MAX_SYMBOL_SIZE))
        self.table = SymbolTable(addrs, ends, names)
        self._has_mod = has_mod
        self._mods = _Names([blob], np.zeros(len(addrs), np.uint8), mod_off.astype(np.uint32))
        self._by_name: dict[str, int] | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.table)

    def lookup(self, addrs: np.ndarray) -> Frames:
        """Symbolize kernel addresses; ``modules`` is ``"[kernel]"`` or ``"[module]"``.

        Example::

            ks.lookup(np.array(stack, np.uint64)).names
        """
        a = np.asarray(addrs, np.uint64)
        idx, off = self.table.lookup(a)
        names = self.table.names_of(idx)
        mods = filled(len(a), "")
        hit = idx >= 0
        mods[hit] = "[kernel]"
        in_mod = np.zeros(len(a), bool)
        in_mod[hit] = self._has_mod[idx[hit]]
        if in_mod.any():
            mods[in_mod] = ["[" + m + "]" for m in self._mods.take(idx[in_mod])]
        return Frames(a, names, np.where(hit, off, a).astype(np.uint64), mods)

    def name(self, addr: int) -> str | None:
        """The function containing ``addr`` (None if no symbol does)."""
        f = self.lookup(np.array([addr], np.uint64))[0]
        return f.name if f.known else None

    def address(self, name: str) -> int:
        """The address of text symbol ``name``; raises BpfNotFoundError if there is none.

        Example::

            hex(ks.address("do_syscall_64"))
        """
        with self._lock:
            if self._by_name is None:
                all_names = self.table.names_of(np.arange(len(self.table)))
                self._by_name = {}
                for i, n in enumerate(all_names.tolist()):
                    self._by_name.setdefault(n, i)
        j = self._by_name.get(name)
        if j is None:
            raise BpfNotFoundError(f"no kernel text symbol {name!r} in {self.path}", errno.ENOENT)
        return int(self.table.starts[j])


_cached: KernelSymbols | None = None
_cached_lock = threading.Lock()


def kernel_symbols(refresh: bool = False) -> KernelSymbols:
    """The kernel symbol table, parsed once per process; ``refresh=True`` re-reads it (BPF programs
    and modules loaded since then appear).

    Example::

        kernel_symbols().lookup(addrs).labels(offset=True)
    """
    global _cached
    with _cached_lock:
        if _cached is None or refresh:
            _cached = KernelSymbols()
        return _cached
