"""Perf buffer reader against the real kernel: every CPU, wrap-around with records split at the
ring end, kernel-reported losses, raw samples."""
from __future__ import annotations

import os
from typing import Any, Iterator

import numpy as np
import pytest

import bpfkit
from bpfkit import syscall as sc
from bpfkit.maps.perfbuf import PerfBuffer, sample_size

from _event_trigger import EVENTS_SRC, Trigger, comm_of, obj_path, trigger  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")


def load(obj_path: Any, pid: int) -> Any:
    spec = bpfkit.open(obj_path)
    spec.rodata.target_pid = pid
    return spec.load()


def usable_cpus() -> list[int]:
    return sorted(set(sc.online_cpus()) & os.sched_getaffinity(0))


def test_every_cpu_gets_its_events(obj_path: Any, trigger: Trigger) -> None:
    cpus = usable_cpus()
    with load(obj_path, trigger.pid) as obj:
        pb = obj.maps.pevents
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


def test_wraparound_reassembles_split_records(obj_path: Any, trigger: Trigger) -> None:
    # one 4 KiB page per CPU and 56-byte samples: 4096 is not a multiple of 56, so samples are
    # split across the ring end on most laps; 30 000 events = ~400 laps
    cpu = usable_cpus()[0]
    assert 4096 % sample_size(40) != 0
    with load(obj_path, trigger.pid) as obj:
        pb = obj.maps.pevents.open(pages=1)
        got = []
        with obj.progs.perf_getpid.attach():
            for _ in range(500):
                trigger.run(60, cpu=cpu)
                got.append(pb.drain())
        np.testing.assert_array_equal(np.concatenate([b["seq"] for b in got]), np.arange(30_000))
        assert pb.lost == 0 and pb.dropped == 0


def test_slow_consumer_losses_are_counted(obj_path: Any, trigger: Trigger) -> None:
    cpu = usable_cpus()[0]
    with load(obj_path, trigger.pid) as obj:
        pb = obj.maps.pevents.open(pages=1)
        with obj.progs.perf_getpid.attach():
            trigger.run(1000, cpu=cpu)  # nobody reads: (4096 - 1) // 56-byte samples = 73 fit
            first = pb.drain()
            assert len(first) == 73 and pb.dropped == 1000 - 73
            np.testing.assert_array_equal(first["seq"], np.arange(len(first)))
            # the kernel reports the loss with the next sample that fits
            trigger.run(1, cpu=cpu)
            nxt = pb.drain()
        assert list(nxt["seq"]) == [1000]
        assert pb.lost == pb.dropped == 1000 - len(first)
        assert pb.lost_per_cpu[cpu] == pb.lost


def test_raw_samples_without_dtype(obj_path: Any, trigger: Trigger) -> None:
    cpu = usable_cpus()[-1]
    with load(obj_path, trigger.pid) as obj:
        pb = obj.maps.pevents.open(pages=4)
        dt = pb.dtype
        with obj.progs.perf_getpid.attach():
            trigger.run(50, cpu=cpu)
        raw = pb.drain_raw()
        assert len(raw) == 50
        assert set(raw.lengths.tolist()) == {sample_size(40) - 12}  # padded by the kernel
        np.testing.assert_array_equal(raw.view(dt)["seq"], np.arange(50))


def test_close_detaches_rings(obj_path: Any, trigger: Trigger) -> None:
    with load(obj_path, trigger.pid) as obj:
        pb = obj.maps.pevents.open(pages=1)
        fds = pb.poll_fds()
        pb.close()
        for fd in fds:
            with pytest.raises(OSError):
                os.fstat(fd)


def test_read_does_not_stop_on_a_stale_wakeup(obj_path: Any, trigger: Trigger) -> None:
    # perf fds signal once per wakeup; a wakeup whose samples we already drained must not end
    # read(timeout) early: the loop ends only once the producer has been quiet for `timeout`
    n = 40_000
    with load(obj_path, trigger.pid) as obj:
        pb = obj.maps.pevents.open(pages=64)
        with obj.progs.perf_getpid.attach():
            trigger.start(n, cpu=usable_cpus()[-1])
            got = sum(len(b) for b in pb.read(timeout=0.3))
            trigger.done()
        assert got + pb.dropped == n and got == pb.received
        assert not pb.pending()


def test_small_chunks_cut_records(obj_path: Any, trigger: Trigger, monkeypatch: pytest.MonkeyPatch) -> None:
    # decoding in 100-byte chunks cuts samples in two; each must be read whole with the next chunk
    from bpfkit.maps import perfbuf

    monkeypatch.setattr(perfbuf, "CHUNK_BYTES", 100)
    cpu = usable_cpus()[0]
    with load(obj_path, trigger.pid) as obj:
        pb = obj.maps.pevents.open(pages=16)
        with obj.progs.perf_getpid.attach():
            trigger.run(500, cpu=cpu)
            fixed = pb.drain()
            trigger.run(50, cpu=cpu)
            raw = pb.drain_raw()
        np.testing.assert_array_equal(fixed["seq"], np.arange(500))
        np.testing.assert_array_equal(raw.view(pb.dtype)["seq"], np.arange(500, 550))
