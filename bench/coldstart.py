"""Cold start: import bpfkit, load a prebuilt object, attach one tracepoint, exit — against a C
program using a bpftool skeleton doing the same. Median wall time and peak RSS of each, and the
ratio, in one run.

    sudo .venv/bin/python bench/coldstart.py [--runs 21]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY_SNIPPET = """
import bpfkit
obj = bpfkit.load("tests/count")
link = obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid")
link.close(); obj.close()
"""


def measure(argv: list[str], runs: int) -> tuple[float, float]:
    """Median wall seconds and median peak RSS (MiB) of ``argv`` over ``runs`` runs."""
    walls, rss = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - t0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise SystemExit(f"{argv} failed with {proc.returncode}")
        rss.append(usage.ru_maxrss / 1024)
    return statistics.median(walls), statistics.median(rss)


def build_skeleton(workdir: Path) -> Path:
    from bpfkit.shipped import find_object

    obj = find_object("tests/count")
    if obj is None:
        raise SystemExit("build the BPF objects first (make setup)")
    skel = subprocess.run(["bpftool", "gen", "skeleton", str(obj), "name", "count"], check=True,
                          capture_output=True, text=True).stdout
    (workdir / "count.skel.h").write_text(skel)
    exe = workdir / "coldstart_skel"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(HERE / "coldstart_skel.c"), f"-I{workdir}", "-lbpf"],
                   check=True)
    return exe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=21)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_skeleton(Path(tmp))
        measure([str(exe)], 2)  # warm the page cache for both
        measure([sys.executable, "-c", PY_SNIPPET], 2)
        c_wall, c_rss = measure([str(exe)], args.runs)
        py_wall, py_rss = measure([sys.executable, "-c", PY_SNIPPET], args.runs)
        imp_wall, imp_rss = measure([sys.executable, "-c", "import numpy"], args.runs)
    print(f"cold start, median of {args.runs} runs (load tests/count.bpf.o + attach 1 tracepoint + exit)")
    print(f"  {'':24}{'wall ms':>10}{'peak RSS MiB':>15}")
    print(f"  {'C (bpftool skeleton)':24}{c_wall * 1e3:>10.1f}{c_rss:>15.1f}")
    print(f"  {'bpfkit (python)':24}{py_wall * 1e3:>10.1f}{py_rss:>15.1f}")
    print(f"  {'  of which python+numpy':24}{imp_wall * 1e3:>10.1f}{imp_rss:>15.1f}")
    print(f"  ratio bpfkit/C: wall {py_wall / c_wall:.1f}x, RSS {py_rss / c_rss:.1f}x")


if __name__ == "__main__":
    main()
