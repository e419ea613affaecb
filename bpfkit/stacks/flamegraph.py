"""An interactive SVG flame graph, written by bpfkit (no perl, no external scripts or styles).

Layout follows Brendan Gregg's flame graphs: the x axis is the population (frames sorted by
name, not time), width proportional to weight, the root at the bottom (``inverted=True`` draws
an icicle graph, root at the top). The SVG carries a small script (see :mod:`._flamegraph_js`):
hovering shows the frame's name, weight and percentage; clicking zooms into a frame; "Search"
(or Ctrl-F, or ``/``) highlights the frames matching a regular expression and shows their share.
The static SVG is complete without the script too: every frame already has its size, colour,
label and a ``<title>`` tooltip, so image viewers and headless renderers show it right.

Each frame is ``<g class="f" data-x=START data-v=WEIGHT data-d=DEPTH>`` holding ``<title>``
(name, then a line "N samples, P%"), ``<rect>`` and ``<text>``.

Example::

    svg = render_svg(prof, title="CPU", width=1200)
    open("cpu.svg", "w").write(svg)
"""
from __future__ import annotations

import uuid
import zlib
from xml.sax.saxutils import escape, quoteattr

from ._flamegraph_js import SCRIPT
from .base import Folded

FONT_WIDTH = 0.59  # average glyph width of Verdana as a fraction of the font size
_XPAD = 10


class _Node:
    __slots__ = ("name", "value", "children")

    def __init__(self, name: str) -> None:
        self.name = name
        self.value = 0.0
        self.children: dict[str, _Node] = {}


def _tree(prof: Folded) -> tuple[_Node, int]:
    root = _Node("all")
    depth = 0
    for st, c in zip(prof.stacks, prof.counts.tolist()):
        root.value += c
        node = root
        for name in st:
            child = node.children.get(name)
            if child is None:
                child = node.children[name] = _Node(name)
            child.value += c
            node = child
        depth = max(depth, len(st))
    return root, depth


def _hash(name: str, salt: int) -> float:
    return (zlib.crc32(name.encode("utf-8", "replace"), salt) & 0xFFFF) / 0xFFFF


def frame_color(name: str, kind: str) -> str:
    """The fill of a frame: warm (user code), orange (kernel), green (JIT), grey (unknown and the
    separator), each varied per name so neighbours differ but a name always looks the same."""
    a, b, c = _hash(name, 1), _hash(name, 2), _hash(name, 3)
    if kind == "kernel":
        rgb = (215 + 40 * a, 110 + 60 * b, 20 * c)
    elif kind == "jit":
        rgb = (60 + 60 * a, 175 + 65 * b, 60 + 50 * c)
    elif kind in ("unknown", "separator", "root", "process"):
        g = 185 + 45 * a
        rgb = (g, g, g - 10 if kind == "process" else g)
    else:
        rgb = (205 + 50 * a, 230 * b, 55 * c)
    return "rgb({},{},{})".format(*(int(x) for x in rgb))


def fit_text(name: str, width: float, font_size: float) -> str:
    """The label that fits ``width`` pixels: the name, a prefix with ``..``, or nothing."""
    chars = int((width - 6) // (font_size * FONT_WIDTH))
    if chars < 3:
        return ""
    return name if len(name) <= chars else name[: chars - 2] + ".."


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _fmt(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() else f"{v:,.3f}"


def svg_height(prof: Folded, frame_height: int = 16, font_size: float = 12) -> int:
    """The pixel height :func:`render_svg` will use for ``prof``."""
    _root, depth = _tree(prof)
    return int((depth + 1) * frame_height + font_size * 4 + 30)


def render_svg(
    prof: Folded,
    *,
    title: str = "Flame Graph",
    width: int = 1200,
    frame_height: int = 16,
    font_size: float = 12,
    min_width: float = 0.1,
    inverted: bool = False,
) -> str:
    """The flame graph of ``prof`` as an SVG document (a ``str``).

    ``min_width``: frames narrower than this many pixels are left out (with their children), as
    flamegraph.pl does, so huge profiles stay light; ``inverted``: icicle graph.

    Example::

        svg = render_svg(prof, title="Off-CPU time", inverted=True)
    """
    root, depth = _tree(prof)
    total = root.value
    unit = "samples" if prof.unit in ("samples", "none") else prof.unit
    top_pad = int(font_size * 2 + 10)
    bottom_pad = int(font_size * 2 + 20)
    height = (depth + 1) * frame_height + top_pad + bottom_pad
    full = width - 2 * _XPAD
    scale = full / total if total > 0 else 0.0
    gid = "fg" + uuid.uuid4().hex[:12]
    kinds = dict(prof.kinds)
    out = [
        '<?xml version="1.0" standalone="no"?>',
        f'<svg version="1.1" id="{gid}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" xmlns:fg="https://bpfkit.dev/flamegraph" '
        f'data-total="{_num(total)}" data-unit={quoteattr(unit)} data-xpad="{_XPAD}" data-width="{full}" '
        f'data-font-size="{font_size:g}" data-min-width="{min_width:g}">',
        "<style>text{font-family:Verdana,sans-serif;font-size:%gpx;fill:#000}"
        " .f text{pointer-events:none} .f:hover rect{stroke:#000;stroke-width:0.5;cursor:pointer}"
        " .ctl{cursor:pointer} .ctl:hover{fill:#c00} .hide{display:none} .anc{opacity:0.6}</style>" % font_size,
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f4f4ee"/>',
        f'<text x="{width / 2:.1f}" y="{font_size * 1.5:.1f}" text-anchor="middle" '
        f'style="font-size:{font_size + 5:g}px">{escape(title)}</text>',
        f'<text class="ctl hide" id="{gid}-reset" x="{_XPAD}" y="{font_size * 1.5:.1f}">Reset Zoom</text>',
        f'<text class="ctl" id="{gid}-search" x="{width - _XPAD}" y="{font_size * 1.5:.1f}" '
        f'text-anchor="end">Search</text>',
        f'<text id="{gid}-details" x="{_XPAD}" y="{height - bottom_pad / 2 + 4:.1f}"> </text>',
        f'<text id="{gid}-matched" x="{width - _XPAD}" y="{height - bottom_pad / 2 + 4:.1f}" '
        f'text-anchor="end"> </text>',
        f'<g id="{gid}-frames">',
    ]
    # Iterative depth-first walk: (node, start in weight units, depth, kind inherited from above)
    work: list[tuple[_Node, float, int, str]] = [(root, 0.0, 0, "root")]
    while work:
        node, x0, d, inherited = work.pop()
        w = node.value * scale
        if w < min_width and d > 0:
            continue
        kind = kinds.get(node.name, inherited if inherited in ("kernel", "jit") else "user") if d else "root"
        if node.name == "[unknown]":
            kind = "unknown"
        y = top_pad + d * frame_height if inverted else height - bottom_pad - (d + 1) * frame_height
        pct = node.value * 100.0 / total if total else 0.0
        x = _XPAD + x0 * scale
        tip = f"{node.name}\n{_fmt(node.value)} {unit}, {pct:.2f}%"
        out.append(
            f'<g class="f" data-x="{_num(x0)}" data-v="{_num(node.value)}" data-d="{d}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{frame_height - 1}" '
            f'fill="{frame_color(node.name, kind)}" rx="2" ry="2"/>'
            f'<text x="{x + 3:.2f}" y="{y + frame_height - 4.5:.1f}">{escape(fit_text(node.name, w, font_size))}</text>'
            "</g>")
        below = "kernel" if kind in ("separator", "kernel") else kind
        cx, placed = x0, []
        for name in sorted(node.children):  # children left to right, the parent's own weight to the right
            child = node.children[name]
            placed.append((child, cx, d + 1, below))
            cx += child.value
        work.extend(reversed(placed))
    out.append("</g>")
    out.append(f"<script><![CDATA[\n{SCRIPT.replace('__FGID__', gid)}\n]]></script>")
    out.append("</svg>\n")
    return "\n".join(out)
