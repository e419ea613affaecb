"""Events at kernel speed: bpfkit's ring/perf buffer consumers against C libbpf consumers
(ring_buffer__poll / perf_buffer__poll), in the same run.

Workload: a C child does N getpid() calls (default 2,000,000); a tracepoint program filtered to its
pid submits a 32-byte event (pid, cpu, ts, counter, spare) to a 16 MiB ring buffer, or separately to
a perf buffer (16 MiB per CPU). The child runs pinned to one CPU and the consumer to another.

Reported per consumer (median of --runs): events received; lost (perf: kernel-reported, or the
BPF-side count when the kernel's LOST records lag; ring: failed reserves counted by bpfkit.h);
events/s from the producer's start to the consumer holding the last event; consumer CPU seconds
per million events received; and bpfkit/C ratios of both.

What limits each figure: when both consumers keep up (0 lost), events/s is the *producer's* rate
(getpid loop + BPF program + kernel wakeups, whose number depends on the consumer's configuration
and, for the ring buffer, on how often it has caught up), so a rate ratio near 1 only says that the
consumer is not the bottleneck. The consumer's own cost is CPU s per million events. Perf buffers are compared
twice, each bpfkit variant against a C consumer with the same kernel wakeup configuration: a wakeup
per sample (libbpf's perf_buffer__new, bpfkit's wakeup_events=1) and bpfkit's default batched
wakeups (watermark of a quarter ring, at most 1 MiB, plus a look every 50 ms; C via
perf_buffer__new_raw), so that the cost of wakeups is not mistaken for the consumer's.

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
from typing import Any, cast

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import bpfkit  # noqa: E402
from bpfkit.compiler import cache_root  # noqa: E402
from bpfkit.events import EventReader, PerfBuffer, RingBuffer  # noqa: E402

RING_BYTES = 16 << 20
PERF_PAGES = RING_BYTES // 4096  # 16 MiB per CPU, like the ring buffer
FLUSH_INTERVAL = 0.05  # bpfkit's default look without a wakeup, given to the batched C consumer too
# bpfkit's default watermark for PERF_PAGES (wakeup_events=0, watermark=None)
WATERMARK = PerfBuffer._wake_config(PERF_PAGES, 0, None)[1]


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


def run_c(paths: dict[str, Path], mode: str, n: int, wakeup_events: int = 1) -> dict[str, Any]:
    """The C consumer; for perf, ``wakeup_events=0`` uses bpfkit's batched wakeups."""
    ccpu, pcpu = cpus()
    child = start_child(paths, n, pcpu)
    cmode = "perf-batched" if mode == "perf" and wakeup_events == 0 else mode
    cons = subprocess.Popen([str(paths["events_consumer"]), cmode, str(paths["obj"]), str(child.pid), str(n),
                             str(PERF_PAGES), str(WATERMARK), str(int(FLUSH_INTERVAL * 1000))],
                            stdout=subprocess.PIPE, text=True, preexec_fn=lambda: os.sched_setaffinity(0, {ccpu}))
    assert cons.stdout is not None
    if cons.stdout.readline().strip() != "ready":
        child.kill()
        raise SystemExit("C consumer failed to start")
    assert child.stdin is not None
    t_go = time.monotonic()  # CLOCK_MONOTONIC, the clock the C consumer stamps its last event with
    child.stdin.write(b"g")
    child.stdin.close()
    producer_s = finish_child(child)
    res = json.loads(cons.stdout.readline())
    cons.wait(timeout=30)
    res["producer_s"] = producer_s
    res["span_s"] = res["t_last"] - t_go
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
        buf: EventReader
        if mode == "ring":
            buf = cast(RingBuffer, obj.reader("events"))
        else:
            buf = cast(PerfBuffer, obj.reader("pevents")).open(pages=PERF_PAGES, wakeup_events=wakeup_events,
                                                          flush_interval=FLUSH_INTERVAL)
        prog = obj.progs.ring_getpid if mode == "ring" else obj.progs.perf_getpid
        with prog.attach():
            received = counter_sum = 0
            last = 0.0
            cpu0 = cpu_seconds()
            assert child.stdin is not None
            t_go = time.monotonic()
            child.stdin.write(b"g")
            child.stdin.close()
            for batch in buf.read(timeout=2.0):
                assert isinstance(batch, np.ndarray)  # both buffers declare the record type
                received += len(batch)
                counter_sum += int(batch["counter"].sum())
                last = time.monotonic()
                if received + buf.dropped >= n:
                    break
            cpu = cpu_seconds() - cpu0
        producer_s = finish_child(child)
        lost = buf.lost if isinstance(buf, PerfBuffer) else 0
        return {"received": received, "lost": lost, "dropped": buf.dropped, "cpu_s": cpu,
                "span_s": last - t_go, "counter_sum": counter_sum, "producer_s": producer_s}


def summarize(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    for r in runs:
        # the kernel's LOST records can lag the BPF-side count of failed outputs: take the larger
        r["lost_any"] = max(r["lost"], r["dropped"])
        r["cpu_s_per_m"] = r["cpu_s"] / r["received"] * 1e6 if r["received"] else float("nan")
    med = {k: statistics.median(r[k] for r in runs) for k in ("received", "lost", "dropped", "lost_any", "cpu_s",
                                                              "cpu_s_per_m", "span_s", "producer_s")}
    med["events_per_s"] = statistics.median(r["received"] / r["span_s"] for r in runs if r["span_s"] > 0)
    med["producer_events_per_s"] = n / med["producer_s"]
    med["all_checksums_ok"] = all(r["counter_sum"] == n * (n - 1) // 2 for r in runs if r["received"] == n)
    med["runs"] = runs
    return med


CAPTION = """\
  events/s: received / (time from the producer's start to the consumer holding the last event).
  With 0 lost it is set by the producer ('producer ev/s': N over the getpid loop's own time, which
  includes the BPF program and the kernel wakeups: per sample or batched for perf; for the ring
  buffer one per record submitted while the reader is caught up, so a faster reader can slow the
  producer) plus how late the consumer gets the last events (batched: up to one look interval).
  So rate/C says whether the consumer keeps up, not whether it is as cheap. The consumer's own
  cost: cpu s/M (CPU seconds per million events received) and cpu/C. Each bpfkit row is compared
  with the C row of the same kernel wakeup configuration (perf: a wakeup per sample, or batched: a
  wakeup every {wm} KiB plus a look every {fl} ms)."""


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
    print(CAPTION.format(wm=WATERMARK // 1024, fl=int(FLUSH_INTERVAL * 1000)))
    for mode in args.modes.split(","):
        # (name, consumer, perf wakeup_events, the C row it is compared with): batched is
        # bpfkit's default for perf buffers, per-sample libbpf's
        if mode == "perf":
            variants = [("C batched", "c", 0, "C batched"), ("bpfkit batched", "bpfkit", 0, "C batched"),
                        ("C per-sample", "c", 1, "C per-sample"), ("bpfkit per-sample", "bpfkit", 1, "C per-sample")]
        else:
            variants = [("C libbpf", "c", 0, "C libbpf"), ("bpfkit", "bpfkit", 0, "C libbpf")]
        runs: dict[str, list[dict[str, Any]]] = {v[0]: [] for v in variants}
        for _ in range(args.runs):  # interleaved so that machine noise hits all alike
            for name, who, wakeup, _c in variants:
                runs[name].append(run_c(paths, mode, n, wakeup) if who == "c" else run_bpfkit(paths, mode, n, wakeup))
        summ = {name: summarize(r, n) for name, r in runs.items()}
        results[mode] = summ
        print(f"\n{mode} buffer, {n:,} events (median of {args.runs}):")
        print(f"  {'consumer':18} {'received':>10} {'lost':>9} {'events/s':>12} {'producer ev/s':>13} {'rate/C':>7}"
              f" {'cpu s/M':>8} {'cpu/C':>6}")
        for name, _who, _wakeup, cname in variants:
            r, c = summ[name], summ[cname]
            r["compared_with"] = cname
            r["rate_ratio"] = r["events_per_s"] / c["events_per_s"]
            r["cpu_ratio"] = r["cpu_s_per_m"] / c["cpu_s_per_m"] if c["cpu_s_per_m"] else float("nan")
            print(f"  {name:18} {r['received']:>10,.0f} {r['lost_any']:>9,.0f} {r['events_per_s']:>12,.0f} "
                  f"{r['producer_events_per_s']:>13,.0f} {r['rate_ratio']:>6.2f}x {r['cpu_s_per_m']:>8.3f} "
                  f"{r['cpu_ratio']:>5.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
