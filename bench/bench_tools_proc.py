"""execsnoop, opensnoop and runqlat: bpfkit's tools against bcc's, in one run.

For each tool and each peer that runs here:
- start-up: from exec to "attached" (the header / "Tracing ..." line) and, for the event tools,
  from exec to the first event line while a trigger makes one event every millisecond;
- overhead: how much slower a fixed workload runs while the tool traces it (1000 execs of
  /bin/true; 300k openat+close; 100k pipe round trips, i.e. 200k wakeups and context switches),
  against the same workload with nothing attached. Runs are interleaved (rounds of none / bcc /
  bpfkit in rotating order) so machine noise hits every peer alike; medians are printed.

Peers: ``bpfkit NAME``; bcc's ``/usr/sbin/NAME-bpfcc``; and, because Debian's execsnoop-bpfcc and
opensnoop-bpfcc attach kprobes / fentry that a kernel without CONFIG_KPROBES (and with fentry
refused) cannot give them, the same bcc tools on tracepoints (``bench/tools/bcc_tp_*.py``). A peer
that cannot start is listed with its error.

    sudo .venv/bin/python bench/bench_tools_proc.py [--rounds 5] [--startup-runs 7]

Besides the workload's slowdown (noisy on a shared 2-CPU machine), the cost is read exactly: the
kernel time spent in each tool's BPF programs (BPF statistics: run count and run time of the
programs the tool process holds) and the CPU its reader process used, per workload run. Tools run
on a pseudo-terminal, as users see them (stdout to a pipe is block-buffered).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import pty
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bpfkit import _sys as sc  # noqa: E402
from bpfkit.tools.top import held_by, programs  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BPFKIT = os.environ.get("BPFKIT", str(ROOT / ".venv/bin/bpfkit"))
READY = re.compile(r"Tracing|PCOMM|^\s*PID\s")


# -- building the workload ------------------------------------------------------------------------

def workload_binary() -> str:
    src = HERE / "tools" / "workload.c"
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:12]
    out = Path(tempfile.gettempdir()) / f"bpfkit-bench-workload-{digest}"
    if not out.exists():
        tmp = out.with_suffix(f".{os.getpid()}")
        subprocess.run(["gcc", "-O2", "-o", str(tmp), str(src)], check=True)
        os.replace(tmp, out)
    return str(out)


# -- a tool on a pty ------------------------------------------------------------------------------

class Running:
    """A tool started on a pseudo-terminal; lines are collected with their arrival time."""

    def __init__(self, argv: Sequence[str]) -> None:
        self.argv = list(argv)
        master, slave = pty.openpty()
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                                     start_new_session=True)
        os.close(slave)
        self._fd = master
        self.lines: list[tuple[float, str]] = []
        self._cv = threading.Condition()
        self._done = False
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                r, _, _ = select.select([self._fd], [], [], 0.5)
                if not r:
                    if self.proc.poll() is not None:
                        break
                    continue
                chunk = os.read(self._fd, 1 << 16)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            now = time.monotonic()
            *complete, buf = buf.split(b"\n")
            with self._cv:
                self.lines.extend((now, line.decode(errors="replace").rstrip("\r")) for line in complete)
                # keep memory flat under a flood of events: only the first lines are looked at
                if len(self.lines) > 2000:
                    del self.lines[200:-100]
                self._cv.notify_all()
        with self._cv:
            self._done = True
            self._cv.notify_all()

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> Optional[float]:
        """Seconds from exec to the first line matching ``pattern`` (None: timeout or exit)."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cv:
            while True:
                for t, line in self.lines[seen:]:
                    if pattern.search(line):
                        return t - self.t0
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if self._done or left <= 0:
                    return None
                self._cv.wait(min(left, 0.2))

    def cpu_seconds(self) -> float:
        """user + system CPU the tool has used so far (its own process: bcc compiles in-process)."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def tail(self) -> str:
        with self._cv:
            return " | ".join(line for _, line in self.lines[-3:]) or "(no output)"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(timeout=5)
        os.close(self._fd)


# -- peers and measurements -------------------------------------------------------------------------

@dataclass
class Peer:
    label: str
    argv: list[str]
    missing: str = ""
    startup: list[float] = field(default_factory=list)
    startup_cpu: list[float] = field(default_factory=list)
    first_event: list[float] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    bpf_ns: list[float] = field(default_factory=list)     # kernel time in the tool's programs, per workload run
    bpf_runs: list[int] = field(default_factory=list)     # program runs per workload run
    tool_cpu: list[float] = field(default_factory=list)   # the tool process's CPU per workload run (its reader)


@dataclass
class Case:
    tool: str
    workload: list[str]
    trigger: Optional[list[str]]   # a 1 ms event source, for time to the first event
    event: Optional[re.Pattern[str]]
    peers: list[Peer]
    base: list[float] = field(default_factory=list)


def bcc(name: str, *args: str) -> list[str]:
    return [f"/usr/sbin/{name}-bpfcc", *args]


def check(peer: Peer) -> None:
    """Start the peer once: anything that does not reach its header in 120 s is 'missing'."""
    path = peer.argv[0]
    if not (os.path.exists(path) or shutil.which(path)):
        peer.missing = f"{path} not installed"
        return
    r = Running(peer.argv)
    try:
        if r.wait_for(READY, 120) is None:
            peer.missing = f"does not start here: {r.tail()[-200:]}"
    finally:
        r.stop()


def timed(argv: Sequence[str]) -> float:
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    m = re.search(r"secs=([\d.]+)", out)
    assert m, out
    return float(m.group(1))


def measure_startup(case: Case, runs: int) -> None:
    trig = subprocess.Popen(case.trigger, stdout=subprocess.DEVNULL) if case.trigger else None
    try:
        for _ in range(runs):
            for peer in case.peers:
                if peer.missing:
                    continue
                r = Running(peer.argv)
                try:
                    t = r.wait_for(READY, 120)
                    if t is not None:
                        peer.startup.append(t)
                        peer.startup_cpu.append(r.cpu_seconds())
                    if case.event is not None and t is not None:
                        f = r.wait_for(case.event, 30)
                        if f is not None:
                            peer.first_event.append(f)
                finally:
                    r.stop()
    finally:
        if trig is not None:
            trig.kill()
            trig.wait()


def bpf_cost(pid: int) -> tuple[int, int]:
    """(run count, run time ns) summed over the programs process ``pid`` holds (BPF statistics)."""
    stats = programs(held_by(pid))
    return sum(p.run_cnt for p in stats.values()), sum(p.run_time_ns for p in stats.values())


def measure_overhead(case: Case, rounds: int) -> None:
    timed(case.workload)  # warm caches
    with sc.enable_stats():  # the kernel times every program run while this is held
        for i in range(rounds):
            order = [None, *[p for p in case.peers if not p.missing]]
            order = order[i % len(order):] + order[:i % len(order)]
            for peer in order:
                if peer is None:
                    case.base.append(timed(case.workload))
                    continue
                r = Running(peer.argv)
                try:
                    if r.wait_for(READY, 120) is None:
                        raise SystemExit(f"{peer.label} stopped starting: {r.tail()}")
                    time.sleep(0.3)  # attached everywhere (see tests/test_tool_irqs.py)
                    runs0, ns0 = bpf_cost(r.proc.pid)
                    cpu0 = r.cpu_seconds()
                    peer.times.append(timed(case.workload))
                    time.sleep(0.2)  # let the reader catch up with what the workload made
                    runs1, ns1 = bpf_cost(r.proc.pid)
                    peer.tool_cpu.append(r.cpu_seconds() - cpu0)
                    peer.bpf_runs.append(runs1 - runs0)
                    peer.bpf_ns.append(ns1 - ns0)
                finally:
                    r.stop()


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def report(case: Case) -> list[str]:
    lines = [f"\n== {case.tool}: workload {' '.join(case.workload[1:3])}"]
    base = med(case.base)
    lines.append(f"  no tracing: {base * 1e3:.1f} ms  (n={len(case.base)})")
    lines.append(f"  {'peer':<28} {'start':>8} {'start CPU':>9} {'1st event':>9} {'workload':>9} {'slowdown':>8} "
                 f"{'BPF ns/run':>10} {'BPF ms':>7} {'reader CPU':>10}")
    for p in case.peers:
        if p.missing:
            lines.append(f"  {p.label:<28} n/a: {p.missing}")
            continue
        t = med(p.times)
        first = f"{med(p.first_event) * 1e3:7.0f}ms" if p.first_event else "       - "
        per_run = sum(p.bpf_ns) / max(1, sum(p.bpf_runs))
        lines.append(f"  {p.label:<28} {med(p.startup) * 1e3:6.0f}ms {med(p.startup_cpu) * 1e3:7.0f}ms {first} "
                     f"{t * 1e3:7.0f}ms {(t / base - 1) * 100:7.1f}% {per_run:10.0f} {med(p.bpf_ns) / 1e6:7.1f} "
                     f"{med(p.tool_cpu) * 1e3:8.0f}ms")
    ours = next((p for p in case.peers if p.label.startswith("bpfkit")), None)
    for p in case.peers:
        if p is ours or p.missing or ours is None or ours.missing:
            continue
        lines.append(f"  bpfkit vs {p.label}: start-up {med(p.startup) / med(ours.startup):.1f}x faster "
                     f"(CPU {med(p.startup_cpu) / med(ours.startup_cpu):.1f}x less)"
                     + (f", first event {med(p.first_event) / med(ours.first_event):.1f}x sooner"
                        if p.first_event and ours.first_event else "")
                     + f"; kernel time in the programs {med(ours.bpf_ns) / med(p.bpf_ns):.2f}x bcc's"
                     + f", reader CPU {med(ours.tool_cpu) / max(med(p.tool_cpu), 1e-9):.2f}x"
                     + f", slowdown {(med(ours.times) / base - 1) * 100:.1f}% vs {(med(p.times) / base - 1) * 100:.1f}%")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the overhead measurement")
    ap.add_argument("--startup-runs", type=int, default=7)
    ap.add_argument("--only", help="comma-separated tools (execsnoop,opensnoop,runqlat)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (loading BPF programs)")
    wl = workload_binary()
    cases = [
        Case("execsnoop", [wl, "exec", "1000"], [wl, "every", "1000", "exec"], re.compile(r"^true\s+\d"), [
            Peer("bpfkit execsnoop", [BPFKIT, "execsnoop"]),
            Peer("bcc execsnoop-bpfcc", bcc("execsnoop")),
            Peer("bcc execsnoop on tracepoints", ["/usr/bin/python3", str(HERE / "tools/bcc_tp_execsnoop.py")]),
        ]),
        Case("opensnoop", [wl, "open", "300000", "/etc/hostname"], [wl, "every", "1000", "open"],
             re.compile(r"/etc/hostname"), [
            Peer("bpfkit opensnoop", [BPFKIT, "opensnoop"]),
            Peer("bcc opensnoop-bpfcc", bcc("opensnoop")),
            Peer("bcc opensnoop on tracepoints", ["/usr/bin/python3", str(HERE / "tools/bcc_tp_opensnoop.py")]),
        ]),
        Case("runqlat", [wl, "pingpong", "100000"], None, None, [
            Peer("bpfkit runqlat", [BPFKIT, "runqlat"]),
            Peer("bcc runqlat-bpfcc", bcc("runqlat")),
        ]),
    ]
    if args.only:
        cases = [c for c in cases if c.tool in args.only.split(",")]
    out: list[str] = []
    for case in cases:
        for peer in case.peers:
            check(peer)
        measure_startup(case, args.startup_runs)
        measure_overhead(case, args.rounds)
        out += report(case)
        print("\n".join(report(case)), flush=True)
    print("\n".join(["", "== summary", *out]))


if __name__ == "__main__":
    sys.exit(main())
