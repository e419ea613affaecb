"""The example notebooks in examples/, executed headless by nbclient in a real IPython kernel (as
root: they load BPF programs), and one rendered to HTML by nbconvert to check what the reprs look
like on the page. The notebooks carry their own asserts (exact event counts), so a notebook that
runs but computes the wrong thing fails here too."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Callable

import pytest

nbformat = pytest.importorskip("nbformat", reason="needs nbformat (pip install 'bpfkit[notebook]')")
nbclient = pytest.importorskip("nbclient", reason="needs nbclient (pip install 'bpfkit[notebook]')")
pytest.importorskip("ipykernel", reason="needs ipykernel (pip install 'bpfkit[notebook]')")

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOKS = sorted(p.name for p in EXAMPLES.glob("*.ipynb"))


def test_the_four_examples_are_there_without_outputs() -> None:
    assert NOTEBOOKS == ["01_getting_started.ipynb", "02_latency_histogram.ipynb", "03_events_pandas.ipynb",
                         "04_flame_graph.ipynb"]
    for name in NOTEBOOKS:  # outputs are made by running them, never committed
        nb = json.loads((EXAMPLES / name).read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, name


@pytest.fixture(scope="module")
def executed() -> Callable[[str], Any]:
    """``executed(name)``: the notebook run top to bottom in a fresh kernel (once per module)."""
    done: dict[str, Any] = {}

    def run(name: str) -> Any:
        if name not in done:
            nb = nbformat.read(EXAMPLES / name, as_version=4)
            client = nbclient.NotebookClient(nb, timeout=180, kernel_name="python3",
                                             resources={"metadata": {"path": str(EXAMPLES)}})
            client.execute()  # raises CellExecutionError with the cell's traceback on any error
            done[name] = nb
        return done[name]

    return run


def _outputs(nb: Any) -> list[dict[str, Any]]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


@pytest.mark.root
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_example_notebook_runs_headless(executed: Callable[[str], Any], name: str) -> None:
    nb = executed(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count is not None for c in code)
    assert not [o for o in _outputs(nb) if o.output_type == "error"]


class _Page(HTMLParser):
    """The tables (caption, header, rows of cell text), SVG bar tooltips and text of an HTML page,
    however the renderer quoted or ordered the attributes."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: list[dict[str, Any]] = []
        self.tips: list[str] = []
        self.text: list[str] = []
        self._cell: list[str] | None = None
        self._in: str = ""
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "table":
            self.tables.append({"caption": "", "header": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th", "caption", "title"):
            self._cell, self._in = [], tag

    def handle_endtag(self, tag: str) -> None:
        if tag == self._in and self._cell is not None:
            text = "".join(self._cell).strip()
            t = self.tables[-1] if self.tables else None
            if tag == "caption" and t is not None:
                t["caption"] = text
            elif tag == "th" and t is not None:
                t["header"].append(text)
            elif tag == "td" and t is not None:
                t["rows"][-1].append(text)
            elif tag == "title":
                self.tips.append(text)
            self._cell, self._in = None, ""

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)

    def table(self, caption: str, first_header: str) -> list[dict[str, str]]:
        """Every row (as header -> cell) of the tables with that caption and first column."""
        return [dict(zip(t["header"], r)) for t in self.tables if t["caption"] == caption
                and t["header"][:1] == [first_header] for r in t["rows"] if r]


def _html(nb: Any) -> str:
    exporter = pytest.importorskip("nbconvert", reason="needs nbconvert to render HTML").HTMLExporter()
    body, _ = exporter.from_notebook_node(nb)
    return str(body)


@pytest.mark.root
def test_rendered_notebook_shows_the_reprs(executed: Callable[[str], Any]) -> None:
    nb = executed("01_getting_started.ipynb")
    page = _Page(_html(nb))
    text = " ".join("".join(page.text).split())
    # the spec: programs with section, type, instruction count, autoload; maps with types and sizes
    assert "ObjectSpec counter" in text
    progs = page.table("programs", "name")
    spec_row = next(r for r in progs if "autoload" in r)
    assert spec_row["name"] == "on_getpid" and spec_row["section"] == "tracepoint/syscalls/sys_enter_getpid"
    assert spec_row["type"] == "tracepoint" and int(spec_row["insns"]) > 0 and spec_row["autoload"] == "yes"
    maps = [r for r in page.table("maps", "name") if "elements" not in r]
    assert {"name": "calls", "type": "hash", "key": "u4", "value": "u8", "max_entries": "1024"} in maps
    assert {"name": "events", "type": "ringbuf", "key": "-", "value": "records {pid: u4, tid: u4, seq: u8, comm: S16}",
            "max_entries": "262144"} in maps
    # the live object, attached: its program id and the link the kernel says runs it
    live = next(r for r in progs if "attached" in r)
    assert int(live["id"]) > 0 and live["attached"] == "tracepoint syscalls:sys_enter_getpid"
    assert "Object counter" in text and "links: 1" in text
    # the map: type and sizes, element count, its rows
    assert "Map calls" in text and "elements: 1" in text
    rows = page.table("", "key")
    assert [r["value"] for r in rows if r.get("value")] == ["100"]
    # the event batch: count, dtype, the first ten rows, comm as text
    assert "records: 100" in text and "… 90 more rows" in text
    events = page.table("", "pid")
    assert [int(r["seq"]) for r in events] == list(range(10))
    assert all(r["comm"] and not r["comm"].startswith("b'") and r["pid"] == r["tid"] for r in events)
    assert "state: closed" in text


@pytest.mark.root
def test_rendered_histogram_and_flame_graph(executed: Callable[[str], Any]) -> None:
    page = _Page(_html(executed("02_latency_histogram.ipynb")))
    bars = [t.rsplit(": ", 1) for t in page.tips if t.startswith("[")]
    assert sum(int(n.replace(",", "")) for _, n in bars) == 50  # every sleep, in the SVG bars
    assert bars[0][0] == "[2K, 4K)"  # the first row: nothing slept less than asked
    flame = _html(executed("04_flame_graph.ipynb"))
    assert "<iframe" in flame and "srcdoc=" in flame and "&lt;svg" in flame  # the flame graph, inline
