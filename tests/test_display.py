"""What bpfkit's objects look like: the shared table renderer and SVG bars, histograms, event
batches, maps, and the spec and live object (the live ones against the real kernel)."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest

import bpfkit
from bpfkit import display, hist
from bpfkit.events import RawBatch, batch_html, batch_text
from bpfkit.maps import Map

IPython = pytest.importorskip("IPython", reason="the plain-text views are IPython's pretty printer")
from IPython.lib.pretty import pretty  # noqa: E402


def test_tables_escape_align_and_count_what_they_leave_out() -> None:
    page = display.html_table(["name", "n"], [["<script>", 5], ["b&c", 12]], caption="x<y", more=3)
    assert "<script>" not in page and "&lt;script&gt;" in page and "b&amp;c" in page
    assert "<caption>x&lt;y</caption>" in page and "… 3 more rows" in page
    assert "<td class='l'>b&amp;c</td><td>12</td>" in page  # text left, numbers right
    text = display.text_table(["name", "n"], [["a", 5], ["bbb", 12]])
    assert text.splitlines() == ["  name   n", "  a      5", "  bbb   12"]


def test_cells_decode_c_strings_and_abbreviate() -> None:
    assert display.cell(np.bytes_(b"bash")) == "bash"
    assert display.cell(b"cat\0junk") == "cat"
    assert display.cell(np.arange(10)) == "[0, 1, 2, 3, 4, 5, …] (10)"
    assert display.cell("x" * 100).endswith("…") and len(display.cell("x" * 100)) == 48
    assert display.dtype_text(np.dtype([("a", "u4"), ("s", "S16"), ("v", "u8", (4,))])) == "{a: u4, s: S16, v: u8[4]}"


def test_svg_bars_are_proportional() -> None:
    svg = display.svg_bars(["[1]", "[2, 4)", "[4, 8)"], [10, 40, 0], title="t")
    widths = [float(w) for w in re.findall(r"<rect [^>]*width='([\d.]+)'", svg)]
    assert len(widths) == 3 and widths[2] == 0 and widths[1] == pytest.approx(4 * widths[0])
    assert re.findall(r"<title>([^<]*)</title>", svg) == ["[1]: 10", "[2, 4): 40", "[4, 8): 0"]


def test_histogram_reprs() -> None:
    h = hist.Log2Hist.from_values([1, 2, 3, 5000])
    assert repr(h) == "Log2Hist(total=4, rows [1]..[4K, 8K))"  # not the 66-slot array
    assert pretty(h) == repr(h) + "\n" + str(h).rstrip("\n")  # IPython: bpftrace's text
    page = h._repr_html_()
    assert "total: <b>4</b>" in page and page.count("<rect") == 13  # [1] .. [4K, 8K), zero rows too
    assert "<title>[2, 4): 2</title>" in page and "<title>[4K, 8K): 1</title>" in page
    lin = hist.LinearHist.from_values([5, 15, 15, 250], 0, 100, 10)
    assert repr(lin) == "LinearHist(lo=0, hi=100, step=10, total=4, rows [0, 10)..[100, ...))"
    keyed = hist.Keyed({1: hist.Log2Hist.from_values([1, 1]), 2: hist.Log2Hist.from_values([8])})
    assert repr(keyed) == "Keyed(2 Log2Hist by key: 2, 1)" and keyed._repr_html_().count("<svg") == 2


def test_histogram_plot_with_matplotlib() -> None:
    matplotlib = pytest.importorskip("matplotlib", reason="plot() draws with matplotlib")
    matplotlib.use("Agg")
    ax = hist.Log2Hist.from_values([1, 2, 3, 5000]).plot(title="x")
    assert [p.get_height() for p in ax.patches] == [1, 2] + [0] * 10 + [1]


def test_batch_views() -> None:
    arr = np.zeros(12, [("pid", "u4"), ("comm", "S16")])
    arr["pid"] = np.arange(12)
    arr["comm"] = b"bash"
    text = batch_text(arr)
    assert text.splitlines()[:3] == ["events: 12 records, dtype {pid: u4, comm: S16}", "  pid  comm", "    0  bash"]
    assert text.splitlines()[-1] == "  … 2 more rows"
    assert "records: <b>12</b>" in batch_html(arr) and batch_html(arr).count("<tr>") == 11  # header + 10
    raw = RawBatch.from_chunks([b"ab", b"", b"c" * 30])
    assert pretty(raw).splitlines()[0] == "events: 3 records, 32 bytes, variable-size"
    assert "<td>30</td>" in raw._repr_html_() and "61 62" in raw._repr_html_()


def test_standalone_map_views() -> None:
    vdt = np.dtype([("n", "<u8"), ("comm", "S8")])
    with Map.create("hash", "u4", vdt, 8, name="by_pid") as m:
        m.update(np.arange(3, dtype="u4"), np.array([(i * 10, b"sh") for i in range(3)], vdt))
        text = pretty(m)
        assert text.splitlines()[0] == ("Map by_pid: type hash, key u4 (4 B), value {n: u8, comm: S8} (16 B), "
                                        "max_entries 8, elements 3")
        rows = sorted(tuple(ln.split()) for ln in text.splitlines()[2:])
        assert rows == [("0", "0", "sh"), ("1", "10", "sh"), ("2", "20", "sh")]
        assert "elements: <b>3</b>" in m._repr_html_()
    assert "closed" in pretty(m) and "closed" in m._repr_html_()
    with Map.create("ringbuf", None, None, 4096, name="rb") as rb:
        assert "obj.reader('rb')" in pretty(rb)


@pytest.mark.root
def test_spec_and_object_views_from_the_kernel() -> None:
    spec = bpfkit.open("tests/count")
    text = pretty(spec)
    assert text.splitlines()[0].startswith("ObjectSpec count: path ")
    assert re.search(r"on_getpid\s+tracepoint/syscalls/sys_enter_getpid\s+tracepoint\s+\d+\s+yes", text)
    assert re.search(r"counts\s+hash\s+u4\s+u8\s+1024", text) and ".rodata  target_pid" in text
    spec.rodata.target_pid = os.getpid()
    with spec.load() as obj:
        prog = obj.progs.on_getpid
        assert re.search(rf"on_getpid .*\s{prog.id}\s+-$", pretty(obj), re.M)  # loaded, not attached
        with prog.attach():
            for _ in range(3):
                os.getpid()
            view = pretty(obj)
            assert re.search(rf"\s{prog.id}\s+tracepoint syscalls:sys_enter_getpid$", view, re.M)
            assert "links 1" in view and "<td class='l'>tracepoint syscalls:sys_enter_getpid</td>" in obj._repr_html_()
        assert re.search(r"counts\s+hash\s+u4\s+u8\s+1024\s+1$", pretty(obj), re.M)  # one element
        assert re.search(r"\.bss\s+total\s+u8\s+3$", pretty(obj), re.M)  # live global
        assert re.search(rf"^\s+{os.getpid()}\s+3$", pretty(obj.maps.counts), re.M)
    assert pretty(obj) == "Object count: state closed"
