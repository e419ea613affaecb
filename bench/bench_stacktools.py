"""Stack tools benchmark (issue 13): bpfkit's profile / offcputime / stackcount against bcc's
(``profile-bpfcc``, ``offcputime-bpfcc``, ``stackcount-bpfcc``; for offcputime also libbpf-tools'
C ``/usr/sbin/offcputime`` when installed), run as a user runs them, in one run, ratios printed.

* profile: each tool samples ``stacks_target spin`` (main → stk_outer → stk_middle → stk_inner,
  frame pointers) at 99 Hz for 3 s with ``-p PID -f``; measured: the tool's wall time from exec to
  exit, its CPU time (user + sys, its own rusage), and the share of samples it puts on the chain.
* offcputime: the slowdown of a pipe ping-pong (``bench/pingpong.c``: 2 processes, every hop a
  context switch) while each tool traces every thread, vs the same workload with no tool.
* stackcount: the slowdown of ``getpid()`` in a loop (``bench/getpid_loop.c``) while each tool counts
  the stacks of ``t:syscalls:sys_enter_getpid``, vs no tool.

Tools write to a pseudo-terminal (as in a terminal: every line flushed), and a tool counts as
attached when it prints its header; rounds are interleaved and the tool order rotates, so the noise
of the shared 2-CPU machine hits every tool alike. Medians are printed with [min-max].

Run as root: ``.venv/bin/python bench/bench_stacktools.py [--rounds N]``
"""
from __future__ import annotations

import argparse
import os
import pty
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from bpfkit.testing import fixtures  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
BPFKIT = [PY, "-m", "bpfkit.cli"]
HEADER = re.compile(rb"Tracing|Sampling|Hit Ctrl-C")


def bcc(name: str) -> Optional[list[str]]:
    path = shutil.which(f"{name}-bpfcc") or (f"/usr/sbin/{name}-bpfcc" if os.path.exists(f"/usr/sbin/{name}-bpfcc")
                                             else None)
    return [path] if path else None


def build(out: Path) -> dict[str, Path]:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise SystemExit("needs a C compiler")
    paths = {"stacks_target": fixtures.stacks_target()}
    for name in ("pingpong", "getpid_loop"):
        exe = out / name
        subprocess.run([cc, "-O2", "-o", str(exe), str(HERE / f"{name}.c")], check=True)
        paths[name] = exe
    return paths


class Tool:
    """A tool started on a pseudo-terminal; :meth:`wait_ready` returns once it printed its header."""

    def __init__(self, argv: Sequence[str], silent: bool = False) -> None:
        self.argv = list(argv)
        self.silent = silent
        self.master, slave = pty.openpty()
        self.start = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        os.close(slave)
        self.out = b""
        self.rusage: Optional[resource.struct_rusage] = None
        self.end = 0.0

    def _read(self, timeout: float) -> bool:
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return False
        self.out += data
        return bool(data)

    def wait_ready(self, timeout: float = 120.0) -> float:
        if self.silent:  # prints nothing until its summary (libbpf-tools' offcputime): give it time
            time.sleep(3.0)
            if self.proc.poll() is not None:
                raise SystemExit(f"{' '.join(self.argv)} did not start:\n{self.out.decode(errors='replace')}")
            return time.monotonic() - self.start
        deadline = time.monotonic() + timeout
        while not HEADER.search(self.out):
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"{' '.join(self.argv)} did not start:\n{self.out.decode(errors='replace')[-2000:]}")
            self._read(0.2)
        time.sleep(0.3)  # let the header's last attachments settle
        return time.monotonic() - self.start

    def finish(self, interrupt: bool = True, timeout: float = 300.0) -> str:
        if interrupt and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        deadline = time.monotonic() + timeout
        while self.proc.returncode is None:  # (poll() may have reaped it already: no rusage then)
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                self.end = time.monotonic()
                self.rusage = ru
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.monotonic() > deadline:
                os.killpg(self.proc.pid, signal.SIGKILL)
            self._read(0.05)
        while self._read(0.05):
            pass
        os.close(self.master)
        return self.out.decode(errors="replace").replace("\r\n", "\n")

    @property
    def cpu(self) -> float:
        assert self.rusage is not None
        return self.rusage.ru_utime + self.rusage.ru_stime


def fmt(values: list[float], scale: float = 1.0, unit: str = "") -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values) * scale:.3g}{unit} [{min(values) * scale:.3g}-{max(values) * scale:.3g}]"


def ratio(a: list[float], b: list[float]) -> str:
    if not a or not b:
        return "n/a"
    return f"{statistics.median(a) / statistics.median(b):.2f}x"


def on_chain_share(folded: str) -> float:
    total = chain = 0.0
    for line in folded.splitlines():
        frames, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        total += int(n)
        if re.search(r"(^|;)main;stk_outer;stk_middle;stk_inner(;|$)", frames):
            chain += int(n)
    return chain / total if total else 0.0


# -- profile ------------------------------------------------------------------------------------------

def bench_profile(paths: dict[str, Path], rounds: int) -> None:
    tools = {"bpfkit": BPFKIT + ["profile"], "bcc": bcc("profile")}
    res: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": [], "share": []} for k, v in tools.items() if v}
    for r in range(rounds):
        names = list(res)
        names = names[r % len(names):] + names[: r % len(names)]
        for name in names:
            # spins longer than any tool takes to start (bcc compiles its C first); killed after
            spin = subprocess.Popen([str(paths["stacks_target"]), "spin", "60"], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE)
            assert spin.stdout is not None and spin.stdin is not None
            spin.stdout.readline()
            spin.stdin.write(b"\n")
            spin.stdin.flush()
            argv = [*tools[name], "-F", "99", "-f", "-p", str(spin.pid), "3"]  # type: ignore[misc]
            t = Tool(argv)
            out = t.finish(interrupt=False)
            spin.kill()
            spin.wait()
            res[name]["wall"].append(t.end - t.start)
            res[name]["cpu"].append(t.cpu)
            res[name]["share"].append(on_chain_share(out))
    print("profile -F 99 -f -p PID 3 (a spinning main->outer->middle->inner):")
    for name, m in res.items():
        print(f"  {name:<8} wall {fmt(m['wall'], 1, ' s')}  cpu {fmt(m['cpu'], 1, ' s')}  "
              f"samples on the chain {fmt(m['share'], 100, '%')}")
    if "bcc" in res:
        print(f"  bpfkit/bcc: wall {ratio(res['bpfkit']['wall'], res['bcc']['wall'])}, "
              f"cpu {ratio(res['bpfkit']['cpu'], res['bcc']['cpu'])}")


# -- workload slowdown ----------------------------------------------------------------------------------

def run_workload(argv: list[str]) -> float:
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    out, _ = p.communicate(b"g", timeout=300)
    if p.returncode != 0:
        raise SystemExit(f"{argv} failed")
    return int(out) / 1e9


def bench_slowdown(title: str, workload: list[str], tools: dict[str, Optional[list[str]]], rounds: int) -> None:
    res: dict[str, list[float]] = {"no tool": []}
    res.update({k: [] for k, v in tools.items() if v})
    ready: dict[str, list[float]] = {k: [] for k in res}
    failed: set[str] = set()
    for r in range(rounds):
        names = [n for n in res if n not in failed]
        names = names[r % len(names):] + names[: r % len(names)]
        for name in names:
            if name == "no tool":
                res[name].append(run_workload(workload))
                continue
            t = Tool(tools[name], silent=name == "libbpf-tools")  # type: ignore[arg-type]
            try:
                ready[name].append(t.wait_ready())
            except SystemExit as e:
                print(f"  {name}: {str(e).strip().splitlines()[-1]}")
                t.finish()
                failed.add(name)
                continue
            res[name].append(run_workload(workload))
            t.finish()
            if t.proc.returncode not in (0, -2, 130):
                print(f"  ({name} exited {t.proc.returncode}: {t.out.decode(errors='replace')[-300:]})")
    base = res["no tool"]
    print(f"{title}:")
    for name, v in res.items():
        if name in failed:
            print(f"  {name:<14} did not run here (above)")
            continue
        extra = "" if name == "no tool" else f"  slowdown {ratio(v, base)}  ready after {fmt(ready[name], 1, ' s')}"
        print(f"  {name:<14} workload {fmt(v, 1, ' s')}{extra}")
    over_b = statistics.median(res["bpfkit"]) - statistics.median(base) if res.get("bpfkit") else None
    for other in res:
        if other in ("no tool", "bpfkit") or other in failed or over_b is None:
            continue
        over_o = statistics.median(res[other]) - statistics.median(base)
        if over_o > 0:
            print(f"  time bpfkit adds / time {other} adds: {over_b / over_o:.2f}")


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--switches", type=int, default=100_000, help="ping-pong round trips")
    ap.add_argument("--getpids", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=200_000, help="uprobe hits per call site")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    with tempfile.TemporaryDirectory(prefix="bpfkit-bench-stacks-") as tmp:
        paths = build(Path(tmp))
        print(f"bcc: {'found' if bcc('profile') else 'not installed (apt-get install bpfcc-tools)'}; "
              f"{os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}\n")
        bench_profile(paths, args.rounds)
        print()
        # default (not folded) output: the header says when each tool is attached
        off = {"bpfkit": BPFKIT + ["offcputime"], "bcc": bcc("offcputime")}
        if os.path.exists("/usr/sbin/offcputime"):
            off["libbpf-tools"] = ["/usr/sbin/offcputime"]
        bench_slowdown(f"offcputime, every thread, while {args.switches} pipe round trips run",
                       [str(paths["pingpong"]), str(args.switches)], off, args.rounds)
        print()
        probe = "t:syscalls:sys_enter_getpid"  # every process: only the loop calls getpid much
        sc = {"bpfkit": BPFKIT + ["stackcount", probe], "bcc": bcc("stackcount")}
        if sc["bcc"]:
            sc["bcc"] = sc["bcc"] + [probe]
        bench_slowdown(f"stackcount {probe}, while getpid() runs {args.getpids} times",
                       [str(paths["getpid_loop"]), str(args.getpids)], sc, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
