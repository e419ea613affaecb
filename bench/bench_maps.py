"""Maps benchmark, one run, same machine, ratios printed; every figure a median [min-max].

1. A 1,000,000-entry u64 -> u64 hash:
   - read into numpy: bpfkit ``to_numpy()`` (BPF_MAP_LOOKUP_BATCH) vs a C program using libbpf's
     ``bpf_map_lookup_batch`` (bench/bench_maps_baseline.c, compiled here with cc -lbpf). Target
     <= 1.5x C.
   - read per key: C get_next_key + lookup per key (the classic loop), bpfkit ``dict(m.items())``
     (a batch snapshot, then Python pairs; target <= 1.2x the C loop), bpfkit ``keys()`` + ``m[k]``
     (two syscalls per key, like the C loop), and bcc 0.26's own ``items()`` and
     ``items_lookup_batch()`` on a map of the same shape (bench/bcc_items.py, run by Debian's
     python3-bpfcc; skipped with the reason when bcc cannot compile here).
   - one lookup: ``m[k]`` in microseconds (target <= 3 us) vs C ``bpf_map_lookup_elem`` per key.
2. A BPF_F_MMAPABLE array of 1K vs 1M u64, opened fresh by id each time (so nothing is cached):
   the first ``.array`` access (the mmap) plus a real read - every 1000th element, or the sum of
   all - and, for contrast, a plain (non-mmapable) array read with ``to_numpy()`` (one batch
   syscall that copies every element). The mmap itself is not free: the kernel maps every page
   of the array at mmap time, so it grows with the size; reading through it costs no syscall.

Run as root: ``.venv/bin/python bench/bench_maps.py [--entries N] [--repeats R] [--no-bcc]``
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bpfkit import _sys as sc  # noqa: E402
from bpfkit.maps import Map  # noqa: E402

HERE = Path(__file__).resolve().parent
BCC_PYTHON = "/usr/bin/python3"  # Debian's, with python3-bpfcc


def build_baseline(out_dir: Path) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang") or shutil.which("clang-14")
    if cc is None:
        raise SystemExit("no C compiler (cc/gcc/clang) found for the C baseline")
    exe = out_dir / "bench_maps_baseline"
    subprocess.run([cc, "-O2", "-o", str(exe), str(HERE / "bench_maps_baseline.c"), "-lbpf"], check=True)
    return exe


def timed(fn: Callable[[], Any], repeats: int) -> list[float]:
    """Seconds per call of ``fn``, ``repeats`` times."""
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def fmt(xs: list[float], scale: float = 1e3, unit: str = "ms") -> str:
    return f"{med(xs) * scale:9.1f} {unit} [{min(xs) * scale:.1f}-{max(xs) * scale:.1f}]"


def run_bcc(entries: int, repeats: int) -> tuple[list[dict[str, Any]], str]:
    """bcc's items() / items_lookup_batch() runs, or ([], why not)."""
    if not Path(BCC_PYTHON).exists():
        return [], f"{BCC_PYTHON} not found"
    runs = []
    for _ in range(repeats):
        p = subprocess.run([BCC_PYTHON, str(HERE / "bcc_items.py"), str(entries)], capture_output=True, text=True)
        if p.returncode != 0:
            return [], (p.stderr.strip().splitlines() or ["bcc failed"])[-1][:200]
        r = json.loads(p.stdout.splitlines()[-1])
        if not r["ok"]:
            return [], "bcc read wrong values"
        runs.append(r)
    return runs, ""


def bench_hash(entries: int, repeats: int, exe: Path, bcc: bool) -> None:
    print(f"== {entries:,}-entry u64->u64 hash (median [min-max]; {repeats} runs, per-key loops 3)")
    per_key_runs = min(repeats, 3)
    with Map.create("hash", "u8", "u8", entries, name="bench_hash") as m:
        keys = np.arange(entries, dtype=np.uint64) * 2654435761 % (1 << 40)
        t0 = time.perf_counter()
        m.update(keys, keys ^ 0xABCDEF)
        fill_ms = (time.perf_counter() - t0) * 1e3
        k, v = m.to_numpy()
        assert len(k) == entries and np.array_equal(v, k ^ 0xABCDEF)
        want = {int(a): int(a) ^ 0xABCDEF for a in keys[:1000]}
        out = subprocess.run([str(exe), str(m.id), str(repeats)], check=True, capture_output=True, text=True).stdout
        c: dict[str, list[float]] = {}
        for ln in out.splitlines():
            what, ms, n = ln.split()
            assert int(n) == entries, ln
            c.setdefault(what, []).append(float(ms) / 1e3)
        # the batch reads interleaved, C then bpfkit, so that the machine's drift hits both alike
        py_batch: list[float] = []
        c["batch"] = []
        for _ in range(repeats):
            line = subprocess.run([str(exe), str(m.id), "1", "batch"], check=True, capture_output=True,
                                  text=True).stdout.split()
            c["batch"].append(float(line[1]) / 1e3)
            py_batch += timed(m.to_numpy, 1)

        def items() -> None:
            d = dict(m.items())
            assert len(d) == entries and all(d[a] == b for a, b in want.items())

        def keys_and_getitem() -> None:
            total = 0
            for key in m.keys():
                total += m[key]
            assert total == int((keys ^ 0xABCDEF).sum(dtype=np.uint64))

        py_items = timed(items, per_key_runs)
        py_keys = timed(keys_and_getitem, per_key_runs)
        probe = [int(a) for a in keys[:: max(1, entries // 100_000)]]

        def getitems() -> None:
            for key in probe:
                m[key]

        per_get = [t / len(probe) for t in timed(getitems, repeats)]
    c_lookup = [t / entries for t in c["lookup"]]
    bcc_runs, why = run_bcc(entries, per_key_runs) if bcc else ([], "--no-bcc")
    print(f"  fill with update() (UPDATE_BATCH)                 {fill_ms:9.1f} ms")
    print(f"  bpfkit to_numpy() (LOOKUP_BATCH)                 {fmt(py_batch)}")
    print(f"  C bpf_map_lookup_batch                           {fmt(c['batch'])}")
    print(f"  C get_next_key + lookup per key                  {fmt(c['perkey'])}")
    print(f"  bpfkit dict(m.items())                           {fmt(py_items)}")
    print(f"  bpfkit keys() + m[k]                             {fmt(py_keys)}")
    if bcc_runs:
        bi = [r["items_s"] for r in bcc_runs]
        bb = [r["lookup_batch_s"] for r in bcc_runs]
        print(f"  bcc {bcc_runs[0]['bcc']} table.items() (its own map, same shape) {fmt(bi)}")
        print(f"  bcc {bcc_runs[0]['bcc']} list(items_lookup_batch())           {fmt(bb)}")
    else:
        print(f"  bcc: not measured ({why})")
    print(f"  bpfkit m[k], one lookup                          {fmt(per_get, 1e6, 'us')}")
    print(f"  C bpf_map_lookup_elem, one lookup                {fmt(c_lookup, 1e6, 'us')}")
    print(f"  ratios (medians): to_numpy/C batch {med(py_batch) / med(c['batch']):.2f}x (target <= 1.5x); "
          f"items()/C per-key loop {med(py_items) / med(c['perkey']):.2f}x (target <= 1.2x); "
          f"keys()+m[k]/C per-key loop {med(py_keys) / med(c['perkey']):.1f}x; "
          f"m[k]/C lookup {med(per_get) / med(c_lookup):.1f}x")
    if bcc_runs:
        print(f"  bcc items()/bpfkit items(): {med(bi) / med(py_items):.1f}x")


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
    p.add_argument("--no-bcc", action="store_true", help="skip bcc's items() (a minute or more per run)")
    p.add_argument("--no-mmap", action="store_true", help="skip the mmapable array part")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_baseline(Path(tmp))
        bench_hash(args.entries, args.repeats, exe, not args.no_bcc)
    if not args.no_mmap:
        bench_mmap(args.repeats * 10)


if __name__ == "__main__":
    main()
