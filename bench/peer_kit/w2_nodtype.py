#!/usr/bin/env python3
"""Peer-kit W2 peer (bpfkit, ring buffer, NO dtype): the path a user meets first when porting a plain libbpf
program (issue 18 item 1). Same protocol as the kit's bpfkit/w2.py: w2_nodtype.py PID [WAKEUP_BATCH].
Run from the peer kit: python3 w2_stream.py --peer bpfkit-nodtype="$PYK $PWD/bench/peer_kit/w2_nodtype.py"
The kit's build directory is $PEER_BENCH/build (default /work/peer-bench/build)."""
import os
import signal
import sys

import bpfkit

OBJ = os.path.join(os.environ.get("PEER_BENCH", "/work/peer-bench"), "build/w2_events.bpf.o")
signal.signal(signal.SIGINT, signal.default_int_handler)

pid = int(sys.argv[1])
wake = int(sys.argv[2]) if len(sys.argv) > 2 else 0
received = 0
with bpfkit.load(OBJ) as obj:
    obj.maps.cfg.update([0, 1], [pid, wake])
    events = obj.maps.events
    with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
        print("READY", file=sys.stderr, flush=True)
        while True:
            for batch in events.read(timeout=1.0):       # no dtype: whatever the default path gives
                received += len(batch)
            if events.interrupted:
                break
        received += len(events.drain())
    produced, dropped = obj.maps.stats[0], obj.maps.stats[1]
print(f"received={received} produced={produced} lost={dropped}", flush=True)
