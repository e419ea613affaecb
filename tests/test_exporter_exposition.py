"""The exporter's own text format writer: what Prometheus's parser reads back, escaping included,
and the same samples as prometheus_client's writer for the registry path."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bpfkit.exporter.exposition import Family, HistSeries, render, to_metric

FAMILIES = [
    Family("calls", "counter", "calls\nper \\ pid", ("pid", "comm"),
           {("1", 'say "hi"'): 5, ("2", "back\\slash\nnl"): 2**60}),
    Family("temp", "gauge", "a gauge", (), {(): 0.25}),
    Family("lat", "histogram", "latency", ("k",), hists=[
        HistSeries(("a",), [("0", 1), ("1", 3), ("3", 3), ("+Inf", 4)], 9),
        HistSeries(("b",), [("0", 0), ("1", 0), ("3", 2), ("+Inf", 2)])]),
    Family("nolabels", "histogram", "h", (), hists=[HistSeries((), [("+Inf", 0)], None)]),
]


def _parsed(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text) for s in f.samples]


def test_render_exact_text() -> None:
    text = render(FAMILIES).decode()
    assert text == (
        '# HELP calls_total calls\\nper \\\\ pid\n# TYPE calls_total counter\n'
        'calls_total{pid="1",comm="say \\"hi\\""} 5\n'
        'calls_total{pid="2",comm="back\\\\slash\\nnl"} 1152921504606846976\n'
        '# HELP temp a gauge\n# TYPE temp gauge\ntemp 0.25\n'
        '# HELP lat latency\n# TYPE lat histogram\n'
        'lat_bucket{k="a",le="0"} 1\nlat_bucket{k="a",le="1"} 3\nlat_bucket{k="a",le="3"} 3\n'
        'lat_bucket{k="a",le="+Inf"} 4\nlat_count{k="a"} 4\nlat_sum{k="a"} 9\n'
        'lat_bucket{k="b",le="0"} 0\nlat_bucket{k="b",le="1"} 0\nlat_bucket{k="b",le="3"} 2\n'
        'lat_bucket{k="b",le="+Inf"} 2\nlat_count{k="b"} 2\n'
        '# HELP nolabels h\n# TYPE nolabels histogram\nnolabels_bucket{le="+Inf"} 0\nnolabels_count 0\n')


def test_same_samples_as_prometheus_client() -> None:
    registry = CollectorRegistry()

    class Fixed:
        def collect(self):  # type: ignore[no-untyped-def]
            return [to_metric(f) for f in FAMILIES]

    registry.register(Fixed())  # type: ignore[arg-type]
    ours = _parsed(render(FAMILIES).decode())
    theirs = _parsed(generate_latest(registry).decode())
    assert ours == theirs
    assert ("calls_total", {"pid": "2", "comm": "back\\slash\nnl"}, float(2**60)) in ours
