"""The block tools on a loop device of the test's own, with O_DIRECT reads and writes of known
sizes and count (tests/_blockdev.py): biolatency's totals, bitesize's buckets, biosnoop's rows and
biotop's rows match them exactly."""
from __future__ import annotations

import json
import os
import signal

import pytest

from _blockdev import dio, loop_device
from _cli import ToolRun
from bpfkit import cli
from bpfkit.tools import biolatency
from bpfkit.tools._block import flags_text

pytestmark = pytest.mark.root

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
