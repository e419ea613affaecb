"""Maps benchmark (issue 3), one run, same machine, ratios printed.

1. A 1,000,000-entry u64 -> u64 hash read into numpy: bpfkit ``to_numpy()`` (BPF_MAP_LOOKUP_BATCH)
   vs a C program using libbpf's ``bpf_map_lookup_batch`` (bench/bench_maps_baseline.c, compiled
   here with cc -lbpf) vs iterating with get_next_key + lookup per key (bcc's ``items()`` way), in
   C and in Python. Target: bpfkit <= 1.5x C.
2. A BPF_F_MMAPABLE array of 1K vs 1M u64: the cost of a numpy view of every element (zero copy:
   must not grow with the size), next to a full read of a plain array (one batch syscall).

Run as root: ``.venv/bin/python bench/bench_maps.py [--entries N] [--repeats R]``
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfkit import syscall as sc  # noqa: E402
from bpfkit.maps import Map  # noqa: E402

HERE = Path(__file__).resolve().parent


def build_baseline(out_dir: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang") or shutil.which("clang-14")
    if cc is None:
        raise SystemExit("no C compiler (cc/gcc/clang) found for the C baseline")
    exe = out_dir / "bench_maps_baseline"
    subprocess.run([cc, "-O2", "-o", str(exe), str(HERE / "bench_maps_baseline.c"), "-lbpf"], check=True)
    return exe


def best_of(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def bench_hash(entries: int, repeats: int, exe: Path) -> None:
    print(f"== {entries:,}-entry u64->u64 hash to numpy (best of {repeats})")
    with Map.create("hash", "u8", "u8", entries, name="bench_hash") as m:
        keys = np.arange(entries, dtype=np.uint64) * 2654435761 % (1 << 40)
        t0 = time.perf_counter()
        m.update(keys, keys ^ 0xABCDEF)
        fill_ms = (time.perf_counter() - t0) * 1e3
        k, v = m.to_numpy()
        assert len(k) == entries and np.array_equal(v, k ^ 0xABCDEF)
        py_ms = best_of(m.to_numpy, repeats)
        out = subprocess.run([str(exe), str(m.id), str(repeats)], check=True, capture_output=True, text=True).stdout
        res = {ln.split()[0]: (float(ln.split()[1]), int(ln.split()[2])) for ln in out.splitlines()}
        c_ms, c_n = res["batch"]
        c_perkey_ms, _ = res["perkey"]
        assert c_n == entries
        t0 = time.perf_counter()
        n = sum(1 for _ in _items_per_key(m))
        py_perkey_ms = (time.perf_counter() - t0) * 1e3
        assert n == entries
    print(f"  fill with update() (UPDATE_BATCH)         {fill_ms:9.1f} ms")
    print(f"  bpfkit to_numpy() (LOOKUP_BATCH)          {py_ms:9.1f} ms")
    print(f"  C bpf_map_lookup_batch                    {c_ms:9.1f} ms")
    print(f"  C get_next_key + lookup per key           {c_perkey_ms:9.1f} ms")
    print(f"  Python get_next_key + lookup (bcc items)  {py_perkey_ms:9.1f} ms")
    print(f"  ratio bpfkit/C batch: {py_ms / c_ms:.2f}x (target <= 1.5x)   "
          f"per-key Python/bpfkit: {py_perkey_ms / py_ms:.0f}x   per-key C/bpfkit: {c_perkey_ms / py_ms:.1f}x")


def _items_per_key(m: Map):  # type: ignore[no-untyped-def]
    # what bcc's table.items() does: one get_next_key and one lookup syscall per element
    for k in m.keys():
        yield k, m.lookup(k)


def bench_mmap(repeats: int) -> None:
    print(f"== BPF_F_MMAPABLE array, u64 values (median of {repeats})")
    rows = []
    for n in (1_000, 1_000_000):
        with Map.create("array", "u4", "u8", n, flags=sc.BPF_F_MMAPABLE) as m, \
                Map.create("array", "u4", "u8", n) as plain:
            m.array[:] = np.arange(n)
            view_us = statistics.median(_time_view(m) for _ in range(repeats))
            sum_ms = statistics.median(_timed(lambda: m.array.sum()) for _ in range(repeats)) * 1e3
            batch_ms = statistics.median(_timed(plain.to_numpy) for _ in range(max(3, repeats // 4))) * 1e3
            rows.append((n, view_us, sum_ms, batch_ms))
    for n, view_us, sum_ms, batch_ms in rows:
        print(f"  {n:>9,} elements: live view of all elements {view_us:7.2f} us | numpy sum over it "
              f"{sum_ms:7.3f} ms | plain array to_numpy() {batch_ms:7.3f} ms")
    print(f"  view cost 1M/1K: {rows[1][1] / rows[0][1]:.2f}x (zero copy: flat)")


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _time_view(m: Map) -> float:
    # the per-interval read of a mmapable array: take the live view and look at the last element
    t0 = time.perf_counter()
    a = m.array  # type: ignore[attr-defined]
    _ = a[-1]
    return (time.perf_counter() - t0) * 1e6


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--entries", type=int, default=1_000_000)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_baseline(Path(tmp))
        bench_hash(args.entries, args.repeats, exe)
    bench_mmap(args.repeats * 10)


if __name__ == "__main__":
    main()
