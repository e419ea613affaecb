"""Events at kernel speed: bpfkit's ring/perf buffer readers against C libbpf consumers
(ring_buffer__poll / perf_buffer__poll) built from the same BPF object, in the same run.

Workload: a C child makes N getpid() calls (default 2,000,000); a tracepoint program filtered to
its pid sends one 32-byte event per call. The child runs pinned to one CPU, the consumer to the
other. Groups (``--groups``), each a C row and a bpfkit row on the same object:

  ring           BPFKIT_RINGBUF (16 MiB), the reader's dtype from the object, a wake-up whenever
                 the reader has caught up (the kernel's default)
  ring-adaptive  the same ring, submitted with bpfkit.h's BPFKIT_SUBMIT (adaptive wake-ups)
  ring-nowake    the same ring, never a wake-up (readers look every 10 ms): what the program costs
                 the traced process without any wake-up, the floor for ring-adaptive's loop time
  plain          a plain libbpf ring buffer (4 MiB, reserve + submit(e, 0)), read with no dtype;
                 the record type is not in the object's BTF (RawBatch of fixed-size records)
  plain-named    the same, the program names the type (`const struct event *unused`): the reader
                 finds it in the BTF and hands out structured arrays
  plain-wake64   plain-named with BPF_RB_NO_WAKEUP except every 64th record
  perf           perf buffer (16 MiB per CPU), a wake-up per sample (libbpf's and bcc's default)
  perf-batched   perf buffer, bpfkit's default wake-ups (a quarter-ring watermark, at most 1 MiB, and
                 a look every 50 ms); C via perf_buffer__new_raw with the same settings
  none           the getpid loop with nothing attached (the untraced producer time), and with a
                 program that does nothing (empty_getpid.bpf.c): the kernel's floor for any traced loop

Every consumer looks without a wake-up every 10 ms (ring; 2 ms for the C consumer of
ring-adaptive, bpfkit.h's wake-up window) / 50 ms (perf batched), as records submitted without one
(NO_WAKEUP, adaptive, watermark) need; bpfkit's reader of an adaptive ring looks by itself.

Reported per row, median [min-max] of --runs, runs interleaved so that machine noise hits every row
alike: events received; lost (every failure to send, each counted once: ring = reserve failures,
perf = kernel-counted full-ring losses + other failed outputs); events/s from the producer's start
to the consumer holding the last event; the producer loop's own time; consumer CPU seconds per
million events; and the bpfkit/C ratios of the medians (rate and CPU).

    sudo .venv/bin/python bench/bench_events.py [--events 2000000] [--runs 3] [--groups ring,plain]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple, Optional

import numpy as np

HERE = Path(__file__).resolve().parent

if "--child" not in sys.argv:  # a child measures the bpfkit on its PYTHONPATH (--before)
    sys.path.insert(0, str(HERE.parent))

import bpfkit  # noqa: E402
from bpfkit.compiler import cache_root  # noqa: E402
from bpfkit.events import EventReader, PerfBuffer, RawBatch  # noqa: E402

PERF_PAGES = (16 << 20) // 4096  # 16 MiB per CPU, like the ring buffer
PERF_FLUSH = 0.05  # bpfkit's default look without a wakeup, given to the batched C consumer too
RING_FLUSH = 0.01  # a look without a wakeup for ring buffers, both consumers
# both consumers give up after this long without records (a loaded machine can starve the producer
# for seconds; normally they stop once received + lost reaches N)
IDLE_LIMIT = 30.0
ADAPTIVE_FLUSH = 0.002  # bpfkit.h's default wake-up window: the C consumer looks that often
# bpfkit's default watermark for PERF_PAGES (wakeup_events=0, watermark=None)
WATERMARK = PerfBuffer._wake_config(PERF_PAGES, 0, None)[1]
EVENT = np.dtype([("pid", "<u4"), ("cpu", "<u4"), ("ts", "<u8"), ("counter", "<u8"), ("spare", "<u8")])


class Group(NamedTuple):
    obj: str          # key of build()'s objects
    c_mode: str       # events_consumer's mode
    reader: str       # map name
    prog: str
    wake_every: int = 0
    perf_wakeup: int = 0   # PerfBuffer wakeup_events (1: per sample, 0: batched)
    caption: str = ""


GROUPS = {
    "ring": Group("events", "ring", "events", "ring_getpid", caption="BPFKIT_RINGBUF 16 MiB, default wake-ups"),
    "ring-adaptive": Group("events_adaptive", "ring", "events", "ring_getpid",
                           caption="BPFKIT_RINGBUF 16 MiB, BPFKIT_SUBMIT adaptive wake-ups"),
    "ring-nowake": Group("events_nowake", "ring", "events", "ring_getpid",
                         caption="BPFKIT_RINGBUF 16 MiB, BPF_RB_NO_WAKEUP always (readers only look)"),
    "plain": Group("plain", "plain", "plain", "plain_getpid",
                   caption="plain libbpf ring 4 MiB, no dtype, type not in BTF"),
    "plain-named": Group("plain_named", "plain", "plain", "plain_getpid",
                         caption="plain libbpf ring 4 MiB, no dtype, type named in BTF"),
    "plain-wake64": Group("plain_named", "plain", "plain", "plain_getpid", wake_every=64,
                          caption="plain ring 4 MiB, no dtype, NO_WAKEUP except every 64th"),
    "perf": Group("events", "perf", "pevents", "perf_getpid", perf_wakeup=1,
                  caption="perf buffer 16 MiB/CPU, a wake-up per sample"),
    "perf-batched": Group("events", "perf-batched", "pevents", "perf_getpid", perf_wakeup=0,
                          caption="perf buffer 16 MiB/CPU, batched wake-ups"),
}


def build(out: Path) -> dict[str, Path]:
    """The BPF objects, the C consumer and the trigger, built into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        raise SystemExit("needs a C compiler (cc) and libbpf-dev for the baseline")
    paths = {
        "events": bpfkit.compile(HERE / "events_bench.bpf.c"),
        "events_adaptive": bpfkit.compile(HERE / "events_bench.bpf.c", cflags=["-DADAPTIVE"]),
        "events_nowake": bpfkit.compile(HERE / "events_bench.bpf.c", cflags=["-DNOWAKE"]),
        "plain": bpfkit.compile(HERE / "events_plain.bpf.c"),
        "empty": bpfkit.compile(HERE / "empty_getpid.bpf.c"),
        "plain_named": bpfkit.compile(HERE / "events_plain.bpf.c", cflags=["-DNAME_RECORD_TYPE"]),
    }
    for name, libs in (("events_consumer", ["-lbpf", "-lelf", "-lz"]), ("getpid_loop", [])):
        exe = out / name
        src = HERE / f"{name}.c"
        if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
            subprocess.run([cc, "-O2", "-o", str(exe), str(src), *libs], check=True)
        paths[name] = exe
    return paths


_ALLOWED = sorted(os.sched_getaffinity(0))  # taken once: run_bpfkit pins this process to one CPU


def cpus() -> tuple[int, int]:
    """(consumer CPU, producer CPU): two different CPUs when there are two."""
    return _ALLOWED[0], _ALLOWED[-1]


def start_child(paths: dict[str, Path], n: int, cpu: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([str(paths["getpid_loop"]), str(n)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))


def finish_child(child: subprocess.Popen[bytes]) -> float:
    assert child.stdout is not None
    out = child.stdout.read()
    child.wait(timeout=120)
    return int(out) / 1e9


def run_none(paths: dict[str, Path], g: Optional[Group], n: int) -> dict[str, Any]:
    """The loop with nothing attached."""
    child = start_child(paths, n, cpus()[1])
    assert child.stdin is not None
    child.stdin.write(b"g")
    child.stdin.close()
    s = finish_child(child)
    return {"received": 0, "lost": 0, "cpu_s": 0.0, "span_s": s, "counter_sum": 0, "producer_s": s}


def run_empty(paths: dict[str, Path], g: Optional[Group], n: int) -> dict[str, Any]:
    """The loop with a program that does nothing attached: the kernel's own cost of a BPF program
    on this tracepoint, the floor under every traced loop time."""
    with bpfkit.load(paths["empty"]) as obj, obj.attach():
        return run_none(paths, g, n)


def run_c(paths: dict[str, Path], g: Group, n: int) -> dict[str, Any]:
    ccpu, pcpu = cpus()
    child = start_child(paths, n, pcpu)
    flush = PERF_FLUSH if g.c_mode.startswith("perf") else ADAPTIVE_FLUSH if g.obj == "events_adaptive" else RING_FLUSH
    cons = subprocess.Popen([str(paths["events_consumer"]), g.c_mode, str(paths[g.obj]), str(child.pid), str(n),
                             str(PERF_PAGES), str(WATERMARK), str(int(flush * 1000)), str(g.wake_every), str(IDLE_LIMIT)],
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
    res["lost"] += res.pop("dropped")
    res["producer_s"] = producer_s
    res["span_s"] = res["t_last"] - t_go
    return res


def cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_bpfkit(paths: dict[str, Path], g: Group, n: int, tree: Optional[str] = None) -> dict[str, Any]:
    """bpfkit's reader, in a child process importing bpfkit from ``tree`` (default: this one), so
    that an older bpfkit can be measured in the same run (``--before``)."""
    gname = next(k for k, v in GROUPS.items() if v == g)
    env = dict(os.environ, PYTHONPATH=tree or str(HERE.parent))
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", gname, str(n),
                          json.dumps({k: str(v) for k, v in paths.items()})],
                         env=env, stdout=subprocess.PIPE, text=True, check=True, cwd="/")
    return dict(json.loads(out.stdout.splitlines()[-1]))


def child_bpfkit(paths: dict[str, Path], g: Group, n: int) -> dict[str, Any]:
    ccpu, pcpu = cpus()
    os.sched_setaffinity(0, {ccpu})
    child = start_child(paths, n, pcpu)
    spec = bpfkit.open(paths[g.obj])
    spec.rodata.target_pid = child.pid
    if g.wake_every:
        spec.rodata.wake_every = g.wake_every
    for name, p in spec.programs.items():
        p.autoload = name == g.prog
    with spec.load() as obj:
        buf: EventReader = obj.reader(g.reader)
        if isinstance(buf, PerfBuffer):
            buf.open(pages=PERF_PAGES, wakeup_events=g.perf_wakeup, flush_interval=PERF_FLUSH)
        flush = PERF_FLUSH if isinstance(buf, PerfBuffer) else RING_FLUSH

        def lost() -> int:
            if g.obj.startswith("plain"):
                return int(obj.bss.plain_drops)
            return buf.dropped + (buf.lost if isinstance(buf, PerfBuffer) else 0)

        with obj.progs[g.prog].attach():
            received = counter_sum = 0
            last = 0.0
            kind = "none"
            cpu0 = cpu_seconds()
            assert child.stdin is not None
            t_go = time.monotonic()
            child.stdin.write(b"g")
            child.stdin.close()
            # read() ends after `flush` without records: after one last look, which takes records
            # that came without a wake-up; then go on reading until everything is accounted for.
            # Losses are looked at when idle, as the C consumer does.
            seen_lost = 0
            while received + seen_lost < n and time.monotonic() - max(last, t_go) < IDLE_LIMIT:
                for batch in buf.read(timeout=flush):
                    arr = batch.view(EVENT) if isinstance(batch, RawBatch) else batch
                    received += len(arr)
                    counter_sum += int(arr["counter"].sum())
                    last = time.monotonic()
                    kind = type(batch).__name__
                    if received + seen_lost >= n:
                        break
                seen_lost = lost()
            cpu = cpu_seconds() - cpu0
        producer_s = finish_child(child)
        return {"received": received, "lost": lost(), "cpu_s": cpu, "span_s": last - t_go,
                "counter_sum": counter_sum, "producer_s": producer_s, "batch_type": kind}


def summarize(runs: list[dict[str, Any]], n: int) -> dict[str, Any]:
    for r in runs:
        r["cpu_s_per_m"] = r["cpu_s"] / r["received"] * 1e6 if r["received"] else float("nan")
        r["events_per_s"] = r["received"] / r["span_s"] if r["span_s"] > 0 else float("nan")
    out: dict[str, Any] = {}
    for k in ("received", "lost", "cpu_s", "cpu_s_per_m", "span_s", "producer_s", "events_per_s"):
        vals = [r[k] for r in runs]
        out[k] = statistics.median(vals)
        out[k + "_range"] = (min(vals), max(vals))
    out["all_checksums_ok"] = all(r["counter_sum"] == n * (n - 1) // 2 for r in runs if r["received"] == n)
    out["runs"] = runs
    return out


def fmt_range(v: float, rng: tuple[float, float], f: str) -> str:
    return f"{v:{f}} [{rng[0]:{f}}-{rng[1]:{f}}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--groups", default="none,ring,plain,plain-named,plain-wake64,perf,perf-batched,ring-adaptive")
    ap.add_argument("--only", default="c,bpfkit", help="consumers to run: c, bpfkit")
    # a build dir of this tree's own: other trees' bench_events.py build their consumer too
    tree = hashlib.sha256(str(HERE).encode()).hexdigest()[:12]
    ap.add_argument("--build-dir", default=str(cache_root() / "bench" / f"events-{tree}"))
    ap.add_argument("--before", help="also measure the bpfkit tree at this path (e.g. an unpacked older "
                    "commit: git archive COMMIT | tar -x -C DIR) as consumer 'before'")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        gname, count, paths_json = args.child
        res = child_bpfkit({k: Path(v) for k, v in json.loads(paths_json).items()}, GROUPS[gname], int(count))
        print(json.dumps(res))
        return 0
    if os.geteuid() != 0:
        raise SystemExit("run as root (loads BPF programs)")
    paths = build(Path(args.build_dir))
    n = args.events
    who = args.only.split(",")
    rows: list[tuple[str, str, Any, Optional[Group]]] = []  # (group, consumer, runner, group spec)
    for gname in args.groups.split(","):
        if gname == "none":
            rows.append(("none", "untraced", run_none, None))
            rows.append(("none", "empty-prog", run_empty, None))
            continue
        g = GROUPS[gname]
        rows += [(gname, w, run_c if w == "c" else run_bpfkit, g) for w in ("c", "bpfkit") if w in who]
        if args.before:
            rows.append((gname, "before", lambda p, g, n: run_bpfkit(p, g, n, args.before), g))
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {(r[0], r[1]): [] for r in rows}
    for i in range(args.runs):  # interleaved so that machine noise hits all alike
        for gname, w, fn, g in rows:
            runs[(gname, w)].append(fn(paths, g, n))
            print(f"# run {i + 1}/{args.runs} {gname}/{w}: {json.dumps(runs[(gname, w)][-1])}", file=sys.stderr)
    summ = {k: summarize(v, n) for k, v in runs.items()}
    untraced = summ.get(("none", "untraced"))
    empty = summ.get(("none", "empty-prog"))
    print(f"{n:,} events, median [min-max] of {args.runs} runs, consumer on CPU {cpus()[0]}, producer on "
          f"CPU {cpus()[1]}, kernel {os.uname().release}")
    if untraced:
        print(f"untraced getpid loop: {fmt_range(untraced['producer_s'], untraced['producer_s_range'], '.3f')} s")
    if untraced and empty:
        ratios = [a["producer_s"] / b["producer_s"] for a, b in zip(empty["runs"], untraced["runs"])]
        empty["loop_vs_untraced"] = statistics.median(ratios)
        print(f"  with an empty program on the tracepoint: "
              f"{fmt_range(empty['producer_s'], empty['producer_s_range'], '.3f')} s = "
              f"{empty['loop_vs_untraced']:.2f}x untraced (the kernel's floor for any traced loop)")
    head = (f"{'group':14} {'consumer':8} {'received':>10} {'lost':>8} {'events/s (M)':>19} {'rate/C':>6} "
            f"{'cpu s/M':>19} {'cpu/C':>6} {'loop s':>18} {'loop/floor':>10}")
    print(head)
    results: dict[str, Any] = {"events": n, "cpus": list(cpus()), "kernel": os.uname().release, "rows": {}}
    floor = summ.get(("ring-nowake", "c"))  # the program's own cost, no wake-ups (ring groups)
    for (gname, w), r in summ.items():
        if gname == "none":
            continue
        # each run's loop time over the same run's no-wake-up loop (C consumer): the runs are
        # interleaved, so the ratio run by run cancels most of the machine's drift
        rel = ""
        if floor and gname.startswith("ring"):
            ratios = [a["producer_s"] / b["producer_s"] for a, b in zip(r["runs"], floor["runs"])]
            r["loop_vs_floor"] = statistics.median(ratios)
            rel = f"{r['loop_vs_floor']:.2f}x"
        c = summ.get((gname, "c"))
        rate = r["events_per_s"] / c["events_per_s"] if c else float("nan")
        cpu = r["cpu_s_per_m"] / c["cpu_s_per_m"] if c else float("nan")
        r["rate_ratio"], r["cpu_ratio"] = rate, cpu
        if untraced:
            r["loop_vs_untraced"] = r["producer_s"] / untraced["producer_s"]
        ev = fmt_range(r["events_per_s"] / 1e6, tuple(x / 1e6 for x in r["events_per_s_range"]), ".2f")  # type: ignore[arg-type]
        print(f"{gname:14} {w:8} {r['received']:>10,.0f} {r['lost']:>8,.0f} {ev:>19} {rate:>5.2f}x "
              f"{fmt_range(r['cpu_s_per_m'], r['cpu_s_per_m_range'], '.3f'):>19} {cpu:>5.2f}x "
              f"{fmt_range(r['producer_s'], r['producer_s_range'], '.2f'):>18} {rel:>10}"
              + ("" if r["all_checksums_ok"] else "  CHECKSUM MISMATCH"))
        results["rows"][f"{gname}/{w}"] = r
    if untraced:
        results["rows"]["none/untraced"] = untraced
        if empty:
            results["rows"]["none/empty-prog"] = empty
        print("  loop s: the traced getpid loop's own time (untraced above); loop/floor: over the same run's "
              "ring-nowake loop (C consumer), the program's cost without any wake-up")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
