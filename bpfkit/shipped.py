"""The prebuilt ``.bpf.o`` objects shipped inside the package (compiled from ``c/`` at build time).

Example::

    path = bpfkit.shipped.find_object("syscount")   # .../bpfkit/bpf/tools/syscount.bpf.o
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

__all__ = ["BPF_DIR", "shipped_objects", "find_object"]

BPF_DIR = Path(__file__).resolve().parent / "bpf"


def shipped_objects() -> dict[str, Path]:
    """Every shipped object by its relative name without ``.bpf.o`` (``"tools/syscount"``)."""
    out: dict[str, Path] = {}
    if BPF_DIR.is_dir():
        for p in sorted(BPF_DIR.rglob("*.bpf.o")):
            out[str(p.relative_to(BPF_DIR))[: -len(".bpf.o")]] = p
    return out


def find_object(name: str) -> Optional[Path]:
    """A shipped object by relative name (``"tools/syscount"``) or basename (``"syscount"``)."""
    name = name[: -len(".bpf.o")] if name.endswith(".bpf.o") else name
    direct = BPF_DIR / f"{name}.bpf.o"
    if ".." not in Path(name).parts and not os.path.isabs(name) and direct.is_file():
        return direct  # the usual case, without walking the whole directory (~85 objects)
    objs = shipped_objects()
    if name in objs:
        return objs[name]
    matches = [p for rel, p in objs.items() if os.path.basename(rel) == name]
    return matches[0] if len(matches) == 1 else None
