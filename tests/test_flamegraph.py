"""Stack output (bpfkit.stacks): folded text, SVG flame graph (parsed, and rendered in headless
Chromium when installed), speedscope JSON, DataFrame, notebook HTML, and folding real stacks."""
from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bpfkit.errors import BpfUsageError
from bpfkit.stacks import MISSED_USER, StackProfile
from bpfkit.stacks.flamegraph import frame_color
from bpfkit.symbols import ElfCache, Symbolizer, kernel_symbols
from bpfkit.testing.fixtures import symbols as fx

SVG = "{http://www.w3.org/2000/svg}"
STACKS = [["main", "outer", "middle", "inner"], ["main", "outer", "other"], ["main", "idle"], ["main"],
          ["main", "outer", "middle", "inner"]]
COUNTS = [40, 20, 15, 5, 20]


def profile() -> StackProfile:
    return StackProfile.from_frames(STACKS, COUNTS)


def svg_frames(svg: str) -> list[dict[str, Any]]:
    root = ET.fromstring(svg)
    out = []
    for g in root.iter(SVG + "g"):
        if g.get("class") != "f":
            continue
        title = g.find(SVG + "title").text  # type: ignore[union-attr]
        rect = g.find(SVG + "rect")
        text = g.find(SVG + "text")
        assert title is not None and rect is not None and text is not None
        name, stats = title.split("\n")
        out.append({"name": name, "stats": stats, "x": float(rect.get("x", 0)), "y": float(rect.get("y", 0)),
                    "width": float(rect.get("width", 0)), "fill": rect.get("fill"), "label": text.text or "",
                    "v": float(g.get("data-v", 0)), "d": int(g.get("data-d", 0)), "data_x": float(g.get("data-x", 0))})
    return out


# ----------------------------------------------------------------------------- folded


def test_folded_is_exact_and_round_trips() -> None:
    prof = profile()
    assert prof.folded() == "main 5\nmain;idle 15\nmain;outer;middle;inner 60\nmain;outer;other 20\n"
    back = StackProfile.from_folded(prof.folded())
    assert back.folded() == prof.folded() and back.total == 100
    leaf_first = StackProfile.from_frames([["inner", "main"], ["inner", "main"]], [1, 2], leaf_first=True)
    assert leaf_first.folded() == "main;inner 3\n"
    odd = StackProfile.from_frames([["a;b", "c\nd", ""]], [2.5], unit="us")
    assert odd.folded() == "a:b;c d;[empty] 2.5\n"
    with pytest.raises(BpfUsageError, match="line 2"):
        StackProfile.from_folded("a;b 1\na;b\n")
    with pytest.raises(BpfUsageError, match="negative"):
        StackProfile.from_frames([["a"]], [-1])


def test_functions_self_and_total() -> None:
    stats = {f.name: (f.self, f.total) for f in profile().functions()}
    assert stats == {"inner": (60, 60), "other": (20, 20), "idle": (15, 15), "main": (5, 100),
                     "outer": (0, 80), "middle": (0, 60)}
    rec = StackProfile.from_frames([["f", "f", "f"]], [7]).functions()
    assert [(f.name, f.self, f.total) for f in rec] == [("f", 7, 7)]


# ----------------------------------------------------------------------------- SVG


def test_svg_frames_names_and_widths() -> None:
    prof = profile()
    svg = prof.svg(width=1200, title="CPU <test>")
    frames = svg_frames(svg)
    full = 1200 - 20
    # every node of the merged tree, once: (depth, name) -> weight
    want = {(0, "all"): 100, (1, "main"): 100, (2, "outer"): 80, (2, "idle"): 15, (3, "middle"): 60,
            (3, "other"): 20, (4, "inner"): 60}
    assert {(f["d"], f["name"]): f["v"] for f in frames} == want
    by = {f["name"]: f for f in frames}
    for f in frames:
        assert f["width"] == pytest.approx(f["v"] / 100 * full, abs=0.006)
        pct = f["v"]
        assert f["stats"] == f"{int(f['v'])} samples, {pct:.2f}%"
    # children start at their parent's left edge, in name order; the parent's own time is at the right
    assert by["idle"]["x"] == pytest.approx(by["main"]["x"])
    assert by["outer"]["x"] == pytest.approx(by["idle"]["x"] + by["idle"]["width"], abs=0.01)
    assert by["middle"]["x"] == pytest.approx(by["outer"]["x"])
    assert by["other"]["x"] == pytest.approx(by["middle"]["x"] + by["middle"]["width"], abs=0.01)
    # flame (root at the bottom): deeper frames are higher up
    assert by["all"]["y"] > by["main"]["y"] > by["outer"]["y"] > by["middle"]["y"] > by["inner"]["y"]
    assert all(f["label"] == f["name"] for f in frames)  # all wide enough for their full name
    assert "CPU &lt;test&gt;" in svg


def test_svg_icicle_labels_and_min_width() -> None:
    stacks = [["main", "a_very_long_function_name_that_will_not_fit_in_a_narrow_frame"], ["main", "tiny"],
              ["main", "big"]]
    prof = StackProfile.from_frames(stacks, [30000, 1, 100000])
    frames = svg_frames(prof.svg(width=600, inverted=True, min_width=0.5))
    names = {f["name"] for f in frames}
    assert "tiny" not in names  # 1/130001 of 580 px < 0.5 px: left out
    long = next(f for f in frames if f["name"].startswith("a_very"))
    chars = int((long["width"] - 6) // (12 * 0.59))  # 133.8 px hold 18 characters of 12 px Verdana
    assert chars == 18 and long["label"] == stacks[0][1][:16] + ".."
    by = {f["name"]: f for f in frames}
    assert by["all"]["y"] < by["main"]["y"] < by["big"]["y"]  # icicle: root at the top


def test_svg_escapes_names_and_colours_kinds() -> None:
    prof = StackProfile.from_frames([["app", 'std::vector<int>::push_back(int&&) "q"', "--", "do_syscall_64"],
                                     ["app", "[unknown]"]], [3, 1],
                                    kinds={"do_syscall_64": "kernel", "--": "separator"})
    frames = {f["name"]: f for f in svg_frames(prof.svg())}
    assert 'std::vector<int>::push_back(int&&) "q"' in frames
    assert frames["do_syscall_64"]["fill"] == frame_color("do_syscall_64", "kernel")
    assert frames["--"]["fill"] == frame_color("--", "separator")
    assert frames["[unknown]"]["fill"] == frame_color("[unknown]", "unknown")
    r, g, b = (int(x) for x in re.findall(r"\d+", frames["do_syscall_64"]["fill"]))
    assert r >= 215 and 110 <= g <= 170 and b <= 20  # orange
    # names that are not kernel get the warm palette
    r, g, b = (int(x) for x in re.findall(r"\d+", frames["app"]["fill"]))
    assert r >= 205 and b <= 55


def test_empty_profile_renders() -> None:
    prof = StackProfile.from_frames([], [])
    frames = svg_frames(prof.svg())
    assert [(f["name"], f["v"]) for f in frames] == [("all", 0)]
    assert prof.folded() == ""


# ----------------------------------------------------------------------------- other outputs


def _check_shape(value: Any, schema: Any, where: str = "$") -> None:
    """A small JSON-schema-style checker (types, required keys, enums, items), enough for the
    speedscope file-format spec (jlfwong/speedscope src/lib/file-format-spec.ts)."""
    kind = schema["type"]
    types = {"object": dict, "array": list, "string": str, "number": (int, float), "integer": int}
    assert isinstance(value, types[kind]) and not isinstance(value, bool), f"{where}: not {kind}"
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r} not in {schema['enum']}"
    if kind == "object":
        for k in schema.get("required", []):
            assert k in value, f"{where}: missing {k}"
        for k, sub in schema.get("properties", {}).items():
            if k in value:
                _check_shape(value[k], sub, f"{where}.{k}")
    if kind == "array":
        for i, item in enumerate(value):
            _check_shape(item, schema["items"], f"{where}[{i}]")


SPEEDSCOPE_SCHEMA = {
    "type": "object", "required": ["$schema", "shared", "profiles"],
    "properties": {
        "$schema": {"type": "string", "enum": ["https://www.speedscope.app/file-format-schema.json"]},
        "shared": {"type": "object", "required": ["frames"], "properties": {"frames": {"type": "array", "items": {
            "type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}},
        "profiles": {"type": "array", "items": {
            "type": "object", "required": ["type", "name", "unit", "startValue", "endValue", "samples", "weights"],
            "properties": {
                "type": {"type": "string", "enum": ["sampled"]},
                "name": {"type": "string"},
                "unit": {"type": "string",
                         "enum": ["none", "nanoseconds", "microseconds", "milliseconds", "seconds", "bytes"]},
                "startValue": {"type": "number"}, "endValue": {"type": "number"},
                "samples": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}}},
                "weights": {"type": "array", "items": {"type": "number"}}}}},
        "name": {"type": "string"}, "activeProfileIndex": {"type": "integer"}, "exporter": {"type": "string"},
    },
}


def test_speedscope(tmp_path: Path) -> None:
    prof = StackProfile.from_frames(STACKS, COUNTS, unit="us")
    prof.write_speedscope(tmp_path / "p.json", name="offcpu")
    doc = json.loads((tmp_path / "p.json").read_text())
    _check_shape(doc, SPEEDSCOPE_SCHEMA)
    p = doc["profiles"][0]
    frames = [f["name"] for f in doc["shared"]["frames"]]
    assert p["unit"] == "microseconds" and p["endValue"] == 100 and len(p["samples"]) == len(p["weights"])
    got = sorted((";".join(frames[i] for i in s), w) for s, w in zip(p["samples"], p["weights"]))
    assert got == [("main", 5), ("main;idle", 15), ("main;outer;middle;inner", 60), ("main;outer;other", 20)]


def test_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    df = profile().to_dataframe()
    assert list(df.columns) == ["stack", "folded", "leaf", "depth", "count", "percent"]
    assert df["folded"].tolist() == ["main;outer;middle;inner", "main;outer;other", "main;idle", "main"]
    assert df["count"].tolist() == [60, 20, 15, 5] and df["depth"].tolist() == [4, 3, 2, 1]
    assert df["percent"].sum() == pytest.approx(100.0)
    assert isinstance(df, pd.DataFrame)


def test_notebook_html() -> None:
    out = profile()._repr_html_()
    m = re.match(r'<iframe srcdoc="([^"]*)"', out)
    assert m and 'sandbox="allow-scripts allow-modals"' in out
    doc = html.unescape(m.group(1))
    svg = doc[doc.index("<svg"):doc.index("</svg>") + 6]
    assert {f["name"] for f in svg_frames(svg)} == {"all", "main", "outer", "idle", "middle", "other", "inner"}


# ----------------------------------------------------------------------------- real stacks


def test_from_addresses_user_and_kernel() -> None:
    """Raw stacks as BPF returns them (innermost first), symbolized and folded bcc's way:
    comm;user frames;--;kernel frames."""
    ks = kernel_symbols()
    k_entry, k_do = ks.address("entry_SYSCALL_64"), ks.address("do_syscall_64")
    exe = fx.symbols_exe(pie=True)
    with fx.SymbolsProcess([str(exe)]) as p:
        a = p.addresses
        user = np.array([a["bpfkit_sym_inner"] + 2, a["bpfkit_sym_middle"] + 5, a["bpfkit_sym_outer"] + 7,
                         a["main"] + 9, 0, 0], np.uint64)  # zero-padded like a stack map value
        kernel = np.array([k_do + 3, k_entry + 1], np.uint64)
        prof = StackProfile.from_addresses(
            [7, 2, 1, 4], user=[user, user, None, user[2:]], kernel=[kernel, None, kernel, np.zeros(4, np.uint64)],
            pids=[p.pid] * 4, comms=["prog"] * 4, symbolizer=Symbolizer(cache=ElfCache()))
    inner = "prog;main;bpfkit_sym_outer;bpfkit_sym_middle;bpfkit_sym_inner"
    assert prof.folded() == (
        f"prog;{MISSED_USER};entry_SYSCALL_64;do_syscall_64 1\n"
        f"prog;main;bpfkit_sym_outer 4\n"  # an empty kernel stack (all zeros): nothing after the user frames
        f"{inner};--;entry_SYSCALL_64;do_syscall_64 7\n"
        f"{inner};[Missed Kernel Stack] 2\n")  # no kernel stack collected: a marker, no separator
    assert prof.kinds["do_syscall_64"] == "kernel" and prof.kinds["bpfkit_sym_inner"] == "user"
    frames = {(f["d"], f["name"]): f for f in svg_frames(prof.svg())}
    assert frames[(7, "entry_SYSCALL_64")]["fill"] == frame_color("entry_SYSCALL_64", "kernel")
    with_offsets = StackProfile.from_addresses([1], kernel=[kernel], symbolizer=Symbolizer(), offsets=True)
    assert with_offsets.folded() == "entry_SYSCALL_64+0x1;do_syscall_64+0x3 1\n"
    # gcc -O2 omits frame pointers unless told otherwise, and the profile says so
    assert prof.warnings == [f"stacks through {exe} are likely truncated: no frame pointers"]
    with pytest.raises(BpfUsageError, match="pids"):
        StackProfile.from_addresses([1], user=[user])


def test_from_addresses_warnings() -> None:
    """Stacks through a binary without frame pointers, and stacks of a process that exited
    unremembered, come with a warning naming the cause."""
    exe = fx.symbols_exe(pie=True, frame_pointers=False)
    sym = Symbolizer(cache=ElfCache())
    with fx.SymbolsProcess([str(exe)]) as p:
        addrs = np.array([p.addresses["bpfkit_sym_inner"] + 1, p.addresses["main"] + 1], np.uint64)
        prof = StackProfile.from_addresses([3], user=[addrs], pids=[p.pid], symbolizer=sym)
        gone = p.pid
        p.finish()
    assert prof.folded() == "main;bpfkit_sym_inner 3\n"
    assert prof.warnings == [f"stacks through {exe} are likely truncated: no frame pointers"]
    late = StackProfile.from_addresses([3], user=[addrs], pids=[gone], symbolizer=Symbolizer(cache=ElfCache()))
    assert late.folded() == f"[unknown pid {gone}];[unknown pid {gone}] 3\n"
    assert len(late.warnings) == 1 and f"pid {gone}" in late.warnings[0] and "remember" in late.warnings[0]


# ----------------------------------------------------------------------------- in a browser


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium to render the SVG headless (Debian: apt-get install chromium)")


def _headless(*args: str) -> str:
    proc = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_browser_renders_frames(tmp_path: Path) -> None:
    """Chromium draws each frame where the SVG says, in its colour, and runs the script."""
    from matplotlib.image import imread

    prof = profile()
    svg = prof.svg(width=1000)
    (tmp_path / "fg.svg").write_text(svg)
    dom = _headless("--dump-dom", f"file://{tmp_path / 'fg.svg'}")
    assert 'data-ready="1"' in dom, "the flame graph's script did not run to the end"
    height = int(ET.fromstring(svg).get("height", 0))
    _headless(f"--screenshot={tmp_path / 'fg.png'}", f"--window-size=1000,{height}", "--hide-scrollbars",
              f"file://{tmp_path / 'fg.svg'}")
    img = imread(str(tmp_path / "fg.png"))
    assert img.shape[:2] == (height, 1000)
    for f in svg_frames(svg):
        # sample the right part of the frame, away from its label and rounded corners
        x, y = int(f["x"] + f["width"] - 6), int(f["y"] + 7)
        want = [int(c) for c in re.findall(r"\d+", f["fill"])]
        got = [int(round(c * 255)) for c in img[y, x, :3]]
        assert max(abs(g - w) for g, w in zip(got, want)) <= 3, (f["name"], got, want)


def test_browser_zoom_and_search(tmp_path: Path) -> None:
    """The script's zoom and search, run in Chromium: zooming into 'outer' makes it full width
    and scales its children, hides its siblings; searching 'inner|other' matches 80%."""
    prof = profile()
    svg = prof.svg(width=1000)
    gid = ET.fromstring(svg).get("id")
    page = (f"<!DOCTYPE html><html><body>{svg}<pre id='out'></pre><script>"
            f"var api = window.bpfkitFlameGraphs['{gid}']; var r = {{}};"
            "r.before = api.frames(); r.zoom = api.zoom('outer'); r.zoomed = api.frames();"
            "r.search = api.search('inner|other'); r.searched = api.frames(); api.clearSearch();"
            "r.searchZoomed = api.search('^inner$'); api.clearSearch(); api.reset(); r.after = api.frames();"
            "document.getElementById('out').textContent = JSON.stringify(r);</script></body></html>")
    (tmp_path / "page.html").write_text(page)
    dom = _headless("--dump-dom", f"file://{tmp_path / 'page.html'}")
    m = re.search(r"<pre id=\"out\">(.*?)</pre>", dom, re.S)
    assert m, dom[-2000:]
    r = json.loads(html.unescape(m.group(1)))
    full = 1000 - 20
    before = {f["name"]: f for f in r["before"]}
    assert before["outer"]["width"] == pytest.approx(0.8 * full, abs=0.01)
    assert r["zoom"] is True
    zoomed = {f["name"]: f for f in r["zoomed"]}
    assert set(zoomed) == {"all", "main", "outer", "middle", "other", "inner"}  # 'idle' is hidden
    assert zoomed["outer"]["width"] == pytest.approx(full, abs=0.01)
    assert zoomed["main"]["width"] == pytest.approx(full, abs=0.01)  # ancestors span the width
    assert zoomed["middle"]["width"] == pytest.approx(60 / 80 * full, abs=0.01)
    assert zoomed["other"]["x"] == pytest.approx(10 + 60 / 80 * full, abs=0.01)
    assert r["search"] == {"frames": 2, "percent": pytest.approx(100.0)}  # 80 of the 80 on screen
    searched = {f["name"]: f for f in r["searched"]}
    assert searched["inner"]["fill"] == "rgb(230,0,230)" and searched["middle"]["fill"] != "rgb(230,0,230)"
    assert r["searchZoomed"]["percent"] == pytest.approx(75.0)
    after = {f["name"]: f for f in r["after"]}
    assert after == before  # reset and clearing the search restore every frame exactly
