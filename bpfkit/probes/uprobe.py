"""uprobes and uretprobes through the uprobe PMU (perf_event_open + BPF link).

The probe point is (file, file offset); the symbol → offset resolution lives in
:mod:`bpfkit.probes.elf`.

Example::

    with prog.attach_uprobe("/usr/bin/bash", "readline"):
        ...
    with prog.attach_uretprobe("c", "malloc", pid=1234):   # libc, one process
        ...
"""
from __future__ import annotations

import ctypes
import os
from typing import Optional, Union

from .. import syscall as sc
from .elf import resolve_library, symbol_offset
from .link import Link, attach_perf_event
from .tracefs import pmu_retprobe_bit, pmu_type

# ref_ctr_offset (USDT semaphores) goes in the upper half of config
_REF_CTR_SHIFT = 32


def attach_uprobe(prog_fd: int, binary: str, symbol: Union[str, int], *, offset: int = 0,
                  pid: int = -1, retprobe: bool = False, ref_ctr_offset: int = 0,
                  cookie: int = 0) -> Link:
    """Attach to ``symbol`` (a name, ``"name+0x10"``, or an int virtual address) in ``binary``
    (a path, an executable on $PATH, or a library short name like ``"c"``). ``pid`` -1 traces
    every process that maps the file."""
    path = resolve_library(binary)
    file_off = symbol_offset(path, symbol if isinstance(symbol, str) else hex(symbol), offset)
    kind = "uretprobe" if retprobe else "uprobe"
    what = f"{kind} {path}:{symbol}" + (f"+{offset:#x}" if offset else "") + (f" pid {pid}" if pid >= 0 else "")
    return attach_uprobe_offset(prog_fd, path, file_off, pid=pid, retprobe=retprobe,
                                ref_ctr_offset=ref_ctr_offset, cookie=cookie, what=what)


def attach_uprobe_offset(prog_fd: int, path: str, file_offset: int, *, pid: int = -1,
                         retprobe: bool = False, ref_ctr_offset: int = 0, cookie: int = 0,
                         what: Optional[str] = None) -> Link:
    """Attach at a raw file offset of ``path``."""
    kind = "uretprobe" if retprobe else "uprobe"
    what = what or f"{kind} {path}@{file_offset:#x}"
    cpath = ctypes.create_string_buffer(os.fsencode(os.path.realpath(path)))
    config = (1 << pmu_retprobe_bit("uprobe")) if retprobe else 0
    config |= ref_ctr_offset << _REF_CTR_SHIFT
    attr = sc.PerfEventAttr(type=pmu_type("uprobe"), config=config, config1=ctypes.addressof(cpath),
                            config2=file_offset, sample_period=1, wakeup_events=1)
    perf_fd = sc.perf_event_open(attr, pid=pid if pid >= 0 else -1, cpu=0 if pid < 0 else -1, what=what)
    return attach_perf_event(prog_fd, perf_fd, what, cookie)
