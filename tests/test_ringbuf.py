"""Ring buffer reader against the real kernel: exact events, wrap-around, drops, discards,
variable-size records, reading while the producer writes."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest

from bpfkit import _sys as sc
from bpfkit.errors import BpfError, BpfUsageError
from bpfkit.events import RingBuffer

from _event_trigger import Trigger, comm_of, ctrl_c_after_commits, drain_through_interrupts

pytestmark = pytest.mark.root


def test_exact_events_and_fields(events_obj: Any, trigger: Trigger) -> None:
    cpu = sorted(set(sc.online_cpus()) & os.sched_getaffinity(0))[-1]
    with events_obj(trigger.pid) as obj:
        rb = obj.reader("events")
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


def test_wraparound_many_times_the_buffer(events_obj: Any, trigger: Trigger) -> None:
    # 8 KiB ring, 48-byte records: 170 per lap, and records straddle the physical end, which the
    # kernel's double mapping must hide. 60 000 events = ~350 laps, read in bursts of 150.
    with events_obj(trigger.pid, ring_bytes=8192) as obj:
        rb = obj.reader("events")
        got = []
        with obj.progs.ring_getpid.attach():
            for _ in range(400):
                trigger.run(150)
                got.append(rb.drain())
        seqs = np.concatenate([b["seq"] for b in got])
        np.testing.assert_array_equal(seqs, np.arange(60_000))
        assert rb.dropped == 0 and rb.received == 60_000


def test_slow_consumer_counts_drops(events_obj: Any, trigger: Trigger) -> None:
    with events_obj(trigger.pid, ring_bytes=4096) as obj:
        rb = obj.reader("events")
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


def test_discarded_records_are_skipped(events_obj: Any, trigger: Trigger) -> None:
    with events_obj(trigger.pid, discard_every=3) as obj:
        rb = obj.reader("events")
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


def test_variable_size_records(events_obj: Any, trigger: Trigger) -> None:
    with events_obj(trigger.pid) as obj:
        vb = obj.reader("varevents")
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


def test_wrong_dtype_raises_and_loses_nothing(events_obj: Any, trigger: Trigger) -> None:
    with events_obj(trigger.pid) as obj:
        rb = obj.reader("events")
        with obj.progs.ring_getpid.attach():
            trigger.run(5)
        with pytest.raises(BpfError, match="drain_raw"):
            rb.drain(np.dtype("<u8"))
        np.testing.assert_array_equal(rb.drain()["seq"], np.arange(5))


def test_max_records(events_obj: Any, trigger: Trigger) -> None:
    with events_obj(trigger.pid) as obj:
        rb = obj.reader("events")
        with obj.progs.ring_getpid.attach():
            trigger.run(100)
        parts = [rb.drain(max_records=30) for _ in range(4)]
        assert [len(p) for p in parts] == [30, 30, 30, 10]
        np.testing.assert_array_equal(np.concatenate([p["seq"] for p in parts]), np.arange(100))


def test_batches_are_copies_not_views_of_the_ring(events_obj: Any, trigger: Trigger) -> None:
    # a one-record batch must not alias the mapping: the producer reuses that space after commit
    with events_obj(trigger.pid, ring_bytes=4096) as obj:
        rb = obj.reader("events")
        kept = []
        with obj.progs.ring_getpid.attach():
            for _ in range(300):  # ~3.5 laps of one-record batches
                trigger.run(1)
                kept.append(rb.drain())
        np.testing.assert_array_equal(np.concatenate([b["seq"] for b in kept]), np.arange(300))


def test_reading_while_the_producer_writes(events_obj: Any, trigger: Trigger) -> None:
    # The child runs free while we drain: every record we get is complete and in order, and
    # whatever we did not get is counted as dropped.
    n = 300_000
    with events_obj(trigger.pid, ring_bytes=64 * 1024) as obj:
        rb = obj.reader("events")
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


def test_small_chunks(events_obj: Any, trigger: Trigger, monkeypatch: pytest.MonkeyPatch) -> None:
    with events_obj(trigger.pid, discard_every=5) as obj:
        rb = obj.reader("events")
        rb.chunk_bytes = 100  # two records per commit
        with obj.progs.ring_getpid.attach():
            trigger.run(500)
        seq = np.arange(500)
        np.testing.assert_array_equal(rb.drain()["seq"], seq[seq % 5 != 0])


def test_ctrl_c_right_after_a_commit_loses_nothing(events_obj: Any, trigger: Trigger,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Ctrl-C under load lands in drain(): after a commit the producer owns that space again, so the
    # records copied out must survive the interrupt and come from the next drain, exactly once
    n = 10_000
    with events_obj(trigger.pid, ring_bytes=1 << 20, discard_every=7) as obj:
        rb = obj.reader("events")
        rb.chunk_bytes = 48 * 100  # 100 records per commit
        with obj.progs.ring_getpid.attach():
            trigger.run(n)
        commits = ctrl_c_after_commits(monkeypatch, rb, at={1, 3, 4, 10, 40, 41, 80})
        got, interrupts = drain_through_interrupts(rb)
        assert interrupts == 7 and commits[0] > 80
        seq = np.arange(n)
        np.testing.assert_array_equal(np.concatenate([b["seq"] for b in got]), seq[seq % 7 != 0])
        assert rb.stats() == {"received": len(seq[seq % 7 != 0]), "discarded": len(seq[seq % 7 == 0]),
                              "dropped": 0}


@pytest.mark.parametrize("how", ["iterate", "read", "run", "aiter", "poll"])
def test_ctrl_c_during_a_drain_ends_the_loop_cleanly(events_obj: Any, trigger: Trigger,
                                                     monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    n = 5000
    with events_obj(trigger.pid, ring_bytes=1 << 20) as obj:
        rb = obj.reader("events")
        rb.chunk_bytes = 48 * 100
        with obj.progs.ring_getpid.attach():
            trigger.run(n)
        ctrl_c_after_commits(monkeypatch, rb, at={5})  # 500 records copied, their space handed back
        got: list[np.ndarray] = []
        try:
            if how == "iterate":
                for batch in rb:  # would wait forever once empty: only Ctrl-C ends it
                    got.append(batch)
            elif how == "read":
                got.extend(rb.read(timeout=5.0))
            elif how == "run":
                assert rb.run(got.append) == 0
            elif how == "aiter":
                async def consume() -> None:
                    async for batch in rb.aiter(timeout=5.0):
                        got.append(batch)

                asyncio.run(consume())
            else:
                with pytest.raises(KeyboardInterrupt):  # poll() is a plain call: it lets Ctrl-C through
                    rb.poll(0.0)
        except KeyboardInterrupt:
            pytest.fail(f"KeyboardInterrupt escaped from {how}")
        assert got == [] and rb.received == 0
        assert rb.interrupted == (how != "poll")
        rest = rb.drain()
        np.testing.assert_array_equal(rest["seq"], np.arange(n))
        assert rb.received == n and rb.available == 0


PRESS_CTRL_C = """
import os, random, sys, time
pid = int(sys.argv[1])
for _ in range(int(sys.argv[2])):
    os.kill(pid, 2)
    time.sleep(random.uniform(0.0005, 0.003))
"""


def test_real_ctrl_c_while_draining_a_backlog(events_obj: Any, trigger: Trigger,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # 300 SIGINTs 0.5-3 ms apart while 100 000 records are read: wherever each lands (in a drain,
    # between batches, in this loop), every record is received exactly once
    n = 100_000
    got: list[np.ndarray] = []
    ended_by_ctrl_c = 0

    def despite_ctrl_c(fn: Any) -> None:
        # a signal can also land on a loop's own jump, outside its try: start again
        for _ in range(1000):
            try:
                fn()
                return
            except KeyboardInterrupt:
                pass

    with events_obj(trigger.pid, ring_bytes=8 << 20) as obj:
        rb = obj.reader("events")
        rb.chunk_bytes = 48 * 200  # many commits: many places to land
        with obj.progs.ring_getpid.attach():
            trigger.run(n)

        def read_all() -> None:
            nonlocal ended_by_ctrl_c
            while rb.received < n and time.monotonic() < deadline:
                try:
                    for batch in rb.read(timeout=0):
                        got.append(batch)
                    ended_by_ctrl_c += rb.interrupted
                except KeyboardInterrupt:
                    pass  # landed in this loop, between reads: nothing of bpfkit's was in flight

        # a separate process presses Ctrl-C: no thread of ours to stop while interrupts fly
        presser = subprocess.Popen([sys.executable, "-c", PRESS_CTRL_C, str(os.getpid()), "300"])
        try:
            try:
                time.sleep(10)  # until the first press: the presser is running
            except KeyboardInterrupt:
                pass
            deadline = time.monotonic() + 30
            despite_ctrl_c(read_all)
        finally:
            despite_ctrl_c(presser.kill)
            despite_ctrl_c(presser.wait)
            for _ in range(3):  # a signal sent just before the kill lands here, not in the asserts
                despite_ctrl_c(lambda: time.sleep(0.01))
        got.append(rb.drain())
        assert ended_by_ctrl_c > 0
        np.testing.assert_array_equal(np.concatenate([b["seq"] for b in got]), np.arange(n))
        assert rb.received == n and rb.dropped == 0


def test_record_size_changing_mid_drain(events_obj: Any, trigger: Trigger) -> None:
    # varevents holds records of 8, 16, 24, 32, 8, ... bytes. Read as 8-byte records: the first
    # drain hands over what precedes the first odd-sized record, the next one raises and the
    # record stays in the ring for a drain with the right size or drain_raw().
    with events_obj(trigger.pid) as obj:
        vb = obj.reader("varevents")
        with obj.progs.var_getpid.attach():
            trigger.run(8)
        u8 = np.dtype("<u8")
        np.testing.assert_array_equal(vb.drain(u8), [0])
        for _ in range(2):  # and again: nothing was consumed by the failed drain
            with pytest.raises(BpfUsageError, match="record of 16 bytes.*8-byte.*drain_raw"):
                vb.drain(u8)
        assert vb.drain_raw(max_records=1)[0] == np.full(2, 1, "<u8").tobytes()
        np.testing.assert_array_equal(vb.drain(np.dtype([("s", "<u8", 3)]))["s"], [[2, 2, 2]])
        with pytest.raises(BpfUsageError, match="32 bytes"):
            vb.drain(u8)
        rest = vb.drain_raw()
        np.testing.assert_array_equal(rest.view(u8), [3, 4, 5, 6, 7])
        assert vb.received == 8 and vb.available == 0


def test_plain_libbpf_ringbuf_dtype_by_c_name(events_obj: Any, trigger: Trigger) -> None:
    # `plain` is declared without BPFKIT_RINGBUF: no record type, so records come raw unless the
    # reader names the C struct, resolved from the object's BTF
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("plain")
        assert pb.dtype is None
        assert pb._btf is obj.btf  # bound by obj.reader()
        with obj.progs.plain_getpid.attach():
            trigger.run(6)
        a = pb.drain(dtype="event", max_records=2)
        assert a.dtype == obj.reader("events").dtype and a.dtype.names == ("pid", "cpu", "seq", "ts", "comm")
        b = pb.poll(0.0, dtype="struct event")
        c = list(pb.read(timeout=0.0, dtype="event"))
        assert (c == []) and len(b) == 4
        np.testing.assert_array_equal(np.concatenate([a["seq"], b["seq"]]), np.arange(6))
        assert (b["pid"] == trigger.pid).all() and (b["comm"] == comm_of(trigger.pid)).all()
        with pytest.raises(BpfUsageError, match="no_such_struct.*neither a numpy dtype"):
            pb.drain(dtype="no_such_struct")
        assert pb.resolve_dtype("u8") == np.dtype("u8")  # numpy's name wins; "struct x" forces C
        with RingBuffer(obj.maps.plain) as bare, pytest.raises(BpfUsageError, match="BTF"):
            bare.drain(dtype="event")  # a reader made without the object's BTF knows no C names
