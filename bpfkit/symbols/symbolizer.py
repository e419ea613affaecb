"""One object for every "address → name" a tracing tool needs: kernel, user (per pid), build-id.

:class:`Symbolizer` keeps a bounded set of :class:`ProcessSymbolizer` (one per pid, replaced when
the pid is reused by a new process), shares one ELF cache between them and reads kallsyms once.
Processes that may exit before their stacks are read are handled two ways:

* ``remember(pid)`` while the process runs (e.g. when a tool first sees the pid, or on its
  ``sched_process_exec``/``exit``): its mappings and every symbol table are loaded and kept;
* build-id stacks (``BPF_F_STACK_BUILD_ID``): frames carry (build-id, file offset), resolved
  through the files already seen (any process) or the debug directories, no pid needed.

Example::

    sym = Symbolizer()
    sym.remember(pid)                           # before it can exit
    user = sym.user(pid, user_addrs)            # Frames
    kern = sym.kernel(kernel_addrs)
    print(user.labels(offset=True, module=True))
"""
from __future__ import annotations

import errno
import os
import threading
from collections import OrderedDict
from typing import Iterable, Sequence

import numpy as np

from bpfkit.errors import BpfError, BpfNotFoundError, BpfUsageError

from ..maps.stacktrace import BUILD_ID_FRAME  # the stack map's frame layout: one definition
from .debuginfo import DEFAULT_DEBUG_DIRS
from .elfsyms import ElfCache, ElfSymbols, default_cache
from .kernel import KernelSymbols, kernel_symbols
from .procmaps import start_time
from .process import ProcessSymbolizer
from .table import Frames

BPF_STACK_BUILD_ID_EMPTY = 0
BPF_STACK_BUILD_ID_VALID = 1
BPF_STACK_BUILD_ID_IP = 2


class Symbolizer:
    """Kernel, per-process and build-id symbolization with shared caches.

    ``debug_dirs``: roots for separate debug files; ``max_processes``: how many processes'
    mappings are kept (least recently used dropped first).

    Example::

        sym = Symbolizer(debug_dirs=["/usr/lib/debug", "/opt/dbg"])
        sym.user(pid, addrs).names
    """

    def __init__(self, *, debug_dirs: Sequence[str] = DEFAULT_DEBUG_DIRS, cache: ElfCache | None = None,
                 max_processes: int = 256) -> None:
        self.debug_dirs = tuple(debug_dirs)
        self.cache = cache if cache is not None else default_cache()
        self.max_processes = max_processes
        self._procs: OrderedDict[int, ProcessSymbolizer] = OrderedDict()
        self._kernel: KernelSymbols | None = None
        self._lock = threading.Lock()

    # -- kernel -----------------------------------------------------------------------------

    def kernel(self, addrs: Iterable[int] | np.ndarray, refresh: bool = False) -> Frames:
        """Symbolize kernel addresses (``refresh=True`` re-reads kallsyms first, to see BPF
        programs or modules loaded since).

        Example::

            sym.kernel(kernel_stack).names
        """
        if self._kernel is None or refresh:
            self._kernel = kernel_symbols(refresh=refresh)
        return self._kernel.lookup(np.asarray(addrs if isinstance(addrs, np.ndarray) else list(addrs), np.uint64))

    # -- processes --------------------------------------------------------------------------

    def process(self, pid: int) -> ProcessSymbolizer:
        """The symbolizer of ``pid``: the remembered one if it is still that process (or the
        process is gone), else a fresh one.

        Raises BpfNotFoundError if the process does not exist and was never remembered.
        """
        with self._lock:
            ps = self._procs.get(pid)
            if ps is not None:
                now = start_time(pid)
                if now is None or now == ps.start_time:
                    self._procs.move_to_end(pid)
                    return ps
                del self._procs[pid]  # pid reused by a new process
        ps = ProcessSymbolizer(pid, debug_dirs=self.debug_dirs, cache=self.cache)
        with self._lock:
            self._procs[pid] = ps
            while len(self._procs) > self.max_processes:
                self._procs.popitem(last=False)
        return ps

    def remember(self, pid: int) -> ProcessSymbolizer | None:
        """Snapshot ``pid``'s mappings and load all its symbol tables now, so its addresses still
        resolve after it exits. Returns None if it already exited (nothing to remember).

        Example::

            sym.remember(proc.pid); proc.wait(); sym.user(proc.pid, addrs)
        """
        try:
            return self.process(pid).load_all()
        except BpfNotFoundError:
            return None

    def forget(self, pid: int) -> None:
        """Drop what is remembered of ``pid``."""
        with self._lock:
            self._procs.pop(pid, None)

    def user(self, pid: int, addrs: Iterable[int] | np.ndarray, lines: bool = False) -> Frames:
        """Symbolize user-space addresses of process ``pid`` (``lines=True``: also DWARF
        ``"file:line"`` in ``sources``).

        Raises BpfNotFoundError if the process exited and was not remembered.

        Example::

            sym.user(pid, stack).labels(offset=True)
        """
        return self.process(pid).symbolize(addrs, lines=lines)

    def frame_pointer_warnings(self, pid: int, modules: Iterable[str] | None = None) -> list[str]:
        """Messages naming the executables and libraries of ``pid`` built without frame pointers
        (see :meth:`ProcessSymbolizer.frame_pointer_warnings`); ``[]`` if the process is gone and
        was not remembered."""
        try:
            return self.process(pid).frame_pointer_warnings(modules)
        except BpfNotFoundError:
            return []

    # -- build-id stacks ----------------------------------------------------------------------

    def elf_by_build_id(self, build_id: str) -> ElfSymbols | None:
        """Symbols of the file with ``build_id``: from the cache, from a path where that file was
        seen before, or from the debug directories (``.build-id/xx/rest`` then ``.debug``)."""
        es = self.cache.get_build_id(build_id)
        if es is not None:
            return es
        cands = []
        seen = self.cache.paths_by_build_id.get(build_id)
        if seen:
            cands.append(seen)
        for d in self.debug_dirs:
            base = f"{d}/.build-id/{build_id[:2]}/{build_id[2:]}"
            cands += [base, base + ".debug"]
        for path in cands:
            if not os.path.isfile(path):
                continue
            try:
                es = self.cache.load(path, debug_dirs=self.debug_dirs)
            except BpfError:
                continue
            if es.build_id == build_id:
                return es
        return None

    def build_id_frames(self, frames: np.ndarray, pid: int | None = None) -> Frames:
        """Symbolize ``struct bpf_stack_build_id`` frames (a :data:`BUILD_ID_FRAME` array, e.g.
        from ``bpf_get_stack(..., BPF_F_USER_STACK | BPF_F_USER_BUILD_ID)``).

        VALID frames resolve through the build-id; IP frames (the kernel could not read the
        build-id) through ``pid``'s mappings if ``pid`` is given; EMPTY frames stay unknown.
        ``addresses`` in the result hold the file offset (VALID) or the ip (IP).

        Example::

            fr = sym.build_id_frames(raw.view(BUILD_ID_FRAME))
        """
        f = np.asarray(frames)
        if f.dtype != BUILD_ID_FRAME:
            if f.dtype.itemsize != BUILD_ID_FRAME.itemsize and f.dtype != np.uint8:
                raise BpfUsageError(f"build-id frames must be a BUILD_ID_FRAME array ({BUILD_ID_FRAME.itemsize} "
                                    f"bytes each), not dtype {f.dtype}", errno.EINVAL)
            f = np.ascontiguousarray(f).view(BUILD_ID_FRAME).ravel()
        out = Frames.empty(f["offset"])
        valid = np.flatnonzero(f["status"] == BPF_STACK_BUILD_ID_VALID)
        if len(valid):
            ids = f["build_id"][valid]
            uniq, inv = np.unique(ids, axis=0, return_inverse=True)
            inv = inv.ravel()
            for k in range(len(uniq)):
                sel = valid[inv == k]
                bid = bytes(uniq[k]).hex()
                es = self.elf_by_build_id(bid)
                if es is None:
                    out.modules[sel] = f"[build-id {bid}]"
                    continue
                out.modules[sel] = es.path
                vaddr, ok = es.offsets_to_vaddrs(f["offset"][sel])
                idx, off = es.table.lookup(vaddr)
                hit = ok & (idx >= 0)
                out.names[sel[hit]] = es.table.names_of(idx[hit])
                out.offsets[sel[hit]] = off[hit]
        ip = np.flatnonzero(f["status"] == BPF_STACK_BUILD_ID_IP)
        if len(ip) and pid is not None:
            sub = self.user(pid, f["offset"][ip])
            out.names[ip], out.offsets[ip], out.modules[ip] = sub.names, sub.offsets, sub.modules
        return out
