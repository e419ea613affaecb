"""speedscope's file format (https://www.speedscope.app): one ``sampled`` profile.

Frames are shared by name; each distinct stack is one sample (frame indices, root first) with
its weight. The unit maps bpfkit's to speedscope's (``"us"`` → ``"microseconds"``, samples →
``"none"``).

Example::

    json.dump(to_speedscope(prof, "cpu"), open("cpu.speedscope.json", "w"))
"""
from __future__ import annotations

from typing import Any

from .base import UNITS, Folded

SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def to_speedscope(prof: Folded, name: str) -> dict[str, Any]:
    """The speedscope document (a JSON-ready dict) for ``prof``.

    Example::

        doc = to_speedscope(prof, "cpu"); doc["profiles"][0]["weights"]
    """
    index: dict[str, int] = {}
    samples: list[list[int]] = []
    for st in prof.stacks:
        samples.append([index.setdefault(f, len(index)) for f in st])
    weights = [int(w) if float(w).is_integer() else float(w) for w in prof.counts.tolist()]
    total = sum(weights)
    return {
        "$schema": SCHEMA,
        "shared": {"frames": [{"name": f} for f in index]},
        "profiles": [{
            "type": "sampled",
            "name": name,
            "unit": UNITS[prof.unit],
            "startValue": 0,
            "endValue": total,
            "samples": samples,
            "weights": weights,
        }],
        "name": name,
        "activeProfileIndex": 0,
        "exporter": "bpfkit",
    }
