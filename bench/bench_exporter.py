"""Exporter scrape cost, one run, ratios printed.

A hash map of N entries keyed ``{pid, nr}`` (1000 pids x N/1000 syscall numbers) is exported
as a counter with three labels: ``pid`` (int), ``comm`` (pid -> /proc, cached) and
``syscall`` (number -> name). One scrape (``Exporter.metrics_text()``: batch read, per-CPU
sum, decoding, merging rows, text format) is compared with the floor it cannot beat: the
same map's ``to_numpy()`` batch read alone. There is no C exporter on this machine to
compare with; the ratio says how much the Python side adds to the kernel read.

Run as root: ``.venv/bin/python bench/bench_exporter.py [--entries N] [--repeats R]``
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfkit.exporter import Exporter  # noqa: E402

CODE = """
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
struct call_key { __u32 pid; __u32 nr; };
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, %d);
	__type(key, struct call_key);
	__type(value, __u64);
} calls SEC(".maps");
"""


def median_ms(fn: object, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=11)
    args = ap.parse_args()
    n = args.entries - args.entries % 1000
    cfg = {"objects": [{"name": "bench", "code": CODE % n, "metrics": [
        {"name": "bench_calls_total", "type": "counter", "map": "calls", "labels": [
            {"name": "pid", "field": "key.pid"}, {"name": "comm", "field": "key.pid", "decoder": "comm"},
            {"name": "syscall", "field": "key.nr", "decoder": "syscall"}]}]}]}
    with Exporter(cfg).start(serve=False) as ex:
        m = ex.objects["bench"].maps.calls
        keys = np.zeros(n, m.key_dtype)
        keys["pid"] = np.repeat(np.arange(1, 1001), n // 1000)
        keys["nr"] = np.tile(np.arange(n // 1000), 1000)
        m.update(keys, np.arange(1, n + 1, dtype=np.uint64))
        text = ex.metrics_text()  # first scrape reads /proc for each pid once; later ones hit the cache
        series = sum(1 for line in text.splitlines() if line.startswith("bench_calls_total{"))
        read = median_ms(m.to_numpy, args.repeats)
        scrape = median_ms(ex.metrics_text, args.repeats)
    print(f"{n:,} entries -> {series:,} series (3 labels: pid, comm, syscall), median of {args.repeats}")
    print(f"  to_numpy() batch read alone   {read:8.1f} ms")
    print(f"  one scrape (read+labels+text) {scrape:8.1f} ms   {scrape / read:.1f}x the read, "
          f"{scrape * 1e6 / n:.0f} ns per entry")


if __name__ == "__main__":
    main()
