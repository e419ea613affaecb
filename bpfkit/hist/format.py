"""How bpftrace prints histograms, reproduced byte for byte: slot labels and ``@`` bars (the
notebook view is in :mod:`bpfkit.display`).

Example::

    log2_label(3)   # '[2, 4)'
"""
from __future__ import annotations

import numpy as np

__all__ = ["LOG2_SLOTS", "BAR_WIDTH", "log2_label", "lin_label", "bar", "lines", "nonzero_span"]

LOG2_SLOTS = 66
BAR_WIDTH = 52
SUFFIX = ["", "K", "M", "G", "T", "P", "E"]


# -- labels ---------------------------------------------------------------------

def pow2_label(power: int) -> str:
    decade = power // 10
    return f"{1 << (power - 10 * decade)}{SUFFIX[decade]}"


def log2_label(slot: int) -> str:
    """bpftrace's label of log2 slot ``slot``: ``(..., 0)``, ``[0]``, ``[1]``, ``[2, 4)``, ``[4K, 8K)``.

    Example::

        hist.log2_label(3)   # '[2, 4)'
    """
    if slot == 0:
        return "(..., 0)"
    if slot <= 2:
        return f"[{slot - 1}]"
    return f"[{pow2_label(slot - 2)}, {pow2_label(slot - 1)})"


def lin_label(n: int, step: int) -> str:
    if step % 1024:
        return str(n)
    if n == 0:
        return "0"
    if n % (1 << 20) == 0:
        return f"{n >> 20}M"
    if n % 1024 == 0:
        return f"{n // 1024}K"
    return str(n)


def bar(count: int, max_count: int, width: int = BAR_WIDTH) -> int:
    # bpftrace computes this in single precision: count / (float)max * 52, truncated
    if max_count == 0:
        return 0
    return int(np.float32(count) / np.float32(max_count) * np.float32(width))


def lines(labels: list[str], counts: list[int], max_count: int) -> str:
    out = []
    for label, c in zip(labels, counts):
        out.append(f"{label:<16}{c:>8} |{'@' * bar(c, max_count):<{BAR_WIDTH}}|\n")
    return "".join(out)


def nonzero_span(counts: np.ndarray) -> range:
    nz = np.flatnonzero(counts)
    return range(int(nz[0]), int(nz[-1]) + 1) if len(nz) else range(0)


