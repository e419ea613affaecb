#!/usr/bin/python3
"""bcc's own reads of a u64 -> u64 hash, for bench_maps.py: run by Debian's python3 with its
python3-bpfcc (bcc compiles BPF_HASH at run time: it needs kernel headers, see
/work/shared/reference/peer-bench/setup.sh). Fills N entries (key i -> 2i) with
items_update_batch, then times ``table.items()`` (bcc's dict view: get_next_key + lookup per entry,
a list of ctypes pairs) and ``items_lookup_batch()``. Prints one JSON line.

    /usr/bin/python3 bench/bcc_items.py 1000000
"""
import json
import sys
import time

from bcc import BPF

n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
b = BPF(text=f"BPF_HASH(hmap, u64, u64, {n});")
t = b["hmap"]
keys = (t.Key * n)(*range(n))
vals = (t.Leaf * n)(*range(0, 2 * n, 2))
t0 = time.perf_counter()
t.items_update_batch(keys, vals)
t1 = time.perf_counter()
items = t.items()
t2 = time.perf_counter()
batch = list(t.items_lookup_batch())
t3 = time.perf_counter()
ok = len(items) == n and sum(v.value for _, v in items) == n * (n - 1) and sum(v for _, v in batch) == n * (n - 1)
print(json.dumps({"entries": len(items), "fill_s": t1 - t0, "items_s": t2 - t1, "lookup_batch_s": t3 - t2,
                  "ok": ok, "bcc": getattr(sys.modules["bcc"], "__version__", "?")}))
