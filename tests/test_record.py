"""Recording ring/perf buffers to Parquet and replaying them, against the real kernel: exact
records and row groups, the file's metadata saying whether anything was lost, ``bpfkit record``."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bpfkit.errors import BpfNotFoundError, BpfUsageError, ClosedError, ObjectFormatError
from bpfkit.events import RawBatch

from _event_trigger import Trigger, comm_of

pq = pytest.importorskip("pyarrow.parquet", reason="recording needs pyarrow (pip install 'bpfkit[arrow]')")
from bpfkit.record import META, Recorder, replay  # noqa: E402

pytestmark = pytest.mark.root
REPO = Path(__file__).resolve().parent.parent


def test_written_batches_replay_identically(events_obj: Any, trigger: Trigger, tmp_path: Path) -> None:
    path = tmp_path / "ev.parquet"
    with events_obj(trigger.pid) as obj:
        rb = obj.reader("events")
        rec = Recorder(path, reader=rb, rows_per_group=1000)
        assert not path.exists() and Path(str(path) + ".part").exists()  # no file until it is complete
        kept = []
        with obj.progs.ring_getpid.attach():
            for _ in range(5):
                trigger.run(500)
                batch = rb.drain()
                kept.append(batch.copy())
                rec.write(batch)
        rec.close()
    assert path.exists() and not Path(str(path) + ".part").exists()
    assert (rec.accepted, rec.records, rec.row_groups, rec.complete) == (2500, 2500, 3, True)
    got = replay(path)
    batches = list(got)
    assert [len(b) for b in batches] == [1000, 1000, 500] and all(b.dtype == rb.dtype for b in batches)
    original = np.concatenate(kept)
    assert np.array_equal(np.concatenate(batches), original)  # every field, comm bytes included
    assert (original["seq"] == np.arange(2500)).all() and (original["comm"] == comm_of(trigger.pid)).all()
    assert np.array_equal(got.read(), original)
    assert [len(b) for b in replay(path, batch_size=700)] == [700, 700, 700, 400]
    md = got.metadata
    assert set(md) == set(META)
    assert (md["bpfkit.records"], md["bpfkit.row_groups"], md["bpfkit.rows_per_group"]) == ("2500", "3", "1000")
    assert (md["bpfkit.dropped"], md["bpfkit.lost"], md["bpfkit.complete"], md["bpfkit.drops_counted"]) == \
        ("0", "0", "true", "true")
    assert md["bpfkit.source"] == "events" and md["bpfkit.kernel"] == os.uname().release
    assert int(md["bpfkit.started_ns"]) <= int(md["bpfkit.stopped_ns"])
    shown: list[str] = []
    got._repr_pretty_(type("P", (), {"text": lambda self, t: shown.append(t)})(), False)
    assert shown[0].splitlines()[0] == f"Recording {path}: records 2,500, row groups 3, complete true, dropped 0, " \
        "lost 0, source events"
    assert shown[0].splitlines()[-1] == "  … 2,490 more rows" and "records: <b>2,500</b>" in got._repr_html_()
    # any Parquet reader sees typed columns and text for char[]
    table = pq.read_table(path)
    assert table.column_names == ["pid", "cpu", "seq", "ts", "comm"]
    assert str(table.schema.field("seq").type) == "uint64"
    assert set(table.column("comm").to_pylist()) == {comm_of(trigger.pid).decode()}
    with pytest.raises(ClosedError):
        rec.write(original)


def test_record_reads_until_idle(events_obj: Any, trigger: Trigger, tmp_path: Path) -> None:
    path = tmp_path / "ev.parquet"
    with events_obj(trigger.pid) as obj, obj.progs.ring_getpid.attach(), \
            Recorder(path, reader=obj.reader("events")) as rec:
        trigger.run(3000)
        assert rec.record(idle=0.3) == 3000 and not rec.interrupted
    got = replay(path).read()
    assert (got["seq"] == np.arange(3000)).all() and replay(path).complete is True


def test_count_stops_at_exactly_that_many(events_obj: Any, trigger: Trigger, tmp_path: Path) -> None:
    path = tmp_path / "ev.parquet"
    with events_obj(trigger.pid, ring_bytes=8192) as obj, obj.progs.ring_getpid.attach(), \
            Recorder(path, reader=obj.reader("events"), rows_per_group=64) as rec:
        trigger.run(150)  # 170 fit in the 8 KiB ring
        assert rec.record(count=100) == 100
        trigger.run(300)  # after the recording ended: not its loss
        assert rec.counts["dropped"] == 0 and rec.complete
    assert (replay(path).read()["seq"] == np.arange(100)).all() and replay(path).row_groups == 2


def test_drops_make_the_recording_incomplete(events_obj: Any, trigger: Trigger, tmp_path: Path) -> None:
    path = tmp_path / "ev.parquet"
    with events_obj(trigger.pid, ring_bytes=4096) as obj:
        with obj.progs.ring_getpid.attach(), Recorder(path, reader=obj.reader("events")) as rec:
            trigger.run(1000)  # nobody reads: 85 records fit, 915 reserves fail
            rec.record(idle=0.1)
            assert rec.counts == {"dropped": 915, "lost": 0, "discarded": 0} and rec.complete is False
    got = replay(path)
    assert got.records == 85 and got.counts["dropped"] == 915 and got.complete is False
    assert got.metadata["bpfkit.complete"] == "false"


def test_perf_buffer_losses_are_recorded(events_obj: Any, trigger: Trigger, tmp_path: Path) -> None:
    cpu = sorted(os.sched_getaffinity(0))[0]
    path = tmp_path / "perf.parquet"
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=1)
        with obj.progs.perf_getpid.attach(), Recorder(path, reader=pb) as rec:
            trigger.run(1000, cpu=cpu)  # 73 samples fit in one page
            rec.record(idle=0.2)
            trigger.run(1, cpu=cpu)  # the kernel reports the loss with the next sample that fits
            rec.record(idle=0.2)
    got = replay(path)
    assert got.records == 74 and got.counts["lost"] == 927 and got.complete is False
    assert list(got.read()["seq"]) == list(range(73)) + [1000]


def test_unknown_losses_are_said_so(events_obj: Any, trigger: Trigger, tmp_path: Path) -> None:
    # the plain ring buffer is written with bpf_ringbuf_output and no bpfkit.h counter
    path = tmp_path / "plain.parquet"
    with events_obj(trigger.pid) as obj:
        rb = obj.reader("plain")
        with obj.progs.plain_getpid.attach(), Recorder(path, rb.resolve_dtype("event"), reader=rb) as rec:
            trigger.run(50)
            rec.record(idle=0.1)
            assert rec.complete is None and not rec.drops_counted
    got = replay(path)
    assert got.records == 50 and got.complete is None
    assert got.metadata["bpfkit.complete"] == "unknown" and got.metadata["bpfkit.drops_counted"] == "false"


def test_variable_size_records_need_a_dtype(events_obj: Any, trigger: Trigger, tmp_path: Path) -> None:
    with events_obj(trigger.pid) as obj:
        rb = obj.reader("varevents")
        with pytest.raises(BpfUsageError, match="variable-size"):
            Recorder(tmp_path / "x.parquet", reader=rb)
        path = tmp_path / "var.parquet"
        with obj.progs.var_getpid.attach(), Recorder(path, [("seq", "<u8")], reader=rb) as rec:
            trigger.run(40)
            batch = rb.drain()
            assert isinstance(batch, RawBatch)
            rec.write(batch)  # each record's first 8 bytes
    assert list(replay(path).read()["seq"]) == list(range(40))


def test_bad_arguments_and_files(tmp_path: Path) -> None:
    dt = np.dtype([("a", "<u4")])
    with pytest.raises(BpfUsageError, match="rows_per_group"):
        Recorder(tmp_path / "a.parquet", dt, rows_per_group=0)
    with pytest.raises(BpfUsageError, match="compression"):
        Recorder(tmp_path / "a.parquet", dt, compression="brotli9")
    with Recorder(tmp_path / "a.parquet", dt) as rec:
        with pytest.raises(BpfUsageError, match="8 bytes"):
            rec.write(np.zeros(3, "<u8"))
    # without a reader: losses unknown unless the caller says
    assert replay(tmp_path / "a.parquet").complete is None
    rec = Recorder(tmp_path / "b.parquet", dt)
    rec.write(np.zeros(2, dt))
    rec.close(dropped=0, lost=0)
    assert replay(tmp_path / "b.parquet").complete is True and replay(tmp_path / "b.parquet").records == 2
    with pytest.raises(BpfNotFoundError, match="no recording"):
        replay(tmp_path / "missing.parquet")
    (tmp_path / "half.parquet.part").write_bytes(b"PAR1")
    with pytest.raises(BpfNotFoundError, match="not closed"):
        replay(tmp_path / "half.parquet")
    (tmp_path / "text.parquet").write_text("hello")
    with pytest.raises(ObjectFormatError, match="not a Parquet file"):
        replay(tmp_path / "text.parquet")
    pq.write_table(pq.read_table(tmp_path / "b.parquet").replace_schema_metadata(None), tmp_path / "other.parquet")
    with pytest.raises(ObjectFormatError, match="not a bpfkit recording"):
        replay(tmp_path / "other.parquet")


def _bpfkit(*args: str) -> list[str]:
    return [sys.executable, "-m", "bpfkit.cli", *args]


def test_bpfkit_record_command_count(events_src: Any, tmp_path: Path) -> None:
    out = tmp_path / "cmd.parquet"
    with Trigger() as t:
        proc = subprocess.Popen(_bpfkit("record", "-o", str(out), "-m", "events", "-P", "ring_getpid", "-n", "500", "--json",
                                        "--set", f"target_pid={t.pid}", str(events_src)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            t.run(50)  # until the command has its 500 records; at most ~5000/s, which the ring
            time.sleep(0.01)  # (256 KiB: 5000 records) holds for a second if the command lags
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stdout + stderr
    summary = json.loads(stdout)
    assert summary["records"] == 500 and summary["complete"] is True and summary["dropped"] == 0
    seq = replay(out).read()["seq"]
    assert len(seq) == 500 and (np.diff(seq.astype(np.int64)) == 1).all()  # 500 consecutive events


def test_bpfkit_record_command_until_sigint(events_src: Any, tmp_path: Path) -> None:
    out = tmp_path / "sig.parquet"
    with Trigger() as t:
        proc = subprocess.Popen(_bpfkit("record", "-o", str(out), "-m", "events", "-P", "ring_getpid", "--set",
                                        f"target_pid={t.pid}", str(events_src)),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        part = Path(str(out) + ".part")
        deadline = time.monotonic() + 60
        while not part.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # the programs attach right after the file is created
        for _ in range(4):
            t.run(250)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "1,000 records in 1 row group to" in stderr and stderr.rstrip().endswith("complete")
    got = replay(out)
    assert got.complete is True and list(got.read()["seq"]) == list(range(1000))


def test_bpfkit_record_command_errors(events_src: Any, tmp_path: Path) -> None:
    run = subprocess.run(_bpfkit("record", "-o", str(tmp_path / "x.parquet"), str(events_src)),
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 2 and "name the one to record with -m MAP" in run.stderr
    run = subprocess.run(_bpfkit("record", "-o", str(tmp_path / "x.parquet"), "-m", "calls", "tests/count"),
                         capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 2 and "no ring or perf buffer 'calls'" in run.stderr
    run = subprocess.run(_bpfkit("record", "-o", str(tmp_path / "x.parquet"), "-m", "events", "-P", "nope",
                                 str(events_src)), capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 1 and "no program 'nope'" in run.stderr
    assert not (tmp_path / "x.parquet").exists()
