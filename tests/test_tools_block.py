"""The block tools on a loop device of the test's own, with O_DIRECT reads and writes of known
sizes and count (tests/_blockdev.py): biolatency's totals, bitesize's buckets, biosnoop's rows and
biotop's rows match them exactly."""
from __future__ import annotations

import json
import os
import signal
import sys
import time

import pytest

from _blockdev import dio, loop_device
from _cli import ToolRun
from bpfkit import cli
from bpfkit.tools import biolatency, biosnoop, biotop, bitesize
from bpfkit.tools.bcc_format import bcc_slots
from bpfkit.tools._block import flags_text

pytestmark = pytest.mark.root

COMM = os.path.basename(sys.executable)[:15]  # the dio fixture's command name
OPS = [("w", 4096, 7), ("r", 16384, 5), ("w", 65536, 3)]


def test_biolatency_counts_every_request_of_the_disk() -> None:
    with loop_device() as dev, dio(dev, OPS) as p:
        with biolatency.trace(disk=dev, extension=True) as t:
            p.finish()
            r = t.read()
    assert list(r.hists) == [""] and r.unit == "usecs"
    assert r.total == 15 and r.counts == {"": 15} and r.lost == 0
    assert r.totals[""] > 0


def test_biolatency_per_flags_and_per_disk() -> None:
    with loop_device() as dev, dio(dev, OPS) as p:
        with biolatency.trace(disk=dev, per_flags=True) as t:
            p.finish()
            by_flags = t.read()
    writes = {k: h.total for k, h in by_flags.hists.items() if k.endswith("-Write") or k == "Write"}
    reads = {k: h.total for k, h in by_flags.hists.items() if k.endswith("-Read") or k == "Read"}
    assert sum(writes.values()) == 10 and sum(reads.values()) == 5, by_flags.hists
    assert set(by_flags.hists) == set(writes) | set(reads)
    with loop_device() as dev, dio(dev, OPS) as p:
        with biolatency.trace(per_disk=True, milliseconds=True) as t:
            p.finish()
            by_disk = t.read()
    assert by_disk.hists[os.path.basename(dev)].total == 15 and by_disk.unit == "msecs"


def test_biolatency_scoped_to_the_submitting_process() -> None:
    """-p: only the I/O the process submitted, though another process uses the same disk."""
    with loop_device() as dev, dio(dev, [("r", 4096, 6)]) as mine, dio(dev, [("w", 8192, 4)]) as other:
        with biolatency.trace(pid=mine.pid, queued=True) as t:
            other.finish()
            mine.finish()
            r = t.read()
    assert r.total == 6, r.hists


def test_biolatency_cli_json_until_sigint() -> None:
    with loop_device() as dev, dio(dev, OPS) as p:
        with ToolRun("biolatency", "-Q", "-F", "-j", "-d", dev) as run:
            p.finish()
            rc, out, err = run.stop(signal.SIGINT)
    assert rc == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == 1 and docs[0]["val_type"] == "usecs" and docs[0]["lost"] == 0
    total = sum(b["count"] for buckets in docs[0]["flags"].values() for b in buckets)
    assert total == 15
    assert all(name.split("-")[-1] in ("Read", "Write") for name in docs[0]["flags"])


def test_biolatency_cli_text_interval_and_errors() -> None:
    with loop_device() as dev, dio(dev, OPS) as p:
        with ToolRun("biolatency", "-D", "-e", "-d", dev, "30") as run:
            p.finish()
            rc, out, err = run.stop(signal.SIGTERM)
    assert rc == 0, err
    name = os.path.basename(dev)
    assert f"disk = {name}" in out and "usecs               : count     distribution" in out
    rows = [line for line in out.splitlines() if "->" in line]
    assert sum(int(r.split(":")[1].split("|")[0]) for r in rows) == 15
    assert f"disk = {name}: avg = " in out and "count: 15" in out
    assert cli.main(["biolatency", "-D", "-F"]) == 2
    assert cli.main(["biolatency", "-d", "no-such-disk"]) == 2


def test_flags_text_as_bcc() -> None:
    assert flags_text(1) == "Write" and flags_text(0) == "Read"
    assert flags_text(1 | 1 << 11 | 1 << 15) == "Idle-Sync-Write"
    assert flags_text(0 | 1 << 19) == "ReadAhead-Read" and flags_text(4) == "Unknown"


def _offsets(ops: list[tuple[str, int, int]]) -> list[tuple[str, int, int]]:
    """(op, offset, size) of each request DIO_SCRIPT makes."""
    out, off = [], 0
    for op, size, count in ops:
        for _ in range(count):
            off = (off + 2 * size + size - 1) // size * size
            out.append((op, off, size))
            off += size
    return out


def test_biosnoop_one_row_per_request_in_order() -> None:
    with loop_device() as dev, dio(dev, OPS) as p:
        with biosnoop.stream(disk=dev) as s:
            p.finish()
            time.sleep(0.1)
            rows = biosnoop.decode(s.drain())
            dropped, lost = s.dropped, s.lost
    assert dropped == 0 and lost == 0
    name = os.path.basename(dev)
    got = [(r["rw"], r["sector"] * 512, r["bytes"]) for r in rows]
    assert got == [("W" if op == "w" else "R", off, size) for op, off, size in _offsets(OPS)]
    assert {(r["pid"], r["comm"], r["disk"]) for r in rows} == {(p.pid, COMM, name)}
    assert all(r["lat_ns"] > 0 and r["queue_ns"] >= 0 for r in rows)
    assert [r["pattern"] for r in rows][1:] == ["R"] * 14  # each skips a gap: never sequential


def test_biosnoop_cli_table_and_json() -> None:
    with loop_device() as dev, dio(dev, OPS) as p:
        with ToolRun("biosnoop", "-Q", "-P", "-d", dev) as run:
            p.finish()
            time.sleep(0.3)
            rc, out, err = run.stop()
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["TIME(s)", "COMM", "PID", "DISK", "T", "SECTOR", "BYTES", "P", "QUE(ms)", "LAT(ms)"]
    rows = [line.split() for line in lines[1:]]
    assert [(r[4], int(r[5]) * 512, int(r[6])) for r in rows] == \
        [("W" if op == "w" else "R", off, size) for op, off, size in _offsets(OPS)]
    assert {(int(r[2]), r[3]) for r in rows} == {(p.pid, os.path.basename(dev))}
    with loop_device() as dev, dio(dev, [("r", 4096, 4)]) as p:
        with ToolRun("biosnoop", "--json", "-p", str(p.pid)) as run:
            p.finish()
            time.sleep(0.3)
            rc, out, err = run.stop(signal.SIGTERM)
    assert rc == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    assert [(d["pid"], d["rw"], d["bytes"], d["disk"]) for d in docs] == [(p.pid, "R", 4096, os.path.basename(dev))] * 4


def test_biotop_rows_per_process_and_direction() -> None:
    with loop_device() as dev, dio(dev, OPS) as p:
        with biotop.trace(disk=dev) as t:
            p.finish()
            rows = t.read()
            assert t.read() == []  # read() cleared the interval
    name = os.path.basename(dev)
    got = {(r.pid, r.write, r.disk): (r.io, r.bytes) for r in rows}
    assert got == {(p.pid, True, name): (10, 7 * 4096 + 3 * 65536), (p.pid, False, name): (5, 5 * 16384)}
    assert all(r.avg_ms > 0 for r in rows)
    table = biotop.format_table(rows).splitlines()
    assert table[0].split() == ["PID", "COMM", "D", "MAJ", "MIN", "DISK", "I/O", "Kbytes", "AVGms"]
    assert table[1].split()[2:8] == ["W", str(rows[0].major), str(rows[0].minor), name, "10", str(220)]


def test_biotop_cli_json_intervals() -> None:
    with loop_device() as dev, dio(dev, [("w", 8192, 6)]) as p:
        with ToolRun("biotop", "--json", "-d", dev, "0.3") as run:
            p.finish()
            time.sleep(0.8)
            rc, out, err = run.stop()
    assert rc == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) >= 2
    rows = [r for d in docs for r in d["rows"]]
    assert sum(r["io"] for r in rows) == 6 and sum(r["bytes"] for r in rows) == 6 * 8192
    assert {(r["pid"], r["write"]) for r in rows} == {(p.pid, True)}


def test_bitesize_buckets_exact() -> None:
    with loop_device() as dev, dio(dev, OPS) as p:
        with bitesize.trace(pid=p.pid) as t:
            p.finish()
            hists = t.read()
    assert len(hists) == 1
    (comm, h), = hists.items()
    counts = bcc_slots(h)
    assert {i: int(c) for i, c in enumerate(counts) if c} == {3: 7, 5: 5, 7: 3}  # 4-7, 16-31, 64-127 KiB
    text = bitesize.format_text(hists)
    assert f"Process Name = {comm}" in text
    assert "         4 -> 7          : 7 " in text and "        64 -> 127        : 3 " in text


def test_bitesize_cli_json() -> None:
    with loop_device() as dev, dio(dev, [("r", 1024, 9), ("w", 2048, 2)]) as p:
        with ToolRun("bitesize", "--json", "-d", dev) as run:
            p.finish()
            rc, out, err = run.stop()
    assert rc == 0, err
    (doc,) = [json.loads(line) for line in out.splitlines()]
    (buckets,) = doc["comms"].values()
    assert [(b["interval-start"], b["interval-end"], b["count"]) for b in buckets] == [(0, 1, 9), (2, 3, 2)]
    assert list(doc["comms"]) == [COMM]
