#!/usr/bin/env python3
"""Per-key map access on the peer kit's W3 map (1M-entry u64->u64 hash, build/w3_hash.bpf.o), the figures of
issue 18 item 5: m[k] in microseconds per lookup, keys() + m[k] over every entry, dict(m.items()) and to_numpy().
The C per-key loop to compare with is the kit's libbpf W3 read_iter_s, measured in the same run by
run_baseline.sh. Usage: $PYK w3_perkey.py [--runs 3] [--lookups 100000]   (PEER_BENCH: the kit, default
/work/peer-bench)"""
import os
import statistics
import sys
import time

import numpy as np

import bpfkit

OBJ = os.path.join(os.environ.get("PEER_BENCH", "/work/peer-bench"), "build/w3_hash.bpf.o")
RUNS = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv else 3
LOOKUPS = int(sys.argv[sys.argv.index("--lookups") + 1]) if "--lookups" in sys.argv else 100_000

# wall and this process's CPU (less disturbed by other load on a shared machine) for each step
res: dict[str, list[float]] = {k: [] for k in ("getitem_us", "keys_getitem_s", "dict_items_s", "to_numpy_s",
                                               "getitem_cpu_us", "keys_getitem_cpu_s", "dict_items_cpu_s",
                                               "to_numpy_cpu_s")}
clock = time.process_time
for _ in range(RUNS):
    with bpfkit.load(OBJ) as obj:
        m = obj.maps.hmap
        n = m.max_entries
        keys = np.arange(n, dtype=np.uint64)
        m.update(keys, keys * 2)
        probe = [int(k) for k in np.random.default_rng(1).integers(0, n, LOOKUPS)]
        c0, t0 = clock(), time.perf_counter()
        s = sum(int(m[k]) for k in probe)
        c1, t1 = clock(), time.perf_counter()
        assert s == 2 * sum(probe)
        total = 0
        for k in m.keys():
            total += int(m[k])
        c2, t2 = clock(), time.perf_counter()
        d = dict(m.items())
        c3, t3 = clock(), time.perf_counter()
        k_, v_ = m.to_numpy()
        c4, t4 = clock(), time.perf_counter()
        assert total == n * (n - 1) and len(d) == n and int(v_.sum()) == n * (n - 1)
        res["getitem_us"].append((t1 - t0) / LOOKUPS * 1e6)
        res["keys_getitem_s"].append(t2 - t1)
        res["dict_items_s"].append(t3 - t2)
        res["to_numpy_s"].append(t4 - t3)
        res["getitem_cpu_us"].append((c1 - c0) / LOOKUPS * 1e6)
        res["keys_getitem_cpu_s"].append(c2 - c1)
        res["dict_items_cpu_s"].append(c3 - c2)
        res["to_numpy_cpu_s"].append(c4 - c3)
for k, v in res.items():
    print(f"RESULT peer=bpfkit workload=W3-perkey metric={k} value={statistics.median(v):.6g} "
          f"min={min(v):.6g} max={max(v):.6g} n={len(v)} raw={','.join(f'{x:.6g}' for x in v)}", flush=True)
