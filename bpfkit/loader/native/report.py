"""``bpfkit core-report OBJ [--btf FILE ...]``: every CO-RE relocation of an object and whether it
resolves on this kernel or on the kernels whose BTF is given (say, the 6.1 and 6.12 kernels the
test runner downloads) — "will my tool run on kernel X" without booting X.

Each relocation is resolved exactly as a load would (same candidates, same rules); a relocation
that does not resolve is one whose instruction a load would poison: fine if the program guards it
(``bpf_core_field_exists()``), a verifier error if it runs.

Example::

    rows = core_report("tests/corpus/core_kinds", ["/boot/vmlinux-6.1"])
    print(format_report(rows))

    $ bpfkit core-report tool.bpf.o --btf ~/.cache/bpfkit/kernels/linux-image-6.1.0-57-amd64/vmlinux
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ...errors import BpfError
from . import core
from .parse import parse
from .relocate import CoreContext, _resolve_one
from .target import Target

__all__ = ["Row", "core_report", "format_report", "main"]


@dataclass
class Row:
    """One relocation: where, what, and its outcome per target kernel (name -> text)."""

    program: str
    section: str
    number: int
    insn: int
    kind: str
    access: str
    local: str
    results: dict[str, str] = field(default_factory=dict)

    @property
    def portable(self) -> bool:
        return all(not r.startswith(("MISSING", "ERROR")) for r in self.results.values())


def _outcome(res: core.Result) -> str:
    if res.poison:
        return f"MISSING ({res.reason})" if res.reason else "MISSING"
    where = f" in {res.target_btf}" if res.target_btf and res.target_btf != "vmlinux" else ""
    if res.orig_val == res.new_val:
        return f"ok {res.new_val}{where}"
    return f"ok {res.orig_val} -> {res.new_val}{where}"


def core_report(source: str, btf_paths: Optional[Sequence[str]] = None) -> list[Row]:
    """Resolve every CO-RE relocation of ``source`` (a path or a shipped object's name) against the
    running kernel (if ``btf_paths`` is empty) or each BTF file."""
    from ...shipped import find_object

    path = source if os.path.exists(source) else str(find_object(source) or source)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise BpfError(f"BPF object {source!r} not found") from None
    model = parse(data, os.path.basename(path).split(".")[0]).model
    rows: list[Row] = []
    if model.ext is None or not model.ext.core_relos or model.btf is None:
        return rows
    local = model.local_index()
    assert local is not None
    targets = [("this kernel", Target())] if not btf_paths else [(_label(p), Target([p])) for p in btf_paths]
    sec_index: dict[str, int] = {}
    for idx, name in sorted(model.sec_names.items()):
        sec_index.setdefault(name, idx)
    contexts = [(label, CoreContext(local, t.candidates)) for label, t in targets]
    for sec, relos in model.ext.core_relos.items():
        for number, relo in enumerate(relos):
            insn = relo.insn_off // 8
            prog = model.prog_at(sec_index.get(sec, -1), insn)
            try:
                spec = core.parse_spec(local, relo)
                access = core.access_string(spec)
            except (core.CoreError, BpfError) as e:
                spec, access = None, f"<unparsable: {e}>"
            row = Row(prog.name if prog else "?", sec, number, insn - (prog.sec_off if prog else 0),
                      core.relo_kind_name(relo.kind), access, relo.access)
            for label, ctx in contexts:
                try:
                    row.results[label] = _outcome(_resolve_one(ctx, relo)) if spec is not None else "ERROR"
                except (core.CoreError, BpfError) as e:
                    row.results[label] = f"ERROR {e}"
            rows.append(row)
    for _, t in targets:
        t.close()
    return rows


def _label(path: str) -> str:
    """A kernel's short name: the file's, or its directory's for a plain ``vmlinux``."""
    path = os.path.normpath(os.path.expanduser(path))
    base = os.path.basename(path)
    if base in ("vmlinux", "btf") and os.path.dirname(path):
        return os.path.basename(os.path.dirname(path))
    return base


def format_report(rows: list[Row]) -> str:
    """A table: one line per relocation, one column per kernel, and a summary line."""
    if not rows:
        return "no CO-RE relocations: the object does not depend on kernel type layouts"
    labels = list(rows[0].results)
    out = []
    for label in labels:
        n_bad = sum(1 for r in rows if not r.results[label].startswith("ok"))
        out.append(f"# {label}: {len(rows) - n_bad}/{len(rows)} relocations resolve"
                   + (f", {n_bad} do not (their instructions are poisoned: fine only if guarded)" if n_bad else ""))
    width = max(len(f"{r.program} #{r.insn}") for r in rows)
    akind = max(len(r.kind) for r in rows)
    acc = max(len(r.access) for r in rows)
    for r in rows:
        cells = "  ".join(f"[{label}] {r.results[label]}" if len(labels) > 1 else r.results[label] for label in labels)
        out.append(f"{r.program + ' #' + str(r.insn):<{width}}  {r.kind:<{akind}}  {r.access:<{acc}}  {cells}")
    return "\n".join(out)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit core-report``: exit 0 when every relocation resolves everywhere, 1 otherwise."""
    p = argparse.ArgumentParser(prog="bpfkit core-report", description=__doc__.split("\n\n")[0])
    p.add_argument("object", help="a .bpf.o file or a shipped object's name (e.g. tests/corpus/core_kinds)")
    p.add_argument("--btf", action="append", default=[], metavar="FILE",
                   help="resolve against this kernel BTF (raw BTF or a vmlinux ELF) instead of the running "
                        "kernel's; repeat for several kernels")
    p.add_argument("--json", action="store_true", help="one JSON object per relocation")
    args = p.parse_args(argv)
    try:
        rows = core_report(args.object, args.btf)
    except BpfError as e:
        print(f"bpfkit core-report: {e}", file=sys.stderr)
        return 2
    if args.json:
        for r in rows:
            print(json.dumps({"program": r.program, "section": r.section, "relocation": r.number, "insn": r.insn,
                              "kind": r.kind, "access": r.access, "access_string": r.local, "results": r.results}))
    else:
        print(format_report(rows))
    return 0 if all(r.portable for r in rows) else 1
