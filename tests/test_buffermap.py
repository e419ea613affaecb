"""A loaded object's ring and perf buffer maps read through the object's reader
(``obj.maps.events.read()`` is ``obj.reader("events").read()``): the first API's way, which
scripts such as the peer benchmark kit's bpfkit peer still use."""
from __future__ import annotations

import gc
from typing import Any

import numpy as np
import pytest

import bpfkit
from bpfkit.loader.buffermap import BufferMap

from _event_trigger import Trigger

pytestmark = pytest.mark.root

# the record type given explicitly, as the peer kit's script does (struct event, comm as raw bytes)
PEER_EVENT = np.dtype([("pid", "<u4"), ("cpu", "<u4"), ("seq", "<u8"), ("ts", "<u8"), ("comm", "V16")])


def test_ring_buffer_map_reads_as_its_reader(events_obj: Any, trigger: Trigger) -> None:
    with events_obj(trigger.pid) as obj:
        events = obj.maps.events
        assert isinstance(events, BufferMap) and events.reader is obj.reader("events")
        with obj.progs.ring_getpid.attach():
            trigger.run(700)
        got = [b for b in events.read(timeout=0.3, dtype=PEER_EVENT)]
        seqs = np.concatenate([b["seq"] for b in got])
        np.testing.assert_array_equal(seqs, np.arange(700))
        assert all(b.dtype == PEER_EVENT for b in got) and (np.concatenate([b["pid"] for b in got]) == trigger.pid).all()
        assert events.interrupted is False and events.dropped == 0 and events.lost == 0
        assert len(events.drain(dtype=PEER_EVENT)) == 0
        with obj.progs.ring_getpid.attach():
            trigger.run(5)
        assert events.run(lambda b: None, duration=0.2) == 5


def test_perf_buffer_map_reads_and_counts_as_its_reader(events_obj: Any, trigger: Trigger) -> None:
    with events_obj(trigger.pid) as obj:
        obj.reader("pevents").open()
        with obj.progs.perf_getpid.attach():
            trigger.run(300)
        batch = obj.maps.pevents.poll(timeout=0.5)
        rest = obj.maps.pevents.drain()
        assert len(batch) + len(rest) == 300 and obj.maps.pevents.lost == 0


def test_the_map_does_not_keep_its_object_alive(events_src: Any) -> None:
    obj = bpfkit.load(events_src)
    events = obj.maps.events
    obj.close()
    del obj
    gc.collect()
    with pytest.raises(bpfkit.ClosedError, match="obj.reader"):
        events.read(timeout=0.1)
