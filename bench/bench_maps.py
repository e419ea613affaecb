"""Maps benchmark (issue 3), one run, same machine, ratios printed.

1. A 1,000,000-entry u64 -> u64 hash read into numpy: bpfkit ``to_numpy()`` (BPF_MAP_LOOKUP_BATCH)
   vs a C program using libbpf's ``bpf_map_lookup_batch`` (bench/bench_maps_baseline.c, compiled
   here with cc -lbpf) vs iterating with get_next_key + lookup per key (bcc's ``items()`` way), in
   C and in Python. Target: bpfkit <= 1.5x C.
2. A BPF_F_MMAPABLE array of 1K vs 1M u64, opened fresh by id each time (so nothing is cached):
   the first ``.array`` access (the mmap) plus a real read - every 1000th element, or the sum of
   all - and, for contrast, a plain (non-mmapable) array read with ``to_numpy()`` (one batch
   syscall that copies every element). The mmap itself is not free: the kernel maps every page
   of the array at mmap time, so it grows with the size; reading through it costs no syscall.

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

from bpfkit import _sys as sc  # noqa: E402
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
    print(f"== BPF_F_MMAPABLE array of u64, opened fresh with Map.from_id each time (median of {repeats})")
    rows = []
    for n in (1_000, 1_000_000):
        with Map.create("array", "u4", "u8", n, flags=sc.BPF_F_MMAPABLE) as m, \
                Map.create("array", "u4", "u8", n) as plain:
            m.array[:] = np.arange(n, dtype=np.uint64)  # type: ignore[attr-defined]
            plain.update(np.arange(n, dtype=np.uint32), np.arange(n, dtype=np.uint64))
            strided_want = int(np.arange(0, n, 1000, dtype=np.uint64).sum())
            sum_want = n * (n - 1) // 2
            strided = _median_checked(lambda: _first_access(m.id, lambda a: int(a[::1000].sum())),
                                      strided_want, repeats)
            full = _median_checked(lambda: _first_access(m.id, lambda a: int(a.sum())), sum_want, repeats)
            mapped = m.array  # type: ignore[attr-defined]
            kept = _median_checked(lambda: _timed_value(lambda: int(mapped.sum())), sum_want, repeats)
            batch = _median_checked(lambda: _timed_value(lambda: int(plain.to_numpy()[1].sum())), sum_want,
                                    max(3, repeats // 4))
            del mapped
            rows.append((n, strided, full, kept, batch))
    print(f"  {'elements':>9}  {'mmap + every 1000th':>20}  {'mmap + sum of all':>18}  "
          f"{'sum, view kept':>15}  {'plain to_numpy()+sum':>21}")
    for n, strided, full, kept, batch in rows:
        print(f"  {n:>9,}  {strided * 1e6:>17.1f} us  {full * 1e6:>15.1f} us  {kept * 1e6:>12.1f} us  "
              f"{batch * 1e6:>18.1f} us")
    (n0, s0, f0, k0, b0), (n1, s1, f1, k1, b1) = rows
    print(f"  1M/1K: mmap + every 1000th {s1 / s0:.1f}x, mmap + sum {f1 / f0:.1f}x, "
          f"sum with the view kept {k1 / k0:.1f}x, plain batch read {b1 / b0:.1f}x")
    print(f"  at 1M the mmapable read is {b1 / f1:.1f}x faster than the batch read (mmap + sum vs "
          f"to_numpy + sum), {b1 / s1:.0f}x for a strided read")


def _first_access(map_id: int, read) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    # opening by id is outside the timer; the timer covers the mmap (.array) and the read
    with Map.from_id(map_id) as fresh:
        t0 = time.perf_counter()
        a = fresh.array  # type: ignore[attr-defined]
        value = read(a)
        elapsed = time.perf_counter() - t0
        del a  # let close() unmap
    return elapsed, value


def _timed_value(fn) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def _median_checked(run, want: int, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        elapsed, value = run()
        assert value == want, (value, want)
        times.append(elapsed)
    return statistics.median(times)


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
