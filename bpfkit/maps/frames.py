"""A map's contents as named columns (for pandas, Arrow, polars) and as a notebook view.

Keys and values become columns side by side: a scalar key is ``key``, a scalar value ``value``,
struct fields keep their names (``key.``/``value.`` in front only when a key field and a value
field share a name). Per-CPU values are reduced over CPUs (``percpu="sum"``, ``"min"``,
``"max"``) or kept as one row per key and CPU (``percpu="cpu"``, with a ``cpu`` column).

Example::

    m.to_pandas()                 # key, value columns (per-CPU maps: summed)
    m.to_arrow(percpu="cpu")      # key, cpu, value: one row per key and CPU
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import display
from ..columnar import leaf_columns
from ..errors import BpfError, BpfUsageError
from .codec import reduce_cpus
from .kinds import EVENT_TYPES

__all__ = ["PERCPU", "columns", "html", "text"]

PERCPU: dict[str, Callable[..., Any]] = {"sum": np.sum, "min": np.min, "max": np.max}


def _leaves(arr: np.ndarray, scalar_name: str, prefix: bool) -> list[tuple[str, np.ndarray]]:
    if arr.dtype.names is None:
        return [(scalar_name, arr)]
    return leaf_columns(arr, scalar_name if prefix else "")


def _named(keys: np.ndarray, values: np.ndarray) -> list[tuple[str, np.ndarray]]:
    kcols, vcols = _leaves(keys, "key", False), _leaves(values, "value", False)
    if {n for n, _ in kcols} & {n for n, _ in vcols}:
        kcols, vcols = _leaves(keys, "key", True), _leaves(values, "value", True)
    return kcols + vcols


def columns(m: Any, percpu: str = "sum", data: Any = None) -> list[tuple[str, np.ndarray]]:
    """``(name, column)`` pairs of map ``m``'s elements (``data``: its ``to_numpy()`` if read
    already), per-CPU values reduced or spread as the module doc says.

    Example::

        dict(columns(m))["value"]
    """
    keys, values = m.to_numpy() if data is None else data
    if not m.percpu:
        return _named(keys, values)
    if percpu == "cpu":
        ncpus = values.shape[1] if values.ndim > 1 else 1
        cols = _named(np.repeat(keys, ncpus), values.reshape(len(keys) * ncpus))
        cpu = np.tile(np.arange(ncpus, dtype=np.uint32), len(keys))
        nkey = len(_leaves(keys[:0], "key", False))
        return cols[:nkey] + [("cpu", cpu)] + cols[nkey:]
    if percpu not in PERCPU:
        raise BpfUsageError(f"percpu={percpu!r}: use 'sum', 'min', 'max' (reduce over CPUs) or 'cpu' "
                            "(one row per key and CPU)")
    return _named(keys, reduce_cpus(values, PERCPU[percpu]))


def _facts(m: Any) -> list[tuple[str, Any]]:
    facts: list[tuple[str, Any]] = [("type", m.type_name)]
    if m.key_size:
        facts.append(("key", f"{display.dtype_text(m.key_dtype)} ({m.key_size} B)"))
    if m.value_size:
        facts.append(("value", f"{display.dtype_text(m.value_dtype)} ({m.value_size} B)"))
    facts.append(("max_entries", f"{m.max_entries:,}"))
    if m.flags:
        facts.append(("flags", hex(m.flags)))
    if m.percpu:
        facts.append(("CPUs", m.ncpus))
    return facts


def _contents(m: Any, limit: int) -> tuple[str, list[str], list[list[Any]], int]:
    """(note, header, first rows, elements) of a map for its view; the note says why no rows."""
    if m.closed:
        return "closed", [], [], 0
    if m.type in EVENT_TYPES:
        return f"records are read through a reader: obj.reader({m.name!r})", [], [], 0
    try:
        keys, values = m.to_numpy()
    except BpfError as e:
        return f"contents not listed: {e}", [], [], 0
    note = f"per-CPU values summed over {m.ncpus} CPUs" if m.percpu else ""
    cols = columns(m, "sum", (keys[:limit], values[:limit]))
    rows = [[c[i] for _, c in cols] for i in range(min(limit, len(keys)))]
    return note, [n for n, _ in cols], rows, len(keys)


def _title(m: Any) -> str:
    return f"{type(m).__name__} {m.name or '(no name)'}"


def html(m: Any, limit: int = display.ROWS) -> str:
    """The notebook view of map ``m``: type, sizes, element count, the first rows.

    Example::

        IPython.display.HTML(html(obj.maps.counts))
    """
    note, header, rows, n = _contents(m, limit)
    facts = _facts(m)
    parts = []
    if header:
        facts.append(("elements", f"{n:,}"))
        parts.append(display.html_table(header, rows, more=n - len(rows)))
    if note:
        import html as _html  # only notebooks render HTML: kept off every start-up

        parts.append(f"<div class='more'>{_html.escape(note)}</div>")
    return display.card(_title(m), facts, parts)


def text(m: Any, limit: int = display.ROWS) -> str:
    """The same view as text (IPython's plain-text repr of a map).

    Example::

        print(text(obj.maps.counts))
    """
    note, header, rows, n = _contents(m, limit)
    facts = _facts(m) + ([("elements", f"{n:,}")] if header else [])
    out = [f"{_title(m)}: " + ", ".join(f"{k} {v}" for k, v in facts)]
    if header:
        out.append(display.text_table(header, rows, more=n - len(rows)))
    if note:
        out.append(f"  ({note})")
    return "\n".join(out)
