"""Waiting on event buffers: one Poller over a ring and a perf buffer, iterator / callback /
asyncio APIs, Ctrl-C, and batch conversion helpers."""
from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bpfkit
from bpfkit.events import Poller, RawBatch, decode_strings, to_dicts, to_pandas
from bpfkit import _sys as sc
from bpfkit.errors import BpfError

from _event_trigger import Trigger, comm_of, ctrl_c_after_commits

pytestmark = pytest.mark.root


@pytest.fixture
def obj(events_obj: Any, trigger: Trigger) -> Any:
    o = events_obj(trigger.pid)
    o.reader("pevents").open(pages=64)
    return o


def test_one_poller_over_ring_and_perf(obj: Any, trigger: Trigger) -> None:
    rb, pb = obj.reader("events"), obj.reader("pevents")
    with obj.progs.ring_getpid.attach(), obj.progs.perf_getpid.attach():
        trigger.run(500)
        with Poller(rb, pb) as p:
            assert p.wait(1.0)
            seen: dict[str, list[np.ndarray]] = {"events": [], "pevents": []}
            for buf, batch in p.read(timeout=0.1):
                seen[buf.name].append(batch)
    for name in seen:
        np.testing.assert_array_equal(np.concatenate(seen[name])["seq"], np.arange(500))


def test_iterator_api_on_the_buffer(obj: Any, trigger: Trigger) -> None:
    rb = obj.reader("events")
    with obj.progs.ring_getpid.attach():
        trigger.start(2000)
        total = 0
        for batch in rb:  # blocks for data, never ends by itself
            total += len(batch)
            if total >= 2000:
                break
        trigger.done()
    assert total == 2000 and rb.received == 2000


def test_callback_api(obj: Any, trigger: Trigger) -> None:
    rb, pb = obj.reader("events"), obj.reader("pevents")
    seqs: list[int] = []
    pseqs: list[int] = []
    with obj.progs.ring_getpid.attach(), obj.progs.perf_getpid.attach():
        trigger.run(300)
        p = Poller()
        p.add(rb, lambda b: seqs.extend(b["seq"].tolist()))
        p.add(pb, lambda b: pseqs.extend(b["seq"].tolist()))
        assert p.run(timeout=0.1) == 600
        # duration bounds the run even with nothing arriving
        t0 = time.monotonic()
        assert p.run(duration=0.2) == 0
        assert 0.15 < time.monotonic() - t0 < 2.0
        p.close()
        assert rb.run(lambda b: None, timeout=0.05) == 0
    assert seqs == list(range(300)) and pseqs == list(range(300))


def test_asyncio_api(obj: Any, trigger: Trigger) -> None:
    rb, pb = obj.reader("events"), obj.reader("pevents")

    async def consume() -> tuple[int, int]:
        got = 0
        async for batch in rb:
            got += len(batch)
            if got >= 1000:
                break
        pgot = 0
        async for _buf, batch in Poller(pb).aiter(timeout=0.2):
            pgot += len(batch)
        return got, pgot

    async def main() -> tuple[int, int]:
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.05)  # the consumer is now waiting on the event loop
        await asyncio.get_running_loop().run_in_executor(None, trigger.run, 1000)
        return await asyncio.wait_for(task, 10)

    with obj.progs.ring_getpid.attach(), obj.progs.perf_getpid.attach():
        assert asyncio.run(main()) == (1000, 1000)


def test_ctrl_c_while_waiting_exits_cleanly(events_src: Any, tmp_path: Path) -> None:
    script = tmp_path / "consumer.py"
    script.write_text(textwrap.dedent(f"""
        import signal, sys, bpfkit
        # Ctrl-C as a terminal gives it, also when the suite runs as a background job (which
        # starts children with SIGINT ignored)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        spec = bpfkit.open({str(events_src)!r})
        spec.rodata.target_pid = 1  # nothing will arrive
        with spec.load() as obj:
            rb = obj.reader("events")
            print("waiting", flush=True)
            n = sum(len(b) for b in rb)
            print("stopped", n, rb._poller.interrupted, flush=True)
            obj.reader("pevents").open(pages=1)
            n = obj.reader("pevents").run(lambda b: None)
            print("run returned", n, flush=True)
        print("closed", flush=True)
    """))
    env = dict(os.environ, PYTHONPATH=str(Path(bpfkit.__file__).parent.parent))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "waiting"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        assert proc.stdout.readline().strip() == "stopped 0 True"
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert out.split("\n")[:2] == ["run returned 0", "closed"], (out, err)


def test_batch_helpers(obj: Any, trigger: Trigger) -> None:
    rb = obj.reader("events")
    with obj.progs.ring_getpid.attach():
        trigger.run(3)
    batch = rb.drain()
    comm = comm_of(trigger.pid)
    assert batch.dtype["comm"].kind == "S"  # lazily decoded: bytes until asked
    assert list(decode_strings(batch["comm"])) == [comm.decode()] * 3
    rows = to_dicts(batch)
    assert [r["seq"] for r in rows] == [0, 1, 2]
    assert rows[0]["comm"] == comm.decode() and rows[0]["pid"] == trigger.pid
    assert isinstance(rows[0]["seq"], int)
    assert to_dicts(batch, decode=False)[0]["comm"] == comm
    raw = RawBatch.from_chunks([b"ab", b"", b"cde"])
    assert list(raw) == [b"ab", b"", b"cde"] and raw[2] == b"cde" and to_dicts(raw) == list(raw)
    with pytest.raises(BpfError, match="shorter"):
        raw.view(np.dtype("u2"))
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(BpfError, match="pip install pandas"):
            to_pandas(batch)
    else:
        df = to_pandas(batch)
        assert list(df["seq"]) == [0, 1, 2] and df["comm"][0] == comm.decode()


def test_nested_records_to_dicts() -> None:
    inner = np.dtype([("a", "u2"), ("b", "S4")])
    dt = np.dtype([("x", "u4"), ("in", inner), ("arr", "u1", (3,))])
    arr = np.zeros(2, dt)
    arr["x"] = [1, 2]
    arr["in"]["b"] = [b"hi", b"yo"]
    arr["arr"][1] = [7, 8, 9]
    assert to_dicts(arr) == [{"x": 1, "in": {"a": 0, "b": "hi"}, "arr": [0, 0, 0]},
                             {"x": 2, "in": {"a": 0, "b": "yo"}, "arr": [7, 8, 9]}]


def test_fileno_wakes_an_outside_loop_for_a_single_perf_event(events_obj: Any, trigger: Trigger) -> None:
    # a perf buffer with the default batched wakeups would never make fileno() readable for a
    # trickle of events; asking for fileno() switches it to a wakeup per sample, keeping what the
    # old rings hold
    cpu = sorted(set(sc.online_cpus()) & os.sched_getaffinity(0))[0]
    with events_obj(trigger.pid) as obj:
        rb, pb = obj.reader("events"), obj.reader("pevents").open(pages=16)
        pb.retire_grace = 0.0
        assert pb.max_latency() is not None
        with obj.progs.perf_getpid.attach(), obj.progs.ring_getpid.attach():
            trigger.run(5, cpu=cpu)  # waits in the batched rings, no wakeup
            with Poller(rb, pb) as p:
                old = pb.poll_fds()
                fd = p.fileno()
                assert pb.max_latency() is None and not set(old) & set(pb.poll_fds())  # new rings
                for f in old:
                    os.fstat(f)  # the old rings stay until read
                got = {b.name: batch for b, batch in p.drain()}  # what was there before: drain once
                assert list(got["pevents"]["seq"]) == list(got["events"]["seq"]) == [0, 1, 2, 3, 4]
                for seq in (5, 6, 7):
                    trigger.run(1, cpu=cpu)
                    assert select.select([fd], [], [], 2.0)[0] == [fd]
                    got = {b.name: batch for b, batch in p.drain()}
                    assert list(got["pevents"]["seq"]) == list(got["events"]["seq"]) == [seq]
                for f in old:  # drained, and closed after the grace
                    with pytest.raises(OSError):
                        os.fstat(f)
                assert select.select([fd], [], [], 0.05)[0] == []
        assert pb.received == rb.received == 8 and pb.lost == 0 and pb.dropped == 0


def test_poller_gives_back_what_it_could_not_deliver(obj: Any, trigger: Trigger,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    rb, pb = obj.reader("events"), obj.reader("pevents")
    with obj.progs.ring_getpid.attach(), obj.progs.perf_getpid.attach():
        trigger.run(300)
    p = Poller(rb, pb)
    # Ctrl-C in the perf buffer's drain, after the ring buffer's batch was taken: the read ends
    # cleanly and the ring buffer's batch goes back to it
    ctrl_c_after_commits(monkeypatch, pb, at={1})
    try:
        assert list(p.read(timeout=0.5)) == [] and p.interrupted
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped from Poller.read")
    assert rb.received == 300 and rb.pending()
    # a loop left after the first pair: the second goes back to its buffer
    for buf, batch in p:
        assert buf is rb
        np.testing.assert_array_equal(batch["seq"], np.arange(300))
        break
    assert not p.interrupted and pb.pending()
    per_cpu = pb.drain_per_cpu()  # given back split by CPU again
    np.testing.assert_array_equal(np.sort(np.concatenate([b["seq"] for b in per_cpu.values()])), np.arange(300))
    for cpu, b in per_cpu.items():
        assert (b["cpu"] == cpu).all() and pb.received_per_cpu[cpu] == len(b)
    assert rb.received == pb.received == 300 and not p.pending()
    p.close()


def test_fileno_loop_must_look_every_max_latency_for_adaptive_rings(events_obj: Any, trigger: Trigger) -> None:
    # BPFKIT_SUBMIT skips wake-ups within __bpfkit_wake_ns__ of the last one: such a record never
    # makes fileno() readable, so an outside loop looks every max_latency() (here the 10 s window)
    with events_obj(trigger.pid, __bpfkit_wake_ns__events=10 * 10**9) as obj, Poller(obj.reader("events")) as p:
        fd = p.fileno()
        assert p.max_latency() is None  # nothing came yet: the next record wakes
        with obj.progs.ring_adaptive_getpid.attach():
            trigger.run(1)
            assert select.select([fd], [], [], 2.0)[0] == [fd]
            assert [int(b["seq"][0]) for _, b in p.drain()] == [0]
            assert 9.0 < p.max_latency() <= 10.0  # type: ignore[operator]
            select.select([fd], [], [], 0)  # the ring is empty: nothing keeps the fd readable
            trigger.run(1)  # within the window: no wake-up
            assert select.select([fd], [], [], 0.3)[0] == []
            assert [int(b["seq"][0]) for _, b in p.drain()] == [1]  # found by looking
