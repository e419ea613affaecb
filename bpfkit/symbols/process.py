"""User-space addresses of one process → names: mappings, ELF files, ``[vdso]``, JIT perf maps.

For an address the process's mapping is found first (one ``searchsorted`` for the whole array);
addresses are then grouped per mapping, and each group is translated to link-time addresses
(``addr - bias``, with the bias from the mapping's file offset and the ELF's PT_LOAD headers:
right for PIE and non-PIE executables and shared libraries alike) and looked up in that file's
symbol table in one go.

Files are read through ``/proc/PID/map_files/START-END``, which is the very inode the process
mapped: that works for binaries deleted or replaced since they were mapped and for processes in
other mount namespaces (containers). When that is not possible, ``/proc/PID/root/PATH`` and then
``PATH`` are tried, and only accepted if the inode still matches.

Example::

    ps = ProcessSymbolizer(pid)
    fr = ps.symbolize(np.array(stack, np.uint64))
    fr.labels(offset=True, module=True)     # ['main+0x1a [prog]', '__libc_start_call_main+0x7a [libc.so.6]']
"""
from __future__ import annotations

import errno
import os
import time
from typing import Iterable, Sequence

import numpy as np

from bpfkit.errors import BpfError, BpfNotFoundError

from .debuginfo import DEFAULT_DEBUG_DIRS
from .elfsyms import ElfCache, ElfSymbols, default_cache
from .framepointers import no_frame_pointer_message
from .perfmap import PerfMap
from .procmaps import Mapping, ProcMaps, namespace_pid, read_maps, start_time
from .table import UNKNOWN, Frames, filled

_FileKey = tuple[str, int, str]  # (dev, inode, path)


def _root_prefix(pid: int) -> str:
    """``/proc/PID/root`` if the process has another root directory than ours (a container or a
    chroot), else ``""``: its paths are ours."""
    proc_root = f"/proc/{pid}/root"
    try:
        a, b = os.stat(proc_root), os.stat("/")
    except OSError:
        return proc_root
    return "" if (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) else proc_root


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
        return data[data.rindex(b")") + 2:].split()[0] in (b"Z", b"X")
    except (OSError, ValueError, IndexError):
        return False


def _read_own_vdso() -> bytes | None:
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                if line.rstrip().endswith("[vdso]"):
                    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
                    with open("/proc/self/mem", "rb") as mem:
                        mem.seek(lo)
                        return mem.read(hi - lo)
    except (OSError, ValueError):
        pass
    return None


class ProcessSymbolizer:
    """Symbolizes addresses of process ``pid``, keeping its mappings and symbol tables.

    ``debug_dirs`` are the roots searched for separate debug files (default
    ``/usr/lib/debug``); ``cache`` is the ELF cache (shared by default); ``max_age`` is how old
    (seconds) the mappings snapshot may get before a living process's maps are re-read.
    ``problems`` collects reasons some mapping could not be symbolized (file unreadable,
    malformed ELF, debug file with a wrong CRC, bad maps lines, bad perf-map lines).

    Raises BpfNotFoundError if the process does not exist.

    Example::

        ps = ProcessSymbolizer(pid)
        ps.load_all()                    # read every symbol table now, e.g. before the process exits
        ps.symbolize(addrs).names
    """

    def __init__(self, pid: int, *, debug_dirs: Sequence[str] = DEFAULT_DEBUG_DIRS,
                 cache: ElfCache | None = None, max_age: float = 1.0) -> None:
        self.pid = pid
        self.debug_dirs = tuple(debug_dirs)
        self.cache = cache if cache is not None else default_cache()
        self.max_age = max_age
        self.start_time = start_time(pid)
        self.root = _root_prefix(pid)
        self.problems: list[str] = []
        self._elfs: dict[_FileKey, ElfSymbols | None] = {}
        self._vdso: ElfSymbols | None = None
        self._perf: PerfMap | None = None
        self._perf_path_seen = ""
        self.maps: ProcMaps = self._read_maps()
        if not self.maps.mappings and _is_zombie(pid):
            # an exited process not yet reaped keeps its pid and /proc entry but no mappings:
            # say it is gone (as for a reaped one) instead of naming every address [unknown]
            raise BpfNotFoundError(f"process {pid} exited before its mappings were read "
                                   "(remember() it while it runs)", errno.ESRCH)

    def _read_maps(self) -> ProcMaps:
        pm = read_maps(self.pid)
        self.problems += [f"/proc/{self.pid}/maps {s}" for s in pm.skipped]
        self._read_at = time.monotonic()
        return pm

    @property
    def alive(self) -> bool:
        """True while the same process (not a later one reusing the pid) exists."""
        st = start_time(self.pid)
        return st is not None and st == self.start_time

    def refresh(self) -> bool:
        """Re-read the mappings if the process still exists; False if it is gone (the last
        snapshot stays in use)."""
        if not self.alive:
            return False
        try:
            maps = self._read_maps()
        except BpfError:
            return False
        if not maps.mappings and self.maps.mappings:
            return False  # exiting: its mappings are gone already; keep the last snapshot
        self.maps = maps
        return True

    # -- sources of symbols -------------------------------------------------------------------

    def _elf(self, m: Mapping) -> ElfSymbols | None:
        key = (m.dev, m.inode, m.path)
        if key in self._elfs:
            return self._elfs[key]
        root = self.root
        # map_files is the very inode mapped (deleted, replaced, other namespace), but it vanishes
        # with the process: a file still at its path (same inode) is remembered by that path.
        map_file: tuple[str, int | None] = (f"/proc/{self.pid}/map_files/{m.map_files_name}", None)
        tries: list[tuple[str, int | None]] = [map_file]
        if not m.deleted:
            tries = [(root + m.path, m.inode), map_file] + ([(m.path, m.inode)] if root else [])
        es: ElfSymbols | None = None
        reasons = []
        for path, inode in tries:
            try:
                es = self.cache.load(path, display=m.path, debug_dirs=self.debug_dirs, root=root,
                                     expect_inode=inode)
                break
            except BpfError as e:
                reasons.append(str(e))
        if es is None:
            self.problems.append(f"{m.path}: cannot read its symbols: " + "; ".join(reasons))
        else:
            self.problems += [f"{m.path}: {p}" for p in es.problems if p not in self.problems]
        self._elfs[key] = es
        return es

    def _vdso_symbols(self, m: Mapping) -> ElfSymbols | None:
        if self._vdso is None:
            data = None
            try:
                with open(f"/proc/{self.pid}/mem", "rb") as mem:
                    mem.seek(m.start)
                    data = mem.read(m.end - m.start)
            except (OSError, ValueError, OverflowError):
                data = _read_own_vdso()  # the kernel maps the same image into every 64-bit process
            if data:
                try:
                    self._vdso = self.cache.load_image(data, "[vdso]")
                except BpfError as e:
                    self.problems.append(f"[vdso]: {e}")
        return self._vdso

    def perf_map(self) -> PerfMap | None:
        """The process's JIT map (``/tmp/perf-NSPID.map`` inside its root), re-read if it grew;
        None if it has none."""
        if self._perf is None:
            path = f"/proc/{self.pid}/root/tmp/perf-{namespace_pid(self.pid)}.map"
            if not os.path.exists(path):
                path = f"/tmp/perf-{self.pid}.map"
            self._perf = PerfMap(path)
        else:
            self._perf.refresh()
        if self._perf.skipped and self._perf.path != self._perf_path_seen:
            self._perf_path_seen = self._perf.path
            self.problems += [f"{self._perf.path} {s}" for s in self._perf.skipped]
        return self._perf if self._perf.exists else None

    def load_all(self) -> "ProcessSymbolizer":
        """Load the symbols of every executable mapping, the vdso and the perf map now, so the
        process can exit before its addresses are symbolized. Returns self."""
        for m in self.maps.mappings:
            if m.executable and m.kind == "file":
                self._elf(m)
            elif m.kind == "vdso":
                self._vdso_symbols(m)
        self.perf_map()
        return self

    # -- lookup -----------------------------------------------------------------------------

    def symbolize(self, addrs: Iterable[int] | np.ndarray, lines: bool = False) -> Frames:
        """Symbolize user-space addresses of this process (any order, any number).

        Unknown names are ``"[unknown]"``; then ``offsets`` is the offset into the mapped file
        (or the address itself outside any mapping) and ``modules`` says where the address was.
        ``lines=True`` also fills ``sources`` with ``"file:line"`` from DWARF where there is some
        (slow the first time per file: see :mod:`.dwarf`).

        Example::

            fr = ps.symbolize(addrs)
            fr.names, fr.offsets, fr.modules
        """
        a = np.asarray(addrs if isinstance(addrs, np.ndarray) else list(addrs), np.uint64)
        if a.ndim != 1:
            a = a.ravel()
        mi = self.maps.find(a)
        stale = time.monotonic() - self._read_at > self.max_age
        if ((mi < 0).any() or stale) and self.refresh():
            mi = self.maps.find(a)
        out = Frames.empty(a)
        if lines:
            out.sources = filled(len(a), "")
        if len(a) == 0:
            return out
        # Group addresses by mapping. Mapping indices are small: as uint16 numpy radix-sorts them.
        key = (mi + 1).astype(np.uint16) if len(self.maps.mappings) < 0xFFFF else mi
        order = np.argsort(key, kind="stable")
        sk = mi[order]
        first = np.concatenate(([0], np.flatnonzero(sk[1:] != sk[:-1]) + 1))
        uniq = sk[first]
        bounds = np.append(first, len(a))
        for k, u in enumerate(uniq.tolist()):
            sel = order[bounds[k]:bounds[k + 1]]
            if u < 0:
                self._fill_jit(a, sel, out, None)
                continue
            m = self.maps.mappings[u]
            kind = m.kind
            es = self._elf(m) if kind == "file" else self._vdso_symbols(m) if kind == "vdso" else None
            out.modules[sel] = m.path or "[anon]"
            out.offsets[sel] = a[sel] - np.uint64(m.start) + np.uint64(m.offset)
            if es is not None:
                bias = es.bias(m.start, m.offset, m.executable)
                if bias is not None:
                    vaddrs = a[sel] - np.uint64(bias % (1 << 64))
                    idx, off = es.table.lookup(vaddrs)
                    hit = idx >= 0
                    out.names[sel[hit]] = es.table.names_of(idx[hit])
                    out.offsets[sel[hit]] = off[hit]
                    if lines and out.sources is not None and es.dwarf_path:
                        try:
                            out.sources[sel] = es.source_lines(vaddrs)
                        except BpfError as e:
                            if str(e) not in self.problems:
                                self.problems.append(str(e))
            elif kind == "anon":
                self._fill_jit(a, sel, out, m)
        return out

    def _fill_jit(self, a: np.ndarray, sel: np.ndarray, out: Frames, m: Mapping | None) -> None:
        pmap = self.perf_map()
        if pmap is None:
            return
        idx, off = pmap.table.lookup(a[sel])
        hit = idx >= 0
        if hit.any():
            out.names[sel[hit]] = pmap.table.names_of(idx[hit])
            out.offsets[sel[hit]] = off[hit]
            out.modules[sel[hit]] = f"/tmp/perf-{namespace_pid(self.pid)}.map"

    def frame_pointer_warnings(self, modules: Iterable[str] | None = None) -> list[str]:
        """One message per executable file of this process that was built without frame
        pointers (only files in ``modules``, e.g. ``set(frames.modules)``, if given).

        Example::

            for w in ps.frame_pointer_warnings(set(fr.modules)):
                print("warning:", w, file=sys.stderr)
        """
        wanted = None if modules is None else set(modules)
        out: list[str] = []
        for m in self.maps.mappings:
            if not (m.executable and m.kind == "file") or (wanted is not None and m.path not in wanted):
                continue
            es = self._elf(m)
            msg = no_frame_pointer_message(m.path)
            if es is not None and es.frame_pointers is False and msg not in out:
                out.append(msg)
        return out

    def elf(self, path: str) -> ElfSymbols | None:
        """The symbols of the mapped file ``path`` (as the process names it), or None."""
        for m in self.maps.mappings:
            if m.path == path and m.kind == "file":
                return self._elf(m)
        return None


def unknown_count(frames: Frames) -> int:
    """How many frames got no name (for tools' summaries)."""
    return int((frames.names == UNKNOWN).sum())
