"""How bpfkit's objects look in a notebook and at a prompt: one table renderer (HTML and aligned
text), inline SVG bar charts (no matplotlib), and the first rows of numpy record arrays as cells.

Every class with a rich repr (``ObjectSpec``, ``Object``, ``Map``, event batches, histograms)
builds its view from these functions, so they all look alike. This module sits at the bottom of
the layers (it imports nothing of bpfkit but ``columnar``): maps, events and hist use it.

Example::

    from bpfkit import display
    display.html_table(["pid", "comm"], [[1, "init"]], caption="processes")
    display.text_table(["pid", "comm"], [[1, "init"]])      # ' pid  comm\\n   1  init'
    display.svg_bars(["[1]", "[2, 4)"], [3, 7])               # '<svg ...>' with two bars
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from .columnar import leaf_columns

__all__ = ["ROWS", "html_table", "text_table", "card", "svg_bars", "dtype_text", "records_html",
           "records_text", "cell", "c_string", "Pretty"]

ROWS = 10  # rows a repr shows before "... N more"
_CELL_CHARS = 48  # longer cells are cut with an ellipsis
_ITEMS = 6  # elements of an array field shown in a cell


def _escape(text: str) -> str:
    import html  # imported when something is shown, not at every start-up

    return html.escape(text)


_CSS = ("<style>.bpfkit{font-family:var(--jp-ui-font-family,sans-serif);font-size:12px}"
        ".bpfkit table{border-collapse:collapse;margin:2px 0 6px 0}"
        ".bpfkit th,.bpfkit td{padding:1px 8px;border-bottom:1px solid #ddd;text-align:right}"
        ".bpfkit th{background:#f3f3f3}.bpfkit td.l,.bpfkit th.l{text-align:left}"
        ".bpfkit caption{text-align:left;font-weight:bold;padding:2px 0}"
        ".bpfkit .facts{color:#555;margin:2px 0}.bpfkit .more{color:#777;font-style:italic}</style>")


class Pretty:
    """Mixin: IPython's plain-text view (``_repr_pretty_``) is the class's ``_text()``, a readable
    multi-line description, while ``repr()`` stays one line. IPython prefers a ``__repr__`` found
    earlier among the bases than ``_repr_pretty_``: a class that defines ``__repr__`` restates
    ``_repr_pretty_ = Pretty._repr_pretty_`` beside it.

    Example::

        class Thing(Pretty):
            def _text(self) -> str: return "Thing\\n  a  1"
    """

    def _text(self) -> str:
        return repr(self)

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self) if cycle else self._text())


def cell(value: Any) -> str:
    """One value as table text: C strings decoded, arrays abbreviated, long text cut.

    Example::

        cell(b"bash\\0\\0")   # 'bash'
        cell(np.arange(10))  # '[0, 1, 2, 3, 4, 5, …] (10)'
    """
    if isinstance(value, (bytes, np.bytes_)):
        text = c_string(bytes(value))
    elif isinstance(value, np.void) and value.dtype.names is None:
        raw = value.tobytes()
        text = raw[:16].hex() + ("…" if len(raw) > 16 else "")
    elif isinstance(value, np.ndarray):
        flat = value.ravel()
        items = ", ".join(cell(v) for v in flat[:_ITEMS])
        more = f", …] ({flat.size})" if flat.size > _ITEMS else "]"
        text = f"[{items}{more}"
    elif isinstance(value, np.generic):
        text = str(value.item())
    else:
        text = str(value)
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"


def c_string(raw: bytes) -> str:
    """A C ``char[]``: up to the first NUL, decoded as UTF-8 (bad bytes replaced).

    Example::

        c_string(b"cat\\0junk")   # 'cat'
    """
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def _align(values: Sequence[Any]) -> list[str]:
    return ["l" if isinstance(v, str) and not _numeric(v) else "" for v in values]


def _numeric(text: str) -> bool:
    try:
        float(text.replace(",", ""))
        return True
    except ValueError:
        return False


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, caption: str = "",
               more: int = 0) -> str:
    """An HTML table (cells escaped, numbers right-aligned); ``more`` adds a "… N more rows" line.

    Example::

        html_table(["name", "type"], [["counts", "hash"]], caption="maps")
    """
    cells = [[cell(v) for v in r] for r in rows]
    left = _align(cells[0]) if cells else ["l"] * len(header)
    cls = [" class='l'" if a else "" for a in left]
    head = "".join(f"<th{a}>{_escape(h)}</th>" for h, a in zip(header, cls))
    body = "".join("<tr>" + "".join(f"<td{a}>{_escape(c)}</td>" for c, a in zip(r, cls)) + "</tr>"
                   for r in cells)
    cap = f"<caption>{_escape(caption)}</caption>" if caption else ""
    tail = f"<div class='more'>… {more:,} more rows</div>" if more > 0 else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{tail}"


def text_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, indent: str = "  ",
               more: int = 0) -> str:
    """The same table as aligned text (numbers right-aligned, text left-aligned).

    Example::

        print(text_table(["pid", "comm"], [[1, "systemd"], [42, "bash"]]))
    """
    cells = [[cell(v) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    left = _align(cells[0]) if cells else ["l"] * len(header)

    def line(values: Sequence[str]) -> str:
        parts = [v.ljust(w) if a else v.rjust(w) for v, w, a in zip(values, widths, left)]
        return (indent + "  ".join(parts)).rstrip()

    out = [line(list(header))] + [line(r) for r in cells]
    if more > 0:
        out.append(f"{indent}… {more:,} more rows")
    return "\n".join(out)


def card(title: str, facts: Sequence[tuple[str, Any]] = (), parts: Sequence[str] = ()) -> str:
    """A titled block: ``facts`` as one "key: value" line, then HTML ``parts`` (tables, SVG).

    Example::

        card("Map counts", [("type", "hash"), ("entries", 3)], [html_table(...)])
    """
    line = " · ".join(f"{_escape(k)}: <b>{_escape(cell(v))}</b>" for k, v in facts)
    body = "".join(parts)
    return (f"<div class='bpfkit'>{_CSS}<div><b>{_escape(title)}</b></div>"
            + (f"<div class='facts'>{line}</div>" if line else "") + body + "</div>")


def svg_bars(labels: Sequence[str], counts: Sequence[int], *, title: str = "", width: int = 520) -> str:
    """Horizontal bars, one row per label with its count, as inline SVG (nothing to install). Each
    bar's ``<title>`` is its tooltip.

    Example::

        svg_bars(["[1]", "[2, 4)"], [3, 7], title="latency (us)")
    """
    row_h, top = 18, (20 if title else 4)
    label_w = 8 + 7 * max([len(lb) for lb in labels] + [1])
    count_w = 8 + 7 * max([len(f"{c:,}") for c in counts] + [1])
    bar_w = max(width - label_w - count_w, 60)
    mx = max([int(c) for c in counts] + [1])
    height = top + row_h * len(labels) + 4
    out = [f"<svg xmlns='http://www.w3.org/2000/svg' class='bpfkit-bars' width='{label_w + bar_w + count_w}' "
           f"height='{height}' font-family='monospace' font-size='12'>"]
    if title:
        out.append(f"<text x='0' y='14' font-weight='bold'>{_escape(title)}</text>")
    for i, (lb, c) in enumerate(zip(labels, counts)):
        y = top + i * row_h
        w = bar_w * int(c) / mx
        out.append(f"<text x='{label_w - 6}' y='{y + 13}' text-anchor='end'>{_escape(lb)}</text>"
                   f"<rect x='{label_w}' y='{y + 3}' width='{w:.1f}' height='{row_h - 5}' fill='#4c72b0'>"
                   f"<title>{_escape(lb)}: {int(c):,}</title></rect>"
                   f"<text x='{label_w + w + 4:.1f}' y='{y + 13}'>{int(c):,}</text>")
    out.append("</svg>")
    return "".join(out)


# -- numpy record arrays -------------------------------------------------------------------

def _rows(arr: np.ndarray, limit: int) -> tuple[list[str], list[list[Any]]]:
    cols = leaf_columns(arr[:limit])
    rows = [[col[i] for _, col in cols] for i in range(min(len(arr), limit))]
    return [n for n, _ in cols], rows


def records_html(arr: np.ndarray, title: str, *, limit: int = ROWS, facts: Sequence[tuple[str, Any]] = ()) -> str:
    """A record array as a card: its length and dtype, then its first ``limit`` rows.

    Example::

        records_html(batch, "events")
    """
    header, rows = _rows(arr, limit)
    facts = [("records", f"{len(arr):,}"), *facts, ("dtype", dtype_text(arr.dtype))]
    return card(title, facts, [html_table(header, rows, more=len(arr) - len(rows))])


def records_text(arr: np.ndarray, title: str, *, limit: int = ROWS) -> str:
    """The same as text: a title line with length and dtype, then the first rows.

    Example::

        print(records_text(batch, "events"))
    """
    header, rows = _rows(arr, limit)
    head = f"{title}: {len(arr):,} records, dtype {dtype_text(arr.dtype)}"
    return head + ("\n" + text_table(header, rows, more=len(arr) - len(rows)) if len(arr) else "")


def dtype_text(dt: Optional[np.dtype]) -> str:
    """A dtype as a short text: ``u4``, ``S16``, ``u8[4]``, ``{pid: u4, comm: S16}``.

    Example::

        dtype_text(np.dtype([("pid", "u4"), ("comm", "S16")]))   # '{pid: u4, comm: S16}'
    """
    if dt is None:
        return "variable-size bytes"
    if dt.subdtype is not None:
        return f"{dtype_text(dt.subdtype[0])}[{']['.join(str(n) for n in dt.subdtype[1])}]"
    if dt.names is None:
        return dt.str.lstrip("<>|=")
    return "{" + ", ".join(f"{n}: {dtype_text(dt.fields[n][0])}" for n in dt.names) + "}"  # type: ignore[index]
