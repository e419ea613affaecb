"""Does a binary keep frame pointers? A prologue heuristic, so tools can say why stacks are short.

The kernel walks user stacks (``bpf_get_stackid``/``bpf_get_stack``) by following the frame
pointer chain. Code built with ``-fomit-frame-pointer`` (the default at ``-O2`` on most
distributions) breaks that chain, and the stack shows one or two frames and then nothing, or
``[unknown]``. Rather than print short stacks silently, look at the code: functions compiled with
frame pointers start with ``push %rbp; mov %rsp,%rbp`` on x86-64 (``stp x29, x30, [sp, ...]!;
mov x29, sp`` on arm64), possibly after ``endbr64`` or a shrink-wrapped early exit. Leaf functions
may have no frame even then, but without frame pointers ``mov %rsp,%rbp`` is almost never seen
(under 2% of functions in Debian's libc, python3.11 and bash), so a binary where at least a fifth of
the sizeable functions set up a frame is taken to have frame pointers.

Example::

    from bpfkit.symbols import frame_pointer_warning
    frame_pointer_warning("/usr/bin/python3.11")
    # 'stacks through /usr/bin/python3.11 are likely truncated: no frame pointers'
"""
from __future__ import annotations

import numpy as np

from ..binaries.elfreader import EM_AARCH64, EM_X86_64, ElfReader, LoadSegment

# Enough functions for a stable ratio, few enough to cost well under a millisecond.
_SAMPLE = 200
# Leaf functions this small often have no frame even with -fno-omit-frame-pointer
# (-momit-leaf-frame-pointer), so they say nothing either way.
_MIN_SIZE = 32
# How far into a function the prologue may start (endbr64, shrink-wrapped early returns).
_WINDOW = 64
_THRESHOLD = 0.2

_X86_PATTERNS = (b"\x48\x89\xe5", b"\x48\x8b\xec")  # mov %rsp,%rbp (its two encodings)
_ARM64_MOV_X29_SP = (0x910003FD).to_bytes(4, "little")


def _vaddr_to_offset(loads: tuple[LoadSegment, ...], vaddr: int) -> int | None:
    for s in loads:
        if s.executable and s.vaddr <= vaddr < s.vaddr + s.filesz:
            return vaddr - s.vaddr + s.offset
    return None


def prologue_ratio(elf: ElfReader, starts: np.ndarray, sizes: np.ndarray) -> tuple[float, int] | None:
    """``(fraction of sampled functions with a frame-pointer prologue, number sampled)``, or None
    when it cannot be judged (unknown architecture, no sizeable functions with code in ``elf``).

    ``starts``/``sizes`` are the function symbols' virtual addresses and sizes.

    Example::

        prologue_ratio(elf, table.starts, table.ends - table.starts)   # (0.97, 200)
    """
    if elf.machine == EM_X86_64:
        patterns: tuple[bytes, ...] = _X86_PATTERNS
    elif elf.machine == EM_AARCH64:
        patterns = (_ARM64_MOV_X29_SP,)
    else:
        return None
    big = np.flatnonzero(sizes >= _MIN_SIZE)
    if len(big) == 0:
        return None
    pick = big[np.linspace(0, len(big) - 1, min(_SAMPLE, len(big))).astype(np.int64)]
    seen = hits = 0
    for i in np.unique(pick).tolist():
        off = _vaddr_to_offset(elf.loads, int(starts[i]))
        if off is None:
            continue
        code = elf.file_bytes(off, min(_WINDOW, int(sizes[i])))
        if not code:
            continue
        seen += 1
        if elf.machine == EM_AARCH64:
            words = [code[k:k + 4] for k in range(0, len(code) - 3, 4)]
            hits += any(w in patterns for w in words)
        else:
            hits += any(p in code for p in patterns)
    if seen == 0:
        return None
    return hits / seen, seen


def has_frame_pointers(elf: ElfReader, starts: np.ndarray, sizes: np.ndarray) -> bool | None:
    """True/False from :func:`prologue_ratio`, None when it cannot tell.

    Example::

        has_frame_pointers(elf, starts, sizes)    # False for Debian's python3.11
    """
    r = prologue_ratio(elf, starts, sizes)
    return None if r is None else r[0] >= _THRESHOLD


def no_frame_pointer_message(path: str) -> str:
    """The warning tools print for a binary without frame pointers.

    Example::

        no_frame_pointer_message("/usr/bin/python3.11")
    """
    return f"stacks through {path} are likely truncated: no frame pointers"
