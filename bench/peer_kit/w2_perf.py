#!/usr/bin/env python3
"""Peer-kit W2 peer (bpfkit, perf buffer): reads the kit's perf-buffer twin build/w2_events.perf.bpf.o, 2048 pages
per CPU like the kit's other perf peers. Same protocol as the kit's bpfkit/w2.py: w2_perf.py PID [K] (K ignored,
as by every perf peer). BPFKIT_PERF_WAKEUP=1 (default) wakes the reader on every sample, as libbpf and bcc do
(issue 18 item 3); BPFKIT_PERF_WAKEUP=0 uses bpfkit's batched wake-ups.
Run from the peer kit: python3 w2_stream.py --peer bpfkit-perf="$PYK $PWD/bench/peer_kit/w2_perf.py"
The kit's build directory is $PEER_BENCH/build (default /work/peer-bench/build)."""
import os
import signal
import sys

import numpy as np

import bpfkit

OBJ = os.path.join(os.environ.get("PEER_BENCH", "/work/peer-bench"), "build/w2_events.perf.bpf.o")
EVENT = np.dtype([("pid", "<u4"), ("cpu", "<u4"), ("ts_ns", "<u8"), ("seq", "<u8")])  # bpf/event.h
WAKEUP = int(os.environ.get("BPFKIT_PERF_WAKEUP", "1"))
signal.signal(signal.SIGINT, signal.default_int_handler)

pid = int(sys.argv[1])
received = 0
with bpfkit.load(OBJ) as obj:
    obj.maps.cfg.update([0, 1], [pid, 0])
    events = obj.maps.events.open(pages=2048, wakeup_events=WAKEUP)
    with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
        print("READY", file=sys.stderr, flush=True)
        while True:
            for batch in events.read(timeout=1.0, dtype=EVENT):
                received += len(batch)
            if events.interrupted:
                break
        received += len(events.drain(dtype=EVENT))
    produced, dropped = obj.maps.stats[0], obj.maps.stats[1]
print(f"received={received} produced={produced} lost={dropped} kernel_lost={events.lost}", flush=True)
