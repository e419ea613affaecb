"""Metric families as the exporter builds them, and their text format.

A scrape of a big map is dominated by per-sample work, so readers build plain
:class:`Family` values (label tuples and numbers, no per-sample objects) and the exporter
writes Prometheus's classic text format (0.0.4) from them directly. Metric and label names
are checked by the config to be classic names, so only label values and help texts need
escaping. :func:`to_metric` turns a family into prometheus_client's form for registries of
other programs.

Example::

    fam = Family("x", "counter", "help", ("pid",), values={("1",): 5})
    render([fam])   # b'# HELP x_total help\\n# TYPE x_total counter\\nx_total{pid="1"} 5\\n'
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Optional, Union

from prometheus_client.core import Metric

__all__ = ["Family", "HistSeries", "render", "to_metric", "TEXT_FORMAT"]

TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"

Number = Union[int, float]


@dataclass
class HistSeries:
    """One histogram series: its label values, ``(le, cumulative count)`` buckets ending with
    ``+Inf``, and ``sum`` (None: not known, not written)."""

    labels: tuple[str, ...]
    buckets: list[tuple[str, Number]]
    sum: Optional[Number] = None


@dataclass
class Family:
    """A metric family: counters and gauges in ``values`` (label values -> number), histograms in
    ``hists``. ``name`` is the family name (a counter's samples add ``_total``)."""

    name: str
    type: str
    help: str
    labels: tuple[str, ...] = ()
    values: dict[tuple[str, ...], Number] = field(default_factory=dict)
    hists: list[HistSeries] = field(default_factory=list)


def _num(v: Number) -> str:
    if isinstance(v, int):
        return str(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(float(v))


def _escape(v: str) -> str:
    if "\\" in v or '"' in v or "\n" in v:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return v


class _Fragments(dict[str, str]):
    """label value -> its ``name="escaped value"`` text, made once per distinct value."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def __missing__(self, value: str) -> str:
        text = self[value] = f'{self.name}="{_escape(value)}"'
        return text


def render(families: Iterable[Family]) -> bytes:
    """The families in Prometheus's text format 0.0.4."""
    out: list[str] = []
    for f in families:
        sample = f.name + "_total" if f.type == "counter" else f.name
        help_text = f.help.replace("\\", "\\\\").replace("\n", "\\n")
        out.append(f"# HELP {sample} {help_text}\n# TYPE {sample} {f.type}\n")
        frags = [_Fragments(n) for n in f.labels]
        if f.type != "histogram":
            for lab, v in f.values.items():
                if lab:
                    out.append(f"{sample}{{{','.join([c[x] for c, x in zip(frags, lab)])}}} {_num(v)}\n")
                else:
                    out.append(f"{sample} {_num(v)}\n")
            continue
        for h in f.hists:
            ls = ",".join([c[x] for c, x in zip(frags, h.labels)])
            pre = ls + "," if ls else ""
            for le, c in h.buckets:
                out.append(f'{f.name}_bucket{{{pre}le="{le}"}} {_num(c)}\n')
            tail = f"{{{ls}}}" if ls else ""
            out.append(f"{f.name}_count{tail} {_num(h.buckets[-1][1])}\n")
            if h.sum is not None:
                out.append(f"{f.name}_sum{tail} {_num(h.sum)}\n")
    return "".join(out).encode()


def to_metric(f: Family) -> Metric:
    """prometheus_client's form of ``f`` (for a registry that is not the exporter's own)."""
    m = Metric(f.name, f.help, f.type)
    sample = f.name + "_total" if f.type == "counter" else f.name
    for lab, v in f.values.items():
        m.add_sample(sample, dict(zip(f.labels, lab)), v)
    for h in f.hists:
        base = dict(zip(f.labels, h.labels))
        for le, c in h.buckets:
            m.add_sample(f.name + "_bucket", {**base, "le": le}, c)
        m.add_sample(f.name + "_count", base, h.buckets[-1][1])
        if h.sum is not None:
            m.add_sample(f.name + "_sum", base, h.sum)
    return m

