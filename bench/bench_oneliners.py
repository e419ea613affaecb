"""The one-liner tools against what people use today, in the same run (issue 16's goals):

1. **Time to first event**: ``bpfkit trace`` vs bcc's ``trace-bpfcc`` (which compiles C at start),
   for a tracepoint and a uprobe, from exec to the first event line on a pty (a trigger fires the
   probe every millisecond). Goal: bpfkit >= 5x faster.
2. **Decode rate**: ``bpfkit.trace("t:syscalls:sys_enter_getpid")`` consuming a child's 2,000,000
   getpid() calls as numpy batches. Goal: >= 1M events/s, nothing lost.
3. **BPF-side filter cost**: a loop calling a function (or a syscall) whose filter never passes,
   bare and under bcc's and bpfkit's ``trace`` with the same filter: added ns per call. Goal:
   bpfkit <= bcc.
4. **strace -c**: ``dd if=/dev/zero of=/dev/null bs=1 count=500000`` bare, under strace -c and under
   ``bpfkit strace -c`` (dd's own elapsed time), plus the per-syscall counts of both tools compared.
   Goal: bpfkit's slowdown <= 1/20 of strace's, exact counts.

Rounds are interleaved (tool order rotating) and medians reported; the VM is shared, so read the
ratios, not the absolute figures.

    sudo .venv/bin/python bench/bench_oneliners.py [--runs 7] [--only ttfe,decode,filter,strace] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import pty
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

import bpfkit  # noqa: E402
from bpfkit.testing import fixtures  # noqa: E402

BPFKIT = str(Path(sys.executable).with_name("bpfkit"))
# Tools run as installed: Python may keep its byte code (this sandbox sets PYTHONDONTWRITEBYTECODE,
# which would make every bpfkit start recompile its modules; bcc's are precompiled by Debian).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
BCC_TRACE = shutil.which("trace-bpfcc") or "/usr/sbin/trace-bpfcc"
TRIGGER = r"""
import ctypes, sys, time
libc = ctypes.CDLL(None)
print("ready", flush=True)
while True:
    libc.syscall(110)   # getppid: the tracepoint
    libc.getppid()      # the libc function: the uprobe (and the tracepoint again)
    time.sleep(0.001)
"""


def median(xs: list[float]) -> float:
    xs = [x for x in xs if x == x]  # a run whose CPU time could not be read is left out
    return statistics.median(xs) if xs else float("nan")


# -- 1. time to first event --------------------------------------------------------------------

def first_event(argv: list[str], match: str, timeout: float = 60.0) -> tuple[float, float]:
    """Seconds from exec of ``argv`` (stdout on a pty, as in a terminal) to the first line
    containing ``match`` after the header, and the tool's CPU seconds (user + system, from exec to
    its exit right after: the part least disturbed by other load); the tool is stopped with SIGINT."""
    master, slave = pty.openpty()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, stdout=slave, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=ENV)
    os.close(slave)
    buf = b""
    got = None
    cpu = float("nan")
    try:
        deadline = t0 + timeout
        while got is None and time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.5)
            if not r:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            buf += chunk
            lines = buf.split(b"\n")
            for ln in lines[1:-1] if len(lines) > 2 else []:
                if match.encode() in ln:
                    got = time.monotonic() - t0
                    break
            if got is None:
                for ln in lines[:-1]:
                    if match.encode() in ln and not ln.startswith(b"PID") and b"TIME" not in ln:
                        got = time.monotonic() - t0
                        break
    finally:
        for _ in range(20):
            with_signal(proc, signal.SIGINT)
            deadline = time.monotonic() + 3
            done = False
            while time.monotonic() < deadline:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    cpu = ru.ru_utime + ru.ru_stime
                    proc.returncode = status
                    done = True
                    break
                time.sleep(0.01)
            if done:
                break
        if proc.returncode is None:
            with_signal(proc, signal.SIGKILL)
            proc.wait()
        os.close(master)
    if got is None:
        raise RuntimeError(f"{argv[0]}: no event line within {timeout} s; output: {buf[-500:]!r}")
    return got, cpu


def with_signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def bench_ttfe(runs: int) -> dict[str, Any]:
    trig = subprocess.Popen([sys.executable, "-c", TRIGGER], stdout=subprocess.PIPE, text=True)
    assert trig.stdout is not None
    trig.stdout.readline()
    pid = str(trig.pid)
    cases = {
        "tracepoint t:syscalls:sys_enter_getppid": ("t:syscalls:sys_enter_getppid", "sys_enter_getppid"),
        "uprobe p:c:getppid": ("p:c:getppid", "getppid"),
    }
    out: dict[str, Any] = {}
    try:
        for label, (probe, match) in cases.items():
            times: dict[str, list[float]] = {"bpfkit": [], "bcc": []}
            cpus: dict[str, list[float]] = {"bpfkit": [], "bcc": []}
            failures: dict[str, list[str]] = {"bpfkit": [], "bcc": []}
            cmds = {"bpfkit": [BPFKIT, "trace", "-p", pid, probe], "bcc": [BCC_TRACE, "-p", pid, probe]}
            for i in range(runs + 1):  # run 0 warms the page cache, not counted
                order = list(cmds) if i % 2 else list(reversed(cmds))
                for name in order:
                    try:
                        t, cpu = first_event(cmds[name], match)
                    except RuntimeError as e:  # e.g. bcc's "Failed to attach BPF to uprobe" now and then
                        failures[name].append(str(e)[:200])
                        print(f"# {label}: {name} run {i} failed: {e}", file=sys.stderr)
                        continue
                    if i:
                        times[name].append(t)
                        cpus[name].append(cpu)
            b, c = median(times["bpfkit"]), median(times["bcc"])
            bc, cc = median(cpus["bpfkit"]), median(cpus["bcc"])
            out[label] = {"bpfkit_s": b, "bcc_s": c, "bcc_over_bpfkit": c / b, "runs": runs,
                          "bpfkit_cpu_s": bc, "bcc_cpu_s": cc, "cpu_bcc_over_bpfkit": cc / bc,
                          "bpfkit_all": times["bpfkit"], "bcc_all": times["bcc"], "failures": failures}
    finally:
        trig.kill()
        trig.wait()
    print("\n## Time to first event (exec -> first event line; median of %d)" % runs)
    print("| probe | bpfkit trace | bcc trace | bcc / bpfkit | CPU: bpfkit | CPU: bcc | CPU bcc / bpfkit |")
    print("|---|---|---|---|---|---|---|")
    for label, r in out.items():
        print(f"| {label} | {r['bpfkit_s'] * 1000:.0f} ms | {r['bcc_s'] * 1000:.0f} ms | "
              f"**{r['bcc_over_bpfkit']:.1f}x** | {r['bpfkit_cpu_s'] * 1000:.0f} ms | {r['bcc_cpu_s'] * 1000:.0f} ms | "
              f"{r['cpu_bcc_over_bpfkit']:.1f}x |" + (f" (failed runs: bpfkit {len(r['failures']['bpfkit'])}, "
                                                     f"bcc {len(r['failures']['bcc'])})" if any(r['failures'].values())
                                                     else ""))
    return out


# -- 2. decode rate ------------------------------------------------------------------------------

def build_getpid_loop() -> Path:
    out = Path(os.environ.get("BPFKIT_CACHE_DIR", Path.home() / ".cache" / "bpfkit")) / "bench" / "getpid_loop"
    out.parent.mkdir(parents=True, exist_ok=True)
    src = HERE / "getpid_loop.c"
    if not out.exists() or out.stat().st_mtime < src.stat().st_mtime:
        subprocess.run([shutil.which("cc") or "gcc", "-O2", "-o", str(out), str(src)], check=True)
    return out


def decode_once(n: int, ring_bytes: int, drain_after: bool) -> dict[str, float]:
    """``n`` getpid() events of a child through bpfkit.trace's engine. Live: consumed while the
    child runs (events/s is then the producer's pace: the traced getpid loop). ``drain_after``:
    the child finishes first (the ring holds all events), then the timed part is the consumer
    alone, from the first drain to the last event decoded: the decode rate."""
    from bpfkit.probes.spec import parse_probe
    from bpfkit.tools.common import Scope
    from bpfkit.tools.oneliner import Tracer, build_plan

    exe = build_getpid_loop()
    child = subprocess.Popen([str(exe), str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdin is not None
    plan = build_plan(parse_probe("t:syscalls:sys_enter_getpid"))
    got = 0
    with Tracer([plan], scope=Scope(pid=child.pid), ring_bytes=ring_bytes) as t:
        t_go = time.monotonic()
        child.stdin.write("x")
        child.stdin.flush()
        if drain_after:
            child.wait()
            t_go = time.monotonic()
        cpu0 = time.process_time()
        t_last = t_go
        for _, batch in t.batches(timeout=1.0):
            got += len(batch)
            t_last = time.monotonic()
            if got >= n:
                break
        cpu = time.process_time() - cpu0
        lost = t.dropped
        last = batch
    out, _ = child.communicate()
    assert last.dtype.names is not None and "pid" in last.dtype.names  # decoded records, not bytes
    loop_ns = int(out.strip() or 0)
    return {"received": got, "lost": lost, "wall_s": t_last - t_go, "events_per_s": got / max(t_last - t_go, 1e-9),
            "cpu_s_per_million": cpu / max(got, 1) * 1e6, "workload_s": loop_ns / 1e9}


def bench_decode(runs: int, n: int, ring_bytes: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    print(f"\n## Decode: bpfkit.trace('t:syscalls:sys_enter_getpid') engine, {n:,} getpid() of a child "
          f"(median of {runs}; 72-byte records)")
    print("| mode | received | lost | events/s | consumer CPU s per M | traced workload loop |")
    print("|---|---|---|---|---|---|")
    for mode, drain_after, ring in (("live (producer-paced)", False, ring_bytes),
                                    ("decode rate (ring filled first)", True, 256 << 20)):
        rs = [decode_once(n, ring, drain_after) for _ in range(runs)]
        med = {k: median([r[k] for r in rs]) for k in rs[0]}
        out[mode] = {"median": med, "runs": rs, "ring_mib": ring >> 20}
        print(f"| {mode}, {ring >> 20} MiB ring | {med['received']:,.0f} | {med['lost']:.0f} | "
              f"**{med['events_per_s'] / 1e6:.2f} M/s** | {med['cpu_s_per_million']:.3f} | {med['workload_s']:.2f} s |")
    return out


# -- 3. filter cost ------------------------------------------------------------------------------

def prog_ns(names: tuple[str, ...], runs: int) -> tuple[float, int]:
    """(ns per run, runs) of the loaded program named one of ``names`` that ran exactly ``runs``
    times (BPF stats on; this bpftool lists no owner pids, so the count says it is ours)."""
    r = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True)
    for prog in json.loads(r.stdout or "[]"):
        if prog.get("name") in names and prog.get("run_cnt") == runs:
            return prog.get("run_time_ns", 0) / runs, runs
    return float("nan"), 0


def loop_ns(argv_tool: Optional[list[str]], n: int, env: dict[str, str], target: str, match_header: str,
            stats: Optional[list[tuple[float, int]]] = None) -> int:
    """ol_f2's loop time (ns) in the fixture, bare or while ``argv_tool`` (given ``-p PID``) traces it;
    the tool's BPF run time per call is appended to ``stats``."""
    with fixtures.spawn(target, "0", str(n), timeout=120) as proc:
        tool = None
        master = -1
        if argv_tool is not None:
            master, slave = pty.openpty()
            tool = subprocess.Popen([a.replace("PID", str(proc.pid)) for a in argv_tool], stdout=slave,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            os.close(slave)
            buf = b""
            deadline = time.monotonic() + 60
            while match_header.encode() not in buf and time.monotonic() < deadline:
                r, _, _ = select.select([master], [], [], 0.5)
                if r:
                    buf += os.read(master, 65536)
            if match_header.encode() not in buf:
                raise RuntimeError(f"{argv_tool[0]} did not start: {buf!r}")
        out = proc.finish()
        if tool is not None:
            if stats is not None:
                stats.append(prog_ns(("ol_fn", "probe_ol_f2_1"), n))
            for _ in range(5):
                with_signal(tool, signal.SIGINT)
                try:
                    tool.wait(timeout=3)
                    break
                except subprocess.TimeoutExpired:
                    pass
            if tool.poll() is None:
                with_signal(tool, signal.SIGKILL)
                tool.wait()
            os.close(master)
    return int(out.split()[3])


def bench_filter(runs: int, n: int) -> dict[str, Any]:
    target = str(fixtures.build_fixture("oneliner_target"))
    env_prev = os.environ.get("OL_NO_GETPPID")
    os.environ["OL_NO_GETPPID"] = "1"
    probe = f'p:{target}:ol_f2(long size) (size > 4096) "%d", size'
    cmds: dict[str, Optional[list[str]]] = {
        "bare": None,
        "bcc": [BCC_TRACE, "-p", "PID", probe],
        "bpfkit": [BPFKIT, "trace", "-p", "PID", probe],
    }
    times: dict[str, list[int]] = {k: [] for k in cmds}
    bpf_ns: dict[str, list[tuple[float, int]]] = {k: [] for k in cmds}
    from bpfkit import _sys as sc

    stats_fd = sc.enable_stats()  # run time of every program, for the BPF-side cost alone
    try:
        for i in range(runs + 1):
            order = list(cmds)[i % 3:] + list(cmds)[:i % 3]
            for name in order:
                got: list[tuple[float, int]] = []
                t = loop_ns(cmds[name], n, {}, target, "PID", got)
                if i:
                    times[name].append(t)
                    bpf_ns[name] += got
    finally:
        stats_fd.close()
        if env_prev is None:
            os.environ.pop("OL_NO_GETPPID", None)
    bare = median([float(x) for x in times["bare"]])
    res = {k: {"loop_ns_median": median([float(x) for x in v]), "all": v} for k, v in times.items()}
    added = {k: (res[k]["loop_ns_median"] - bare) / n for k in ("bcc", "bpfkit")}
    prog = {k: median([x for x, c in bpf_ns[k] if c == n]) for k in ("bcc", "bpfkit")}
    print(f"\n## BPF-side filter cost: uprobe on ol_f2(long size), filter size > 4096 never true, {n:,} calls "
          f"(median of {runs})")
    print("| | loop time | added per call | vs bcc | BPF program per call (bpf_stats) | vs bcc |")
    print("|---|---|---|---|---|---|")
    print(f"| bare | {bare / 1e6:.1f} ms | | | | |")
    for k in ("bcc", "bpfkit"):
        print(f"| {k} trace | {res[k]['loop_ns_median'] / 1e6:.1f} ms | {added[k]:.0f} ns | "
              f"{added[k] / added['bcc']:.2f}x | {prog[k]:.0f} ns | {prog[k] / prog['bcc']:.2f}x |")
    return {"loop": res, "added_ns_per_call": added, "bpf_ns_per_call": prog, "calls": n}


# -- 4. strace -c ----------------------------------------------------------------------------------

DD = ["dd", "if=/dev/zero", "of=/dev/null", "bs=1", "count=500000"]
_COPIED = re.compile(r"copied, ([\d.]+) s")
_ROW = re.compile(r"^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(\d*)\s+(\S+)$")


def _table(text: str) -> dict[str, tuple[int, int]]:
    out = {}
    for line in text.splitlines():
        m = _ROW.match(line)
        if m and m.group(3) != "total":
            out[m.group(3)] = (int(m.group(1)), int(m.group(2) or 0))
    return out


def dd_under(prefix: list[str]) -> tuple[float, dict[str, tuple[int, int]]]:
    r = subprocess.run([*prefix, *DD], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    m = _COPIED.search(r.stderr)
    if r.returncode != 0 or not m:
        raise RuntimeError(f"{prefix or 'dd'} failed: {r.stderr[-500:]}")
    return float(m.group(1)), _table(r.stderr)


def bench_strace(runs: int) -> dict[str, Any]:
    cmds = {"bare": [], "strace": ["strace", "-c"], "bpfkit": [BPFKIT, "strace", "-c"]}
    times: dict[str, list[float]] = {k: [] for k in cmds}
    same = []
    for i in range(runs):
        order = list(cmds)[i % 3:] + list(cmds)[:i % 3]
        tables = {}
        for name in order:
            t, table = dd_under(cmds[name])
            times[name].append(t)
            tables[name] = table
        same.append(tables["strace"] == tables["bpfkit"])
        if tables["strace"] != tables["bpfkit"]:
            diff = {k: (tables["strace"].get(k), tables["bpfkit"].get(k))
                    for k in set(tables["strace"]) | set(tables["bpfkit"])
                    if tables["strace"].get(k) != tables["bpfkit"].get(k)}
            print(f"# round {i}: counts differ: {diff}", file=sys.stderr)
    med = {k: median(v) for k, v in times.items()}
    slow = {k: med[k] / med["bare"] for k in ("strace", "bpfkit")}
    print(f"\n## strace -c on {' '.join(DD)} (dd's own elapsed time, median of {runs})")
    print("| | dd time | slowdown | per-syscall counts equal strace's |\n|---|---|---|---|")
    print(f"| bare | {med['bare']:.3f} s | 1.0x | |")
    print(f"| strace -c | {med['strace']:.3f} s | {slow['strace']:.1f}x | |")
    print(f"| bpfkit strace -c | {med['bpfkit']:.3f} s | {slow['bpfkit']:.2f}x | "
          f"{sum(same)}/{len(same)} rounds |")
    print(f"bpfkit's slowdown is 1/{slow['strace'] / slow['bpfkit']:.0f} of strace's "
          f"(added time: 1/{(slow['strace'] - 1) / max(slow['bpfkit'] - 1, 1e-9):.0f}); goal <= 1/20")
    return {"dd_s": med, "all": times, "slowdown": slow, "counts_equal_rounds": sum(same), "rounds": len(same)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--only", default="ttfe,decode,filter,strace")
    ap.add_argument("--events", type=int, default=2_000_000)
    ap.add_argument("--ring-mib", type=int, default=64)
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    only = set(args.only.split(","))
    res: dict[str, Any] = {}
    if "ttfe" in only:
        res["time_to_first_event"] = bench_ttfe(args.runs)
    if "decode" in only:
        res["decode"] = bench_decode(max(3, args.runs // 2), args.events, args.ring_mib << 20)
    if "filter" in only:
        res["filter"] = bench_filter(args.runs, args.calls)
    if "strace" in only:
        res["strace"] = bench_strace(max(3, args.runs // 2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
