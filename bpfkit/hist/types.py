"""Histogram and stats values: :class:`Log2Hist`, :class:`LinearHist`, :class:`Stats`, and
:class:`Keyed` groups of them; each prints as bpftrace does and renders in a notebook.

Example::

    h = Log2Hist.from_values([1, 2, 3, 1000])
    print(h.format("@x"))
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Optional, Union

import numpy as np

from .. import display
from ..errors import MapError
from .format import LOG2_SLOTS, lin_label, lines, log2_label, nonzero_span

__all__ = ["Log2Hist", "LinearHist", "Stats", "Keyed"]


class _Hist(display.Pretty):
    counts: np.ndarray

    def rows(self) -> tuple[list[str], list[int]]:
        raise NotImplementedError

    @property
    def total(self) -> int:
        """Number of recorded values.

        Example::

            hist.Log2Hist.from_values([1, 2, 3]).total   # 3
        """
        return int(self.counts.sum())

    def __str__(self) -> str:
        labels, counts = self.rows()
        return lines(labels, counts, int(self.counts.max(initial=0)))

    def format(self, name: str = "") -> str:
        """bpftrace's print of a map holding this histogram: ``@name:`` then the rows.

        Example::

            print(hist.log2(obj.maps.lat).format("@usecs"))   # '@usecs:' then '[2, 4)   2 |@@@...|' rows
        """
        return f"{name}:\n{self}" if name else str(self)

    def _describe(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        labels, _ = self.rows()
        span = f", rows {labels[0]}..{labels[-1]}" if labels else ""
        return f"{type(self).__name__}({self._describe()}total={self.total}{span})"

    def _text(self) -> str:
        return f"{repr(self)}\n{self}".rstrip("\n")

    # IPython takes a __repr__ over a _repr_pretty_ further down the class's bases: restate it here
    _repr_pretty_ = display.Pretty._repr_pretty_

    def _repr_html_(self) -> str:
        return self.html()

    def html(self, title: str = "") -> str:
        """The notebook view: a summary line and the rows as inline SVG bars (no matplotlib).

        Example::

            IPython.display.HTML(h.html("read latency (us)"))
        """
        labels, counts = self.rows()
        return display.card(title or type(self).__name__, [("total", f"{self.total:,}"), ("rows", len(labels))],
                            [display.svg_bars(labels, counts)])

    def plot(self, ax: Any = None, title: str = "") -> Any:
        """Bar chart with matplotlib (imported only here; raises ImportError if missing).

        Example::

            ax = hist.log2(obj.maps.lat).plot(title="latency (us)")   # the matplotlib Axes
        """
        try:
            import matplotlib.pyplot as plt
        except ImportError:
            raise ImportError("plot() needs matplotlib: pip install matplotlib") from None
        labels, counts = self.rows()
        if ax is None:
            _, ax = plt.subplots()
        ax.bar(range(len(counts)), counts)
        ax.set_xticks(range(len(counts)), labels, rotation=45, ha="right")
        if title:
            ax.set_title(title)
        return ax


@dataclass(repr=False)
class Log2Hist(_Hist):
    """A power-of-two histogram in bpftrace's slots (``counts[0]``: negatives, ``[1]``: zero,
    ``[k]``: ``[2^(k-2), 2^(k-1))``).

    Example::

        h = hist.Log2Hist.from_values([1, 2, 3, 5000])
        print(h.format("@usecs"))   # rows [1] 1, [2, 4) 2, zero rows, then [4K, 8K) 1
    """

    counts: np.ndarray

    def __post_init__(self) -> None:
        c = np.zeros(LOG2_SLOTS, np.uint64)
        src = np.asarray(self.counts, np.uint64).ravel()[:LOG2_SLOTS]
        c[: len(src)] = src
        self.counts = c

    @classmethod
    def from_unsigned(cls, counts: Any) -> "Log2Hist":
        """From slots that start at ``[0]`` (no negative slot), e.g. a hand-written ``u64 hist[65]``.

        Example::

            hist.Log2Hist.from_unsigned([0, 4]).rows()   # (['[1]'], [4])
        """
        return cls(np.concatenate([[0], np.asarray(counts, np.uint64)]))

    @classmethod
    def from_values(cls, values: Any) -> "Log2Hist":
        """Histogram of ``values`` computed in numpy (the same slots the BPF side uses).

        Example::

            hist.Log2Hist.from_values(np.array([0, 1, 1000])).total   # 3
        """
        v = np.asarray(values).astype(np.int64 if np.asarray(values).dtype.kind == "i" else np.uint64)
        slots = np.ones(v.shape, np.int64)
        neg = v < 0
        pos = v > 0
        if pos.any():
            p = v[pos].astype(np.uint64)
            # exact floor(log2) for 64-bit ints (float log2 rounds up near powers of two)
            lg = np.zeros(p.shape, np.int64)
            for shift in (32, 16, 8, 4, 2, 1):
                big = p >= (np.uint64(1) << np.uint64(shift))
                lg[big] += shift
                p[big] >>= np.uint64(shift)
            slots[pos] = lg + 2
        slots[neg] = 0
        return cls(np.bincount(slots.ravel(), minlength=LOG2_SLOTS))

    def _describe(self) -> str:
        return ""

    def bounds(self, slot: int) -> tuple[Optional[int], Optional[int]]:
        """``[lo, hi)`` of a slot (None for open ends).

        Example::

            h.bounds(3)   # (2, 4); h.bounds(0) is (None, 0)
        """
        if slot == 0:
            return None, 0
        if slot == 1:
            return 0, 1
        return 1 << (slot - 2), 1 << (slot - 1)

    def rows(self) -> tuple[list[str], list[int]]:
        """Labels and counts of the printed rows: first to last non-zero slot.

        Example::

            hist.Log2Hist.from_values([2, 3]).rows()   # (['[2, 4)'], [2])
        """
        span = nonzero_span(self.counts)
        return [log2_label(i) for i in span], [int(self.counts[i]) for i in span]


@dataclass(repr=False)
class LinearHist(_Hist):
    """A linear histogram: ``counts[0]`` below ``lo``, then ``(hi-lo)/step`` buckets of ``step``,
    then the ``>= hi`` bucket, as bpftrace's ``lhist(v, lo, hi, step)``.

    Example::

        h = hist.LinearHist.from_values([5, 15, 15, 250], 0, 100, 10)
        h.below, h.above   # (0, 1); print(h) shows [0, 10) 1, [10, 20) 2 ... [100, ...) 1
    """

    counts: np.ndarray
    lo: int
    hi: int
    step: int

    def __post_init__(self) -> None:
        if self.step <= 0 or self.hi <= self.lo:
            raise MapError(f"linear histogram needs lo < hi and step > 0 (got {self.lo}, {self.hi}, {self.step})")
        n = self.buckets + 2
        c = np.zeros(n, np.uint64)
        src = np.asarray(self.counts, np.uint64).ravel()[:n]
        c[: len(src)] = src
        self.counts = c

    def _describe(self) -> str:
        return f"lo={self.lo}, hi={self.hi}, step={self.step}, "

    @property
    def buckets(self) -> int:
        """Number of in-range buckets (without the two open-ended ones).

        Example::

            hist.LinearHist(np.zeros(12), 0, 100, 10).buckets   # 10
        """
        return (self.hi - self.lo) // self.step

    @property
    def below(self) -> int:
        """Count of values < lo.

        Example::

            hist.LinearHist.from_values([-5, 5], 0, 100, 10).below   # 1
        """
        return int(self.counts[0])

    @property
    def above(self) -> int:
        """Count of values >= hi.

        Example::

            hist.LinearHist.from_values([5, 100], 0, 100, 10).above   # 1
        """
        return int(self.counts[-1])

    @classmethod
    def from_values(cls, values: Any, lo: int, hi: int, step: int) -> "LinearHist":
        """Histogram of ``values`` computed in numpy (the BPF side's slots).

        Example::

            hist.LinearHist.from_values([5, 15], 0, 100, 10).total   # 2
        """
        v = np.asarray(values, np.int64)
        nb = (hi - lo) // step
        slots = np.where(v < lo, 0, np.where(v >= hi, nb + 1, (v - lo) // step + 1))
        return cls(np.bincount(slots.ravel(), minlength=nb + 2), lo, hi, step)

    def format_systemtap(self, width: int = 50, elision: int = 2) -> str:
        """SystemTap's ``print(@hist_linear(v, lo, hi, step))`` layout: a ``value |--- count`` header,
        bucket starts right-aligned, ``<lo`` and ``>=hi`` rows for the open-ended buckets (only when
        non-zero), up to two empty buckets around the data, and ``~`` for longer runs of empty ones.

        Example::

            value |-------------------------------------------------- count
              <0 |@                                                   1
               0 |@@@@@@@@@@                                         10
        """
        c = [int(x) for x in self.counts]
        last = len(c) - 1
        nz = [i for i, x in enumerate(c) if x]
        if not nz:
            return "value |" + "-" * width + " count\n"
        lo_b, hi_b = max(nz[0] - 2, 0), min(nz[-1] + 2, last)
        if lo_b == 0 and c[0] == 0:
            lo_b = 1
        if hi_b == last and c[last] == 0:
            hi_b = last - 1

        def label(i: int) -> str:
            if i == 0:
                return f"<{self.lo}"
            if i == last:
                return f">={self.hi}"
            return str(self.lo + (i - 1) * self.step)

        top = max(c)
        scale = 1 if top <= width else -(-top // width)  # integer bars, as SystemTap scales
        val_w = max(5, *(len(label(i)) for i in range(lo_b, hi_b + 1)))
        cnt_w = len(str(top))
        out = [" " * (val_w - 5) + "value |" + "-" * width + " count"]
        eliding = False
        for i in range(lo_b, hi_b + 1):
            if all(c[k] == 0 for k in range(max(i - elision, 0), min(i + elision, last) + 1)):
                eliding = True
                continue
            if eliding:
                out.append(" " * val_w + " ~")
                eliding = False
            bar = "@" * (c[i] // scale)
            out.append(f"{label(i):>{val_w}} |{bar:<{width + 1}}{c[i]:>{cnt_w}}")
        return "\n".join(out) + "\n"

    def rows(self) -> tuple[list[str], list[int]]:
        """Labels and counts of the printed rows: first to last non-zero bucket.

        Example::

            hist.LinearHist.from_values([5, 250], 0, 100, 10).rows()[0][-1]   # '[100, ...)'
        """
        span = nonzero_span(self.counts)
        labels = []
        for i in span:
            if i == 0:
                labels.append(f"(..., {lin_label(self.lo, self.step)})")
            elif i == self.buckets + 1:
                labels.append(f"[{lin_label(self.hi, self.step)}, ...)")
            else:
                a, b = (i - 1) * self.step + self.lo, i * self.step + self.lo
                labels.append(f"[{lin_label(a, self.step)}, {lin_label(b, self.step)})")
        return labels, [int(self.counts[i]) for i in span]


@dataclass
class Stats:
    """count / total / min / max of recorded values; prints as bpftrace's ``stats()``.

    Example::

        s = hist.Stats.from_values([5, 10, 15])
        print(s)   # count 3, average 10, total 30  (s.min == 5, s.max == 15)
    """

    count: int = 0
    total: int = 0
    min: Optional[int] = None
    max: Optional[int] = None

    @property
    def average(self) -> int:
        """total / count, truncated toward zero (bpftrace's integer average); 0 when empty.

        Example::

            hist.Stats.from_values([-7, 0]).average   # -3
        """
        if not self.count:
            return 0
        q = abs(self.total) // self.count
        return q if self.total >= 0 else -q

    @classmethod
    def from_values(cls, values: Any) -> "Stats":
        """Stats of ``values`` computed in numpy.

        Example::

            hist.Stats.from_values([]).count   # 0
        """
        v = np.asarray(values, np.int64)
        if not v.size:
            return cls()
        return cls(int(v.size), int(v.sum()), int(v.min()), int(v.max()))

    def __str__(self) -> str:
        return f"count {self.count}, average {self.average}, total {self.total}"

    def format(self, name: str = "") -> str:
        """``@name: count 5, average 10, total 50``.

        Example::

            hist.Stats.from_values([5, 10, 15]).format("@st")   # '@st: count 3, average 10, total 30\\n'
        """
        return f"{name}: {self}\n" if name else f"{self}\n"

    def _repr_html_(self) -> str:
        return display.card("Stats", (), [display.html_table(
            ["count", "average", "total", "min", "max"], [[self.count, self.average, self.total, self.min, self.max]])])


Value = Union[Log2Hist, LinearHist, Stats]


@dataclass(repr=False)
class Keyed(display.Pretty):
    """Histograms or stats per key (e.g. per pid). Iterates in bpftrace's print order:
    ascending total count, so the biggest comes last.

    Example::

        per_pid = hist.log2(obj.maps.lat_by_pid)   # BPFKIT_KEYED_LOG2_HIST(lat_by_pid, __u32, 1024)
        for pid, h in per_pid.items(): print(pid, h.total)
    """

    items_by_key: dict[Any, Any] = field(default_factory=dict)

    def __getitem__(self, key: Any) -> Any:
        return self.items_by_key[key]

    def __contains__(self, key: Any) -> bool:
        return key in self.items_by_key

    def __len__(self) -> int:
        return len(self.items_by_key)

    def keys(self) -> list[Any]:
        """Keys in print order.

        Example::

            per_pid.keys()   # e.g. [812, 1]: pid 1 has the most values, so it comes last
        """
        def weight(kv: tuple[Any, Any]) -> int:
            v = kv[1]
            return v.count if isinstance(v, Stats) else v.total

        return [k for k, _ in sorted(self.items_by_key.items(), key=lambda kv: (weight(kv), _sort_key(kv[0])))]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def items(self) -> list[tuple[Any, Any]]:
        """(key, value) pairs in print order.

        Example::

            dict(per_pid.items())[1].total
        """
        return [(k, self.items_by_key[k]) for k in self.keys()]

    def format(self, name: str = "@") -> str:
        """bpftrace's print of the whole map: ``@name[key]:`` blocks separated by blank lines
        (stats: one ``@name[key]: count ..`` line each).

        Example::

            print(per_pid.format("@usecs"))   # @usecs[812]: ... then @usecs[1]: ...
        """
        parts = []
        for k, v in self.items():
            label = f"{name}[{_key_str(k)}]"
            if isinstance(v, Stats):
                parts.append(f"{label}: {v}\n")
            else:
                parts.append(f"{label}:\n{v}")
        if parts and not isinstance(next(iter(self.items_by_key.values())), Stats):
            return "\n".join(parts)
        return "".join(parts)

    def __str__(self) -> str:
        return self.format()

    def __repr__(self) -> str:
        kinds = sorted({type(v).__name__ for v in self.items_by_key.values()})
        keys = [_key_str(k) for k in self.keys()]
        shown = ", ".join(keys[-display.ROWS:]) + (", …" if len(keys) > display.ROWS else "")
        return f"Keyed({len(keys)} {'/'.join(kinds) or 'values'} by key: {shown})"

    def _text(self) -> str:
        return f"{repr(self)}\n{self.format()}".rstrip("\n")

    _repr_pretty_ = display.Pretty._repr_pretty_  # next to __repr__, as IPython wants it

    def _repr_html_(self) -> str:
        stats = [(k, v) for k, v in self.items() if isinstance(v, Stats)]
        parts = []
        if stats:
            parts.append(display.html_table(["key", "count", "average", "total", "min", "max"],
                                            [[_key_str(k), v.count, v.average, v.total, v.min, v.max]
                                             for k, v in stats]))
        for k, v in self.items():
            if not isinstance(v, Stats):
                labels, counts = v.rows()
                parts.append(display.svg_bars(labels, counts, title=f"{_key_str(k)} (total {v.total:,})"))
        return display.card("Keyed", [("keys", len(self))], parts)


def _key_str(k: Any) -> str:
    if isinstance(k, bytes):
        return k.split(b"\0", 1)[0].decode(errors="replace")
    if isinstance(k, tuple):
        return ", ".join(_key_str(x) for x in k)
    return str(k)


def _sort_key(k: Any) -> Any:
    return (0, k) if isinstance(k, (int, float)) else (1, str(k))


