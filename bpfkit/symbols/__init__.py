"""Addresses → names, for the kernel and for user space, vectorised with numpy.

* :class:`Symbolizer` — the one object tools use: ``kernel(addrs)``, ``user(pid, addrs)``,
  ``remember(pid)``, ``build_id_frames(frames)``, ``frame_pointer_warnings(pid)``.
* :class:`KernelSymbols` / :func:`kernel_symbols` — ``/proc/kallsyms`` incl. modules and BPF programs.
* :class:`ProcessSymbolizer` — one process: ``/proc/PID/maps``, ELF ``.symtab``/``.dynsym``,
  MiniDebugInfo, separate debug files (build-id, ``.gnu_debuglink``), deleted binaries, other
  mount namespaces, ``[vdso]``, JIT perf maps.
* :func:`load_elf_symbols`, :func:`frame_pointer_warning` — one ELF file.

Every lookup takes a numpy array of addresses and returns :class:`Frames` (parallel arrays of
names, offsets and modules); unknown addresses are named ``"[unknown]"``.

Example::

    from bpfkit.symbols import Symbolizer
    sym = Symbolizer()
    frames = sym.user(pid, np.array(stack, np.uint64))
    for f in frames:
        print(f.label(offset=True, module=True))      # main+0x1a [prog]
    for w in sym.frame_pointer_warnings(pid, set(frames.modules)):
        print("warning:", w)
"""
from __future__ import annotations

from .debuginfo import DEFAULT_DEBUG_DIRS, find_debug_file
from .elfsyms import ElfCache, ElfSymbols, default_cache, load_elf_symbols
from .framepointers import no_frame_pointer_message
from .kernel import KernelSymbols, kernel_symbols
from .perfmap import PerfMap, parse_perf_map
from .process import ProcessSymbolizer
from .procmaps import Mapping, ProcMaps, parse_maps, read_maps
from .symbolizer import (
    BPF_STACK_BUILD_ID_EMPTY,
    BPF_STACK_BUILD_ID_IP,
    BPF_STACK_BUILD_ID_VALID,
    BUILD_ID_FRAME,
    Symbolizer,
)
from .table import UNKNOWN, Frame, Frames, SymbolTable

__all__ = [
    "BPF_STACK_BUILD_ID_EMPTY", "BPF_STACK_BUILD_ID_IP", "BPF_STACK_BUILD_ID_VALID", "BUILD_ID_FRAME",
    "DEFAULT_DEBUG_DIRS", "ElfCache", "ElfSymbols", "Frame", "Frames", "KernelSymbols", "Mapping", "PerfMap",
    "ProcMaps", "ProcessSymbolizer", "SymbolTable", "Symbolizer", "UNKNOWN", "default_cache", "find_debug_file",
    "frame_pointer_warning", "kernel_symbols", "load_elf_symbols", "parse_maps", "parse_perf_map", "read_maps",
]


def frame_pointer_warning(path: str) -> str | None:
    """The "likely truncated" message if the ELF file at ``path`` has no frame pointers, else None
    (also None when it cannot tell, e.g. no symbols to find functions by).

    Example::

        frame_pointer_warning("/usr/bin/python3.11")
        # 'stacks through /usr/bin/python3.11 are likely truncated: no frame pointers ...'
    """
    es = load_elf_symbols(path)
    return no_frame_pointer_message(path) if es.frame_pointers is False else None
