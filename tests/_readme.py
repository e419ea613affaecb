"""The README's code blocks, for the tests that run them (test_readme.py, test_packaging.py).

A fenced block is code when its language is ``python`` or ``sh``; a ``text`` block right after a code
block (nothing but blank lines between) is the output that code must print.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

README = Path(__file__).resolve().parent.parent / "README.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.S | re.M)


@dataclass(frozen=True)
class Block:
    """One code block: its language, text, the section it is in, its 1-based line, and the output
    block that follows it (None: its output is not shown, only that it runs)."""

    lang: str
    code: str
    section: str
    line: int
    output: Optional[str]

    @property
    def id(self) -> str:
        """A test id: the section's name and the block's line."""
        words = re.sub(r"[^a-z0-9]+", "-", self.section.lower()).strip("-")
        return f"{words}-L{self.line}"


def blocks(text: Optional[str] = None) -> list[Block]:
    """The code blocks of the README (or of ``text``), in order."""
    text = README.read_text() if text is None else text
    found = list(_FENCE.finditer(text))
    out: list[Block] = []
    for i, m in enumerate(found):
        lang = m.group(1)
        if lang not in ("python", "sh"):
            continue
        output = None
        if i + 1 < len(found):
            nxt = found[i + 1]
            if nxt.group(1) == "text" and not text[m.end():nxt.start()].strip():
                output = nxt.group(2)
        heading = [h for h in re.findall(r"^#+ (.+)$", text[:m.start()], re.M)]
        out.append(Block(lang, m.group(2), heading[-1] if heading else "", text.count("\n", 0, m.start()) + 2,
                         output))
    return out


# Runs python blocks in order in one namespace (like a notebook), each one's stdout captured apart,
# and writes {index: {"stdout": ..., "error": ...}} as JSON to the path in argv[1]. The blocks are
# in argv[2] (a JSON list of sources).
RUNNER = r'''
import contextlib, io, json, sys, traceback
blocks = json.load(open(sys.argv[2]))
results = {}
ns = {"__name__": "__main__"}
for i, src in enumerate(blocks):
    out = io.StringIO()
    err = ""
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(src, f"README block {i}", "exec"), ns)
    except BaseException:
        err = traceback.format_exc()
    results[i] = {"stdout": out.getvalue(), "error": err}
    if err:
        break  # later blocks build on this one
json.dump(results, open(sys.argv[1], "w"))
'''


def write_runner(workdir: Path, sources: list[str]) -> tuple[Path, Path, Path]:
    """Files for running ``sources`` with RUNNER in ``workdir``: (runner, blocks, results)."""
    runner, src, res = workdir / "readme_runner.py", workdir / "readme_blocks.json", workdir / "readme_results.json"
    runner.write_text(RUNNER)
    src.write_text(json.dumps(sources))
    return runner, src, res
