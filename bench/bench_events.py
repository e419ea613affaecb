"""Events at kernel speed: bpfkit's ring/perf buffer consumers against C libbpf consumers
(ring_buffer__poll / perf_buffer__poll), in the same run.

Workload: a C child does N getpid() calls (default 2,000,000); a tracepoint program filtered to its
pid submits a 32-byte event (pid, cpu, ts, counter, spare) to a 16 MiB ring buffer, or separately to
a perf buffer (16 MiB per CPU). The child runs pinned to one CPU and the consumer to another.
Reported per consumer (median of --runs): events received, lost (perf: kernel-reported; ring: failed
reserves counted by bpfkit.h), events/s over the consumer's active span (first to last event
received), consumer CPU seconds, and bpfkit/C ratios.

    sudo .venv/bin/python bench/bench_events.py [--events 2000000] [--runs 3] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import bpfkit  # noqa: E402
from bpfkit.compiler import cache_root  # noqa: E402

RING_BYTES = 16 << 20
PERF_PAGES = RING_BYTES // 4096  # 16 MiB per CPU, like the ring buffer


def build(out: Path) -> dict[str, Path]:
    """The BPF object, the C consumer and the trigger, built into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise SystemExit("needs a C compiler (cc) and libbpf-dev for the baseline")
    paths = {"obj": bpfkit.compile(HERE / "events_bench.bpf.c")}
    for name, libs in (("events_consumer", ["-lbpf", "-lelf", "-lz"]), ("getpid_loop", [])):
        exe = out / name
        src = HERE / f"{name}.c"
        if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
            subprocess.run([cc, "-O2", "-o", str(exe), str(src), *libs], check=True)
        paths[name] = exe
    return paths


def cpus() -> tuple[int, int]:
    """(consumer CPU, producer CPU): two different CPUs when there are two."""
    allowed = sorted(os.sched_getaffinity(0))
    return allowed[0], allowed[-1]


def start_child(paths: dict[str, Path], n: int, cpu: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(paths["getpid_loop"]), str(n)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))


def finish_child(child: subprocess.Popen[bytes]) -> float:
    assert child.stdout is not None
    out = child.stdout.read()
    child.wait(timeout=120)
    return int(out) / 1e9


def run_c(paths: dict[str, Path], mode: str, n: int) -> dict[str, Any]:
    ccpu, pcpu = cpus()
    child = start_child(paths, n, pcpu)
    cons = subprocess.Popen([str(paths["events_consumer"]), mode, str(paths["obj"]), str(child.pid), str(n),
                             str(PERF_PAGES)], stdout=subprocess.PIPE, text=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, {ccpu}))
    assert cons.stdout is not None
    if cons.stdout.readline().strip() != "ready":
        child.kill()
        raise SystemExit("C consumer failed to start")
    assert child.stdin is not None
    child.stdin.write(b"g")
    child.stdin.close()
    producer_s = finish_child(child)
    res = json.loads(cons.stdout.readline())
    cons.wait(timeout=30)
    res["producer_s"] = producer_s
    return res


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_bpfkit(paths: dict[str, Path], mode: str, n: int, wakeup_events: int = 0) -> dict[str, Any]:
    ccpu, pcpu = cpus()
    os.sched_setaffinity(0, {ccpu})
    child = start_child(paths, n, pcpu)
    spec = bpfkit.open(paths["obj"])
    spec.rodata.target_pid = child.pid
    spec.programs["perf_getpid" if mode == "ring" else "ring_getpid"].autoload = False
    with spec.load() as obj:
        buf = obj.maps.events if mode == "ring" else obj.maps.pevents.open(pages=PERF_PAGES,
                                                                            wakeup_events=wakeup_events)
        prog = obj.progs.ring_getpid if mode == "ring" else obj.progs.perf_getpid
        with prog.attach():
            received = counter_sum = 0
            first = last = 0.0
            cpu0 = cpu_seconds()
            assert child.stdin is not None
            child.stdin.write(b"g")
            child.stdin.close()
            for batch in buf.read(timeout=2.0):
                if not received:
                    first = time.perf_counter()
                received += len(batch)
                counter_sum += int(batch["counter"].sum())
                last = time.perf_counter()
                if received + buf.dropped >= n:
                    break
            cpu = cpu_seconds() - cpu0
        producer_s = finish_child(child)
        lost = buf.lost if mode == "perf" else 0
        return {"received": received, "lost": lost, "dropped": buf.dropped, "cpu_s": cpu,
                "active_s": last - first, "counter_sum": counter_sum, "producer_s": producer_s}


def summarize(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    med = {k: statistics.median(r[k] for r in runs) for k in ("received", "lost", "dropped", "cpu_s",
                                                              "active_s", "producer_s")}
    med["events_per_s"] = statistics.median(r["received"] / r["active_s"] for r in runs if r["active_s"] > 0)
    med["all_checksums_ok"] = all(r["counter_sum"] == n * (n - 1) // 2 for r in runs if r["received"] == n)
    med["runs"] = runs
    return med


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--modes", default="ring,perf")
    ap.add_argument("--build-dir", default=str(cache_root() / "bench"))
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (loads BPF programs)")
    paths = build(Path(args.build_dir))
    n = args.events
    results: dict[str, Any] = {"events": n, "cpus": list(cpus()), "kernel": os.uname().release}
    for mode in args.modes.split(","):
        # perf: bpfkit's default batches kernel wakeups (watermark + periodic look); the
        # "wakeup=1" variant wakes per sample like libbpf's perf_buffer, to separate the two effects
        variants = {"bpfkit": 0, "bpfkit wakeup=1": 1} if mode == "perf" else {"bpfkit": 0}
        runs: dict[str, list[dict[str, Any]]] = {"C libbpf": [], **{v: [] for v in variants}}
        for _ in range(args.runs):  # interleaved so that machine noise hits all alike
            runs["C libbpf"].append(run_c(paths, mode, n))
            for name, wakeup in variants.items():
                runs[name].append(run_bpfkit(paths, mode, n, wakeup))
        summ = {name: summarize(r, n) for name, r in runs.items()}
        c = summ["C libbpf"]
        results[mode] = summ
        print(f"\n{mode} buffer, {n:,} events (median of {args.runs}):")
        print(f"  {'consumer':16} {'received':>10} {'lost':>9} {'events/s':>12} {'cpu s':>7} {'producer s':>10}"
              f" {'rate/C':>7} {'cpu/C':>6}")
        for name, r in summ.items():
            lost = max(r["lost"], r["dropped"])  # kernel LOST records can lag the BPF-side count
            r["rate_ratio"] = r["events_per_s"] / c["events_per_s"]
            r["cpu_ratio"] = r["cpu_s"] / c["cpu_s"] if c["cpu_s"] else float("nan")
            print(f"  {name:16} {r['received']:>10,.0f} {lost:>9,.0f} {r['events_per_s']:>12,.0f} "
                  f"{r['cpu_s']:>7.3f} {r['producer_s']:>10.3f} {r['rate_ratio']:>6.2f}x {r['cpu_ratio']:>5.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
