"""bcc's text layouts, so a bcc user reads the same output: ``print_log2_hist`` and
``print_linear_hist`` (``     usecs               : count     distribution``), sections per key
(``pid = 123``), and signal names.

Histograms are :class:`bpfkit.hist.Log2Hist` (bpftrace's slots: ``[1]`` zero, ``[k]`` the range
``[2^(k-2), 2^(k-1))``); bcc's slot ``i`` covers ``[2^(i-1), 2^i - 1]`` and its first row ``0 -> 1``
holds both 0 and 1, so the conversion is exact.

Example::

    print(log2_hist(h, "usecs"))
    #      usecs               : count     distribution
    #          0 -> 1          : 3        |****************************************|
"""
from __future__ import annotations

import signal
from typing import Any, Callable, Mapping, Optional

import numpy as np

from ..hist import Keyed, Log2Hist

__all__ = ["bcc_slots", "log2_hist", "hist_json", "keyed_log2_hist", "linear_hist", "keyed_linear_hist", "stars",
           "signal_name", "STARS_MAX"]

STARS_MAX = 40


def stars(val: int, val_max: int, width: int) -> str:
    """bcc's bar: ``width * val / val_max`` stars, a ``+`` at the end when over the maximum."""
    if val_max <= 0:
        return ""
    n = 0
    while not (n > (width * val / val_max) - 1 or n > width - 1):
        n += 1
    text = "*" * n
    if val > val_max:
        text = text[:-1] + "+"
    return text


def bcc_slots(h: Log2Hist) -> np.ndarray:
    """bcc's ``bpf_log2l`` slots of a bpftrace-slot histogram (65 of them, slot 0 unused)."""
    c = h.counts.astype(np.uint64)
    out = np.zeros(65, np.uint64)
    out[1] = c[1] + c[2]  # 0 and 1 share bcc's first row
    out[2:65] = c[3:66]
    return out


def log2_hist(h: Log2Hist, val_type: str = "value") -> str:
    """bcc's ``print_log2_hist`` of one histogram ('' when it is empty, as bcc prints nothing)."""
    vals = bcc_slots(h)
    nz = np.nonzero(vals)[0]
    idx_max = int(nz[-1]) if len(nz) else -1
    val_max = int(vals.max(initial=0))
    if idx_max <= 32:
        header = "     %-19s : count     distribution" % val_type
        width, stars_w = 10, STARS_MAX
    else:
        header = "               %-29s : count     distribution" % val_type
        width, stars_w = 20, STARS_MAX // 2
    lines = [header] if idx_max > 0 else []
    for i in range(1, idx_max + 1):
        low, high = (1 << i) >> 1, (1 << i) - 1
        if low == high:
            low -= 1
        v = int(vals[i])
        lines.append("%*d -> %-*d : %-8d |%-*s|" % (width, low, width, high, v, stars_w, stars(v, val_max, stars_w)))
    return "\n".join(lines)


def hist_json(h: Log2Hist) -> list[dict[str, int]]:
    """bcc's ``print_json_hist`` buckets of one histogram: ``interval-start``, ``interval-end``,
    ``count``, up to the last non-zero slot."""
    vals = bcc_slots(h)
    nz = np.nonzero(vals)[0]
    out = []
    for i in range(1, int(nz[-1]) + 1 if len(nz) else 0):
        low, high = (1 << i) >> 1, (1 << i) - 1
        out.append({"interval-start": 0 if low == high else low, "interval-end": high, "count": int(vals[i])})
    return out


def _sections(keyed: Keyed, section: str, label: Optional[Callable[[Any], str]]) -> list[tuple[str, Any]]:
    keys = sorted(keyed.items_by_key, key=lambda k: (0, k) if isinstance(k, (int, float)) else (1, str(k)))
    return [(f"{section} = {label(k) if label else k}", keyed[k]) for k in keys]


def keyed_log2_hist(keyed: Keyed, val_type: str, section: str,
                    label: Optional[Callable[[Any], str]] = None) -> str:
    """bcc's ``print_log2_hist`` of a map with a secondary key: a blank line and ``SECTION = key``
    before each histogram (keys in ascending order); every line ends in a newline."""
    return "".join(_block(title, log2_hist(h, val_type)) for title, h in _sections(keyed, section, label))


def _block(title: str, body: str) -> str:
    return f"\n{title}\n" + (body + "\n" if body else "")


def linear_hist(counts: Any, val_type: str = "value") -> str:
    """bcc's ``print_linear_hist``: one row per value from 0 to the last non-zero one."""
    vals = np.asarray(counts, np.uint64)
    nz = np.nonzero(vals)[0]
    idx_max = int(nz[-1]) if len(nz) else -1
    val_max = int(vals.max(initial=0))
    lines = ["     %-13s : count     distribution" % val_type] if idx_max >= 0 else []
    for i in range(idx_max + 1):
        v = int(vals[i])
        lines.append("        %-10d : %-8d |%-*s|" % (i, v, STARS_MAX, stars(v, val_max, STARS_MAX)))
    return "\n".join(lines)


def keyed_linear_hist(by_key: Mapping[Any, Any], val_type: str, section: str) -> str:
    """``print_linear_hist`` with a secondary key (runqlen -C: ``cpu = 0``); lines end in newlines."""
    return "".join(_block(f"{section} = {k}", linear_hist(v, val_type)) for k, v in sorted(by_key.items()))


_SIGNAMES = {int(s): s.name[3:] for s in signal.Signals if s.name.startswith("SIG") and not s.name.startswith("SIG_")}


def signal_name(sig: int) -> str:
    """``9`` -> ``'KILL'`` (``'unknown'`` for numbers without a name, as bcc prints)."""
    if signal.SIGRTMIN <= sig <= signal.SIGRTMAX and sig not in _SIGNAMES:
        return f"RTMIN+{sig - signal.SIGRTMIN}"
    return _SIGNAMES.get(sig, "unknown")
