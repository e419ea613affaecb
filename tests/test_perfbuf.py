"""Perf buffer reader against the real kernel: every CPU, wrap-around with records split at the
ring end, kernel-reported losses, raw samples."""
from __future__ import annotations

import os
import re
import resource
import select
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bpfkit import _sys as sc
from bpfkit.errors import BpfError, BpfUsageError
from bpfkit.events import PerfBuffer, RawBatch
from bpfkit.events.perf_decode import sample_size

from _event_trigger import Trigger, comm_of, ctrl_c_after_commits, drain_through_interrupts

pytestmark = pytest.mark.root


def usable_cpus() -> list[int]:
    return sorted(set(sc.online_cpus()) & os.sched_getaffinity(0))


def perf_fds() -> set[int]:
    """This process's open perf event fds."""
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[perf_event]":
                out.add(int(fd))
        except OSError:
            pass
    return out


def test_every_cpu_gets_its_events(events_obj: Any, trigger: Trigger) -> None:
    cpus = usable_cpus()
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents")
        assert isinstance(pb, PerfBuffer) and pb.has_drop_counter
        pb.open(pages=16)
        assert set(cpus) <= set(pb.cpus)
        with obj.progs.perf_getpid.attach():
            seq = 0
            for cpu in cpus:
                trigger.run(300, cpu=cpu)
                per = pb.drain_per_cpu()
                for other, b in per.items():
                    assert len(b) == (300 if other == cpu else 0), (cpu, other)
                b = per[cpu]
                assert (b["cpu"] == cpu).all()
                np.testing.assert_array_equal(b["seq"], np.arange(seq, seq + 300))
                assert (b["pid"] == trigger.pid).all() and (b["comm"] == comm_of(trigger.pid)).all()
                assert pb.received_per_cpu[cpu] == 300
                seq += 300
        assert pb.stats() == {"received": 300 * len(cpus), "lost": 0, "dropped": 0}


def test_wraparound_reassembles_split_records(events_obj: Any, trigger: Trigger) -> None:
    # one 4 KiB page per CPU and 56-byte samples: 4096 is not a multiple of 56, so samples are
    # split across the ring end on most laps; 30 000 events = ~400 laps
    cpu = usable_cpus()[0]
    assert 4096 % sample_size(40) != 0
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=1)
        got = []
        with obj.progs.perf_getpid.attach():
            for _ in range(500):
                trigger.run(60, cpu=cpu)
                got.append(pb.drain())
        np.testing.assert_array_equal(np.concatenate([b["seq"] for b in got]), np.arange(30_000))
        assert pb.lost == 0 and pb.dropped == 0


def test_slow_consumer_losses_are_counted_once(events_obj: Any, trigger: Trigger) -> None:
    # A full ring: the kernel counts the loss (lost); bpf_perf_event_output also fails with
    # -ENOSPC, which BPFKIT_PERF_OUTPUT must not count again as dropped. Every event is counted
    # exactly once: received + lost + dropped == produced, at any moment, without waiting for the
    # kernel's PERF_RECORD_LOST (written only when a later sample fits).
    cpu = usable_cpus()[0]
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=1)
        with obj.progs.perf_getpid.attach():
            trigger.run(1000, cpu=cpu)  # nobody reads: (4096 - 1) // 56-byte samples = 73 fit
            first = pb.drain()
            assert len(first) == 73
            np.testing.assert_array_equal(first["seq"], np.arange(len(first)))
            assert (pb.received, pb.lost, pb.dropped) == (73, 1000 - 73, 0)
            # the kernel's PERF_RECORD_LOST comes with the next sample that fits: not counted again
            trigger.run(1, cpu=cpu)
            nxt = pb.drain()
        assert list(nxt["seq"]) == [1000]
        assert pb.stats() == {"received": 74, "lost": 1000 - 73, "dropped": 0}
        assert pb.lost_per_cpu[cpu] == pb.lost
        lost = pb.lost
    assert pb.lost == lost  # still readable after close


def test_output_without_a_reader_is_dropped_not_lost(events_obj: Any, trigger: Trigger) -> None:
    # a CPU with no ring in the map slot: bpf_perf_event_output fails with -ENOENT; the kernel
    # counts nothing, BPFKIT_PERF_OUTPUT counts it as dropped
    cpus = usable_cpus()
    if len(cpus) < 2:
        pytest.skip("needs two usable CPUs (one with a reader, one without)")
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=4, cpus=[cpus[0]])
        with obj.progs.perf_getpid.attach():
            trigger.run(7, cpu=cpus[1])
            trigger.run(3, cpu=cpus[0])
        assert list(pb.drain()["seq"]) == [7, 8, 9]
        assert pb.stats() == {"received": 3, "lost": 0, "dropped": 7}


def test_raw_samples_without_dtype(events_obj: Any, trigger: Trigger) -> None:
    cpu = usable_cpus()[-1]
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=4)
        dt = pb.dtype
        with obj.progs.perf_getpid.attach():
            trigger.run(50, cpu=cpu)
        raw = pb.drain_raw()
        assert len(raw) == 50
        assert set(raw.lengths.tolist()) == {sample_size(40) - 12}  # padded by the kernel
        np.testing.assert_array_equal(raw.view(dt)["seq"], np.arange(50))


def test_close_detaches_rings(events_obj: Any, trigger: Trigger) -> None:
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=1)
        fds = pb.poll_fds()
        pb.close()
        for fd in fds:
            with pytest.raises(OSError):
                os.fstat(fd)


def test_read_does_not_stop_on_a_stale_wakeup(events_obj: Any, trigger: Trigger) -> None:
    # perf fds signal once per wakeup; a wakeup whose samples we already drained must not end
    # read(timeout) early: the loop ends only once the producer has been quiet for `timeout`
    n = 40_000
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=64)
        with obj.progs.perf_getpid.attach():
            trigger.start(n, cpu=usable_cpus()[-1])
            got = sum(len(b) for b in pb.read(timeout=0.3))
            trigger.done()
        assert got + pb.lost + pb.dropped == n and got == pb.received
        assert not pb.pending()


def test_small_chunks_cut_records(events_obj: Any, trigger: Trigger, monkeypatch: pytest.MonkeyPatch) -> None:
    # decoding in 100-byte chunks cuts samples in two; each must be read whole with the next chunk
    cpu = usable_cpus()[0]
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=16)
        pb.chunk_bytes = 100
        with obj.progs.perf_getpid.attach():
            trigger.run(500, cpu=cpu)
            fixed = pb.drain()
            trigger.run(50, cpu=cpu)
            raw = pb.drain_raw()
        np.testing.assert_array_equal(fixed["seq"], np.arange(500))
        np.testing.assert_array_equal(raw.view(pb.dtype)["seq"], np.arange(500, 550))


def test_open_again_with_other_settings_raises(events_obj: Any, trigger: Trigger) -> None:
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=4)
        assert pb.open() is pb and pb.open(pages=4, wakeup_events=0) is pb  # the same: nothing to do
        with pytest.raises(BpfUsageError, match=r"already open.*pages=1 \(open with 4\).*wakeup_events=1"):
            pb.open(pages=1, wakeup_events=1)
        assert pb.open(watermark=4096) is pb  # what the default watermark of 4 pages is
        with pytest.raises(BpfUsageError, match="watermark=8192"):
            pb.open(watermark=8192)
        with pytest.raises(BpfUsageError, match="cpus"):
            pb.open(cpus=pb.cpus[:1] if len(pb.cpus) > 1 else [])
        pb.open(flush_interval=0.01)  # a reader-side setting: may change any time
        assert pb.pages == 4 and pb.wakeup_events == 0 and pb.max_latency() == 0.01
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents")
        assert not pb.pending()  # opens the rings with the defaults
        assert pb.pages == 64 and pb.cpus == sc.online_cpus()
        with pytest.raises(BpfUsageError, match="before poll_fds"):
            pb.open(pages=8)


def test_open_refuses_bad_pages_and_cpus(events_obj: Any, trigger: Trigger) -> None:
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents")
        before = perf_fds()
        for pages in (0, -4, 3, 6, 100):
            with pytest.raises(BpfUsageError, match=f"pages={pages} must be a power of two"):
                pb.open(pages=pages)
        slots = sc.map_info(pb.fd).max_entries
        with pytest.raises(BpfUsageError, match=f"has {slots} slots .*cannot hold CPU {slots}"):
            pb.open(cpus=[0, slots])
        assert pb.cpus == [] and perf_fds() == before
        cpu = usable_cpus()[0]
        pb.open(pages=1, cpus=[cpu])
        with obj.progs.perf_getpid.attach():
            trigger.run(3, cpu=cpu)
        assert list(pb.drain()["seq"]) == [0, 1, 2]


def test_mmap_failure_closes_what_was_opened(events_obj: Any, trigger: Trigger) -> None:
    # a real mmap failure: an address-space limit with room for one 16 MiB ring (none on one CPU)
    cpus = usable_cpus()[:2]
    pages = 4096
    ring = (pages + 1) * 4096
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents")
        before = perf_fds()
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        vm = int(re.search(r"VmSize:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (vm + ring * (len(cpus) - 1) + ring // 2, hard))
        try:
            with pytest.raises(BpfError, match=f"mmap of {pages} perf pages for 'pevents' on CPU {cpus[-1]}"):
                pb.open(pages=pages, cpus=cpus)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        assert pb.cpus == [] and perf_fds() == before  # the first CPU's ring was closed too
        with obj.progs.perf_getpid.attach():
            trigger.run(4, cpu=cpus[0])  # no reader left in the map slot: the outputs fail, counted
            assert pb.dropped == 4
            pb.open(pages=1, cpus=cpus)
            trigger.run(2, cpu=cpus[0])
        assert list(pb.drain()["seq"]) == [4, 5]


def test_wakeup_per_sample_mode(events_obj: Any, trigger: Trigger) -> None:
    cpu = usable_cpus()[0]
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=4, wakeup_events=1)
        assert pb.max_latency() is None  # a Poller relies on wakeups alone
        fd = pb.poll_fds()[pb.cpus.index(cpu)]
        with obj.progs.perf_getpid.attach():
            for seq in range(3):
                trigger.run(1, cpu=cpu)
                assert select.select(pb.poll_fds(), [], [], 2.0)[0] == [fd]  # woken by one sample
                assert list(pb.drain()["seq"]) == [seq]
            t0 = time.monotonic()
            trigger.start(1, cpu=cpu)
            assert pb.wait(5.0)
            trigger.done()
            assert time.monotonic() - t0 < 1.0 and list(pb.drain()["seq"]) == [3]
    with events_obj(trigger.pid) as obj:
        # the default, batched wakeups: one sample does not wake the fd (the watermark is a quarter
        # of the ring); wait() still sees it within flush_interval, by looking
        pb = obj.reader("pevents").open(pages=4, flush_interval=0.02)
        assert pb.max_latency() == 0.02
        with obj.progs.perf_getpid.attach():
            trigger.run(1, cpu=cpu)
            assert select.select(pb.poll_fds(), [], [], 0.2)[0] == []
            assert pb.wait(1.0) and list(pb.drain()["seq"]) == [0]


def test_ctrl_c_right_after_a_commit_loses_nothing(events_obj: Any, trigger: Trigger,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    cpus = usable_cpus()[:2]
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=256)
        pb.chunk_bytes = 56 * 100  # 100 samples per update of data_tail
        with obj.progs.perf_getpid.attach():
            for cpu in cpus:
                trigger.run(5000, cpu=cpu)
        ctrl_c_after_commits(monkeypatch, pb, at={1, 2, 30, 51, 52, 70})
        got, interrupts = drain_through_interrupts(pb)
        n = 5000 * len(cpus)
        assert interrupts == (6 if len(cpus) > 1 else 4)
        np.testing.assert_array_equal(np.concatenate([b["seq"] for b in got]), np.arange(n))
        assert pb.received == n and [pb.received_per_cpu[c] for c in cpus] == [5000] * len(cpus)


def test_sample_smaller_than_dtype_raises_and_stays(events_obj: Any, trigger: Trigger) -> None:
    cpu = usable_cpus()[0]
    with events_obj(trigger.pid) as obj:
        pb = obj.reader("pevents").open(pages=4)
        with obj.progs.perf_getpid.attach():
            trigger.run(3, cpu=cpu)
        big = np.dtype([("x", "u1", 100)])
        with pytest.raises(BpfUsageError, match="sample of 44 bytes is smaller than the 100-byte"):
            pb.drain(big)
        np.testing.assert_array_equal(pb.drain()["seq"], [0, 1, 2])


def test_plain_perf_buffer_without_dtype(events_obj: Any, trigger: Trigger) -> None:
    # declared without BPFKIT_PERFBUF: samples of struct event (named in the BTF) come as arrays
    # of it; u64[3] samples (no such type) as a RawBatch of one size (the kernel pads 24 bytes
    # of data to 28), cut out as one block
    cpu = usable_cpus()[0]
    with events_obj(trigger.pid) as obj:
        typed = obj.reader("plainperf").open(pages=16)
        raw = obj.reader("plainperf24").open(pages=16)
        assert typed.dtype is None and raw.dtype is None
        with obj.progs.plainperf_getpid.attach():
            trigger.run(500, cpu=cpu)
            a = typed.drain()
            b = raw.drain()
        assert typed.record_type == "struct event" and a.dtype == obj.reader("events").dtype
        np.testing.assert_array_equal(a["seq"], np.arange(500))
        assert (a["pid"] == trigger.pid).all() and (a["comm"] == comm_of(trigger.pid)).all()
        assert raw.record_type is None and isinstance(b, RawBatch) and len(b) == 500 and b.size == 28
        v = b.view(np.dtype([("seq", "<u8"), ("pid", "<u8"), ("inv", "<u8")]))
        np.testing.assert_array_equal(v["seq"], np.arange(500))
        assert (v["inv"] == ~v["seq"]).all() and (v["pid"] == trigger.pid).all()
        assert typed.received == raw.received == 500
