"""``bpfkit record``: load a BPF object, attach its programs, and record one of its ring or perf
buffers to Parquet until Ctrl-C, SIGTERM, ``-d`` seconds or ``-n`` records.

Example::

    $ sudo bpfkit record -o exec.parquet -d 10 my_tool.bpf.o
    $ sudo bpfkit record -o getpid.parquet -m events -P ring_getpid --set target_pid=1234 tests/events_test
    bpfkit record: 2,000 records in 1 row group to getpid.parquet (dropped 0, lost 0): complete
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Optional, Sequence

from ..compiler import compile as compile_source
from ..errors import BpfNotFoundError, BpfUsageError
from ..loader import ObjectSpec
from ..loader import open as open_object
from ..maps.kinds import EVENT_TYPES
from ..probes.link import LinkGroup
from ..record.recorder import COMPRESSIONS, ROWS_PER_GROUP, Recorder
from .common import add_duration, add_json, parser, positive_int, print_json, run_tool

__all__ = ["main", "record_object", "open_spec"]


def _value(text: str) -> Any:
    try:
        return int(text, 0)
    except ValueError:
        return text.encode()  # char arrays


def open_spec(source: str, sets: Sequence[str]) -> ObjectSpec:
    """The object to record from: a ``.bpf.o`` path, a shipped object's name, or a ``.bpf.c``
    file (compiled, cached); ``sets`` are ``NAME=VALUE`` for its ``const volatile`` globals."""
    path: Any = source
    if source.endswith(".c"):
        if not os.path.exists(source):
            raise BpfNotFoundError(f"BPF source {source!r} not found")
        path = compile_source(source)
    spec = open_object(path)
    for item in sets:
        name, eq, value = item.partition("=")
        if not eq:
            raise BpfUsageError(f"--set {item!r}: write NAME=VALUE")
        setattr(spec.rodata, name, _value(value))
    return spec


def _buffer(spec: ObjectSpec, name: Optional[str]) -> str:
    buffers = [n for n, m in spec.maps.items() if m.map_type in EVENT_TYPES]
    if name is not None:
        if name not in buffers:
            raise BpfUsageError(f"{spec.name} has no ring or perf buffer {name!r}; it has: {', '.join(buffers) or 'none'}")
        return name
    typed = [n for n in buffers if spec.maps[n].record_dtype is not None]
    if len(typed) == 1:
        return typed[0]
    raise BpfUsageError(f"{spec.name} has {len(buffers)} event buffers ({', '.join(buffers) or 'none'}): "
                        "name the one to record with -m MAP")


def record_object(spec: ObjectSpec, output: str, map_name: Optional[str] = None, *,
                  duration: Optional[float] = None, count: Optional[int] = None,
                  rows_per_group: int = ROWS_PER_GROUP, compression: str = "snappy",
                  perf_pages: int = 256, programs: Sequence[str] = ()) -> Recorder:
    """Load ``spec``, attach its programs (only ``programs`` when given), record buffer
    ``map_name`` (default: its one typed ring/perf buffer) to ``output``; returns the closed
    Recorder (its counts and records).

    Example::

        rec = record_object(bpfkit.open("tests/events_test"), "out.parquet", "events", duration=5)
    """
    name = _buffer(spec, map_name)
    for prog in programs:
        spec.programs[prog]  # BpfNotFoundError naming the object's programs, before loading
    with spec.load() as obj:
        reader = obj.reader(name)
        if hasattr(reader, "open"):
            reader.open(pages=perf_pages)  # a perf buffer reads only what arrives once it is open
        rec = Recorder(output, reader=reader, rows_per_group=rows_per_group, compression=compression,
                       source=f"{spec.name}:{name}")
        try:
            with (LinkGroup([obj.progs[p].attach() for p in programs]) if programs else obj.attach()):
                rec.record(duration=duration, count=count)
            if count is None or rec.accepted < count:
                rec.record(idle=0.0, count=None if count is None else count - rec.records - rec._pending_rows)
        finally:
            rec.close()
    return rec


def _summary(rec: Recorder) -> str:
    c = rec.counts
    verdict = {True: "complete", False: "INCOMPLETE", None: "losses not counted (use BPFKIT_RESERVE)"}[rec.complete]
    groups = f"{rec.row_groups} row group{'s' if rec.row_groups != 1 else ''}"
    return f"{rec.records:,} records in {groups} to {rec.path} (dropped {c['dropped']}, lost {c['lost']}): {verdict}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``bpfkit record``; returns the exit status (1 when records were lost)."""
    p = parser("record", "Record a BPF object's ring or perf buffer to Parquet (until Ctrl-C).",
               "Read it back with bpfkit.replay(PATH), pandas.read_parquet(PATH) or any Parquet reader.")
    p.add_argument("object", help="a .bpf.o file, a shipped object's name, or a .bpf.c file (compiled)")
    p.add_argument("-o", "--output", required=True, help="the Parquet file to write")
    p.add_argument("-m", "--map", help="the ring/perf buffer to record (default: the object's one typed buffer)")
    p.add_argument("-n", "--count", type=positive_int, help="stop after this many records")
    p.add_argument("-P", "--prog", action="append", default=[], metavar="NAME",
                   help="attach only this program (repeatable; default: every program whose SEC() names a target)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="set a const volatile global before load (repeatable)")
    p.add_argument("--rows-per-group", type=positive_int, default=ROWS_PER_GROUP,
                   help=f"records per Parquet row group (default {ROWS_PER_GROUP})")
    p.add_argument("--compression", choices=COMPRESSIONS, default="snappy")
    p.add_argument("--perf-pages", type=positive_int, default=256, help="perf buffer pages per CPU")
    add_duration(p)
    add_json(p)

    def body(args: argparse.Namespace) -> int:
        spec = open_spec(args.object, args.set)
        rec = record_object(spec, args.output, args.map, duration=args.duration, count=args.count,
                            rows_per_group=args.rows_per_group, compression=args.compression,
                            perf_pages=args.perf_pages, programs=args.prog)
        if args.json:
            print_json({"path": rec.path, "records": rec.records, "row_groups": rec.row_groups, **rec.counts,
                        "complete": rec.complete})
        else:
            print(f"bpfkit record: {_summary(rec)}", file=sys.stderr)
        return 1 if rec.complete is False else 0

    return run_tool("record", p, argv, body)
