"""Ring buffer reader against the real kernel: exact events, wrap-around, drops, discards,
variable-size records, reading while the producer writes."""
from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np
import pytest

import bpfkit
from bpfkit import syscall as sc
from bpfkit.errors import BpfError
from bpfkit.maps.ringbuf import RingBuffer

from _event_trigger import EVENTS_SRC, Trigger, comm_of, obj_path, trigger  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")


def load(obj_path: Any, pid: int, ring_bytes: int = 0, **rodata: int) -> Any:
    spec = bpfkit.open(obj_path)
    spec.rodata.target_pid = pid
    for k, v in rodata.items():
        setattr(spec.rodata, k, v)
    if ring_bytes:
        spec.maps.events.max_entries = ring_bytes
    return spec.load()


def test_exact_events_and_fields(obj_path: Any, trigger: Trigger) -> None:
    cpu = sorted(set(sc.online_cpus()) & os.sched_getaffinity(0))[-1]
    with load(obj_path, trigger.pid) as obj:
        rb = obj.maps.events
        assert isinstance(rb, RingBuffer) and rb.has_drop_counter
        assert rb.dtype is not None and rb.dtype["comm"] == np.dtype("S16")
        with obj.progs.ring_getpid.attach():
            trigger.run(1000, cpu=cpu)
        batch = rb.drain()
        assert isinstance(batch, np.ndarray) and len(batch) == 1000
        np.testing.assert_array_equal(batch["seq"], np.arange(1000))
        assert (batch["pid"] == trigger.pid).all()
        assert (batch["comm"] == comm_of(trigger.pid)).all()  # S16 stays bytes until asked
        assert (np.diff(batch["ts"].astype(np.int64)) >= 0).all()
        assert (batch["cpu"] == cpu).all()
        assert rb.stats() == {"received": 1000, "discarded": 0, "dropped": 0}
        assert len(rb.drain()) == 0 and rb.available == 0


def test_wraparound_many_times_the_buffer(obj_path: Any, trigger: Trigger) -> None:
    # 8 KiB ring, 48-byte records: 170 per lap, and records straddle the physical end, which the
    # kernel's double mapping must hide. 60 000 events = ~350 laps, read in bursts of 150.
    with load(obj_path, trigger.pid, ring_bytes=8192) as obj:
        rb = obj.maps.events
        got = []
        with obj.progs.ring_getpid.attach():
            for _ in range(400):
                trigger.run(150)
                got.append(rb.drain())
        seqs = np.concatenate([b["seq"] for b in got])
        np.testing.assert_array_equal(seqs, np.arange(60_000))
        assert rb.dropped == 0 and rb.received == 60_000


def test_slow_consumer_counts_drops(obj_path: Any, trigger: Trigger) -> None:
    with load(obj_path, trigger.pid, ring_bytes=4096) as obj:
        rb = obj.maps.events
        with obj.progs.ring_getpid.attach():
            trigger.run(1000)  # nobody reads: 4096 // (40 + 8-byte header) = 85 records fit
            batch = rb.drain()
            assert len(batch) == 85 and rb.dropped == 1000 - 85
            # the first records were kept, each drop still consumed a sequence number
            np.testing.assert_array_equal(batch["seq"], np.arange(len(batch)))
            trigger.run(10)
            more = rb.drain()
        np.testing.assert_array_equal(more["seq"], np.arange(1000, 1010))
        assert rb.stats()["received"] + rb.stats()["dropped"] == 1010


def test_discarded_records_are_skipped(obj_path: Any, trigger: Trigger) -> None:
    with load(obj_path, trigger.pid, discard_every=3) as obj:
        rb = obj.maps.events
        with obj.progs.ring_getpid.attach():
            trigger.run(999)
            batch = rb.drain()
            trigger.run(30)
            raw = rb.drain_raw()  # the variable-size path skips them too
        seq = np.arange(999)
        np.testing.assert_array_equal(batch["seq"], seq[seq % 3 != 0])
        assert len(raw) == 20
        np.testing.assert_array_equal(raw.view(rb.dtype)["seq"], [s for s in range(999, 1029) if s % 3])
        assert rb.discarded == 333 + 10 and rb.received == 666 + 20 and rb.dropped == 0


def test_variable_size_records(obj_path: Any, trigger: Trigger) -> None:
    with load(obj_path, trigger.pid) as obj:
        vb = obj.maps.varevents
        assert vb.dtype is None and vb.has_drop_counter
        with obj.progs.var_getpid.attach():
            trigger.run(400)
        batch = vb.drain()
        assert len(batch) == 400
        seq = np.arange(400)
        np.testing.assert_array_equal(batch.lengths, 8 * (1 + seq % 4))
        for s, rec in enumerate(batch):
            assert rec == np.full(1 + s % 4, s, dtype="<u8").tobytes()
        np.testing.assert_array_equal(batch.view(np.dtype("<u8")), seq)
        assert batch[3] == np.full(4, 3, dtype="<u8").tobytes()


def test_wrong_dtype_raises_and_loses_nothing(obj_path: Any, trigger: Trigger) -> None:
    with load(obj_path, trigger.pid) as obj:
        rb = obj.maps.events
        with obj.progs.ring_getpid.attach():
            trigger.run(5)
        with pytest.raises(BpfError, match="drain_raw"):
            rb.drain(np.dtype("<u8"))
        np.testing.assert_array_equal(rb.drain()["seq"], np.arange(5))


def test_max_records(obj_path: Any, trigger: Trigger) -> None:
    with load(obj_path, trigger.pid) as obj:
        rb = obj.maps.events
        with obj.progs.ring_getpid.attach():
            trigger.run(100)
        parts = [rb.drain(max_records=30) for _ in range(4)]
        assert [len(p) for p in parts] == [30, 30, 30, 10]
        np.testing.assert_array_equal(np.concatenate([p["seq"] for p in parts]), np.arange(100))


def test_batches_are_copies_not_views_of_the_ring(obj_path: Any, trigger: Trigger) -> None:
    # a one-record batch must not alias the mapping: the producer reuses that space after commit
    with load(obj_path, trigger.pid, ring_bytes=4096) as obj:
        rb = obj.maps.events
        kept = []
        with obj.progs.ring_getpid.attach():
            for _ in range(300):  # ~3.5 laps of one-record batches
                trigger.run(1)
                kept.append(rb.drain())
        np.testing.assert_array_equal(np.concatenate([b["seq"] for b in kept]), np.arange(300))


def test_reading_while_the_producer_writes(obj_path: Any, trigger: Trigger) -> None:
    # The child runs free while we drain: every record we get is complete and in order, and
    # whatever we did not get is counted as dropped.
    n = 300_000
    with load(obj_path, trigger.pid, ring_bytes=64 * 1024) as obj:
        rb = obj.maps.events
        got = []
        with obj.progs.ring_getpid.attach():
            trigger.start(n)
            while True:
                if rb.wait(0.05):
                    got.append(rb.drain())
                elif rb.received + rb.dropped >= n:
                    break
            trigger.done()
        seqs = np.concatenate([b["seq"] for b in got])
        assert len(seqs) == rb.received and rb.received + rb.dropped == n
        assert (np.diff(seqs.astype(np.int64)) > 0).all() and seqs[-1] < n
        assert (np.concatenate([b["pid"] for b in got]) == trigger.pid).all()


def test_small_chunks(obj_path: Any, trigger: Trigger, monkeypatch: pytest.MonkeyPatch) -> None:
    from bpfkit.maps import ringbuf

    monkeypatch.setattr(ringbuf, "CHUNK_BYTES", 100)  # two records per commit
    with load(obj_path, trigger.pid, discard_every=5) as obj:
        rb = obj.maps.events
        with obj.progs.ring_getpid.attach():
            trigger.run(500)
        seq = np.arange(500)
        np.testing.assert_array_equal(rb.drain()["seq"], seq[seq % 5 != 0])
