"""docs/testing.md shows the example files verbatim, so the documented example is one that runs."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_docs_blocks_match_the_files_they_name() -> None:
    doc = (ROOT / "docs" / "testing.md").read_text()
    blocks = re.findall(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```\n", doc, flags=re.S)
    assert {path for path, _ in blocks} == {
        "tests/test_plugin_example.py", "tests/probes/write_stats.bpf.c", "tests/probes/port_filter.bpf.c"}
    for path, text in blocks:
        assert text == (ROOT / path).read_text(), f"docs/testing.md is out of date with {path}"
