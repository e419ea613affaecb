"""Reading histograms out of maps recorded with ``c/include/bpfkit_hist.h``: per-CPU counters are
summed, keyed histograms grouped by key.

Example::

    h = log2(obj.maps.lat)           # Log2Hist, or Keyed for a BPFKIT_KEYED_LOG2_HIST
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import MapError
from ..maps import Map
from .format import LOG2_SLOTS
from .types import Keyed, LinearHist, Log2Hist, Stats

__all__ = ["log2", "linear", "stats"]


def _read(m: Map, clear: bool) -> tuple[np.ndarray, np.ndarray]:
    keys, values = m.pop_all() if clear else m.to_numpy()
    if m.percpu and values.dtype.names is None:
        values = values.sum(axis=1, dtype=np.uint64)
    return keys, values


def _py(x: Any) -> Any:
    if isinstance(x, np.void) and x.dtype.names:
        return tuple(_py(x[n]) for n in x.dtype.names)
    if isinstance(x, np.generic):
        return x.item()
    return x


def _grouped(m: Map, clear: bool, make: Callable[[np.ndarray], Any], nslots: int) -> Any:
    keys, values = _read(m, clear)
    kdt = keys.dtype
    if kdt.names is None:  # slot-indexed (array, or hash keyed by slot)
        counts = np.zeros(nslots, np.uint64)
        ok = keys < nslots
        np.add.at(counts, keys[ok].astype(np.int64), values[ok].astype(np.uint64))
        return make(counts)
    if "slot" not in kdt.names:
        raise MapError(f"map {m.name!r}: keyed histogram keys need a 'slot' field (BPFKIT_KEYED_HIST), "
                       f"got {kdt}")
    rest = [n for n in kdt.names if n != "slot"]
    out: dict[Any, np.ndarray] = {}
    for k, v in zip(keys, values):
        slot = int(k["slot"])
        if slot >= nslots:
            continue
        group = _py(k[rest[0]]) if len(rest) == 1 else tuple(_py(k[n]) for n in rest)
        if group not in out:
            out[group] = np.zeros(nslots, np.uint64)
        out[group][slot] += np.uint64(v)
    return Keyed({g: make(c) for g, c in out.items()})


def log2(m: Map, *, clear: bool = False) -> Any:
    """The log2 histogram(s) in ``m``: a :class:`Log2Hist` for an array/slot-keyed map,
    :class:`Keyed` for a ``BPFKIT_KEYED_LOG2_HIST``. ``clear=True`` reads with pop_all().

    Example::

        print(hist.log2(obj.maps.lat).format("@usecs"))   # BPFKIT_LOG2_HIST(lat) on the BPF side
    """
    return _grouped(m, clear, Log2Hist, LOG2_SLOTS)


def linear(m: Map, lo: int, hi: int, step: int, *, clear: bool = False) -> Any:
    """The linear histogram(s) in ``m`` recorded with the same ``lo, hi, step``.

    Example::

        h = hist.linear(obj.maps.ms, 0, 100, 10)   # BPFKIT_LINEAR_HIST(ms, 0, 100, 10)
    """
    return _grouped(m, clear, lambda c: LinearHist(c, lo, hi, step), (hi - lo) // step + 2)


def stats(m: Map, *, clear: bool = False) -> Any:
    """:class:`Stats` from a ``BPFKIT_STATS`` map, or :class:`Keyed` stats from ``BPFKIT_KEYED_STATS``.

    Example::

        print(hist.stats(obj.maps.st, clear=True))   # count 5, average 10, total 50; then reset
    """
    keys, values = m.pop_all() if clear else m.to_numpy()
    names = values.dtype.names or ()
    if not {"count", "total", "min", "max"} <= set(names):
        raise MapError(f"map {m.name!r}: values need count/total/min/max fields (struct bpfkit_stats), "
                       f"got {values.dtype}")

    def reduce(v: np.ndarray) -> Stats:
        v = np.atleast_1d(v)
        live = v[v["count"] > 0]
        if not len(live):
            return Stats()
        return Stats(int(live["count"].sum()), int(live["total"].astype(np.int64).sum()),
                     int(live["min"].min()), int(live["max"].max()))

    if m.type_name in ("array", "percpu_array"):
        total = [reduce(values[i]) for i in range(len(values))]
        merged = Stats()
        for s in total:
            merged = _merge(merged, s)
        return merged
    return Keyed({_py(k): reduce(values[i]) for i, k in enumerate(keys)})


def _merge(a: Stats, b: Stats) -> Stats:
    if not b.count:
        return a
    if not a.count:
        return b
    assert a.min is not None and a.max is not None and b.min is not None and b.max is not None
    return Stats(a.count + b.count, a.total + b.total, min(a.min, b.min), max(a.max, b.max))


