"""docs/exporter.md's complete example is a working config: parsed, loaded, attached and scraped
here, so the documentation cannot drift from the code."""
from __future__ import annotations

import os
import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bpfkit.exporter import Exporter, config

DOC = Path(__file__).resolve().parent.parent / "docs" / "exporter.md"


def example(tmp_path: Path) -> Path:
    text = DOC.read_text()
    m = re.search(r"<!-- exporter-example -->\n```toml\n(.*?)\n```\n", text, re.S)
    assert m, "docs/exporter.md lost its <!-- exporter-example --> block"
    path = tmp_path / "exporter.toml"
    path.write_text(m.group(1) + "\n")
    return path


def test_example_parses_into_what_the_doc_describes(tmp_path: Path) -> None:
    cfg = config.load(example(tmp_path))
    assert cfg.listen == "127.0.0.1:9435"
    assert [(e.name, e.kind) for e in cfg.entries] == [("syscalls", "tool"), ("bpf_stats", "tool"),
                                                      ("procs", "object"), ("io", "code")]
    decoders = {lb.decoder for e in cfg.entries for m in e.metrics for lb in m.labels}
    assert decoders == {"syscall", "errno", "comm", "static", "cgroup", ""}  # "" = int/string by field type


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")
def test_example_runs_and_serves_every_metric(tmp_path: Path) -> None:
    cfg = config.load(example(tmp_path))
    with Exporter(cfg, listen="127.0.0.1:0") as ex:
        with open(tmp_path / "out.txt", "wb") as f:  # some writes for the io entry to see
            for _ in range(3):
                f.write(b"x" * 100)
                f.flush()
                os.fsync(f.fileno())
        with urllib.request.urlopen(ex.url, timeout=30) as r:
            text = r.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    want = {m.family for e in cfg.entries for m in e.metrics} | {
        "bpfkit_prog_run_time_seconds", "bpfkit_prog_runs", "bpfkit_prog_recursion_misses"}
    assert want <= set(families)
    assert families["node_write_bytes"].type == "histogram"
    mine = [s for s in families["node_writes"].samples if s.labels["pid"] == str(os.getpid())]
    assert mine and all(s.labels["comm"] == Path("/proc/self/comm").read_text().strip() for s in mine)
    assert {s.labels["fd"] for s in mine} <= {"stdin", "stdout", "stderr", "other"}
