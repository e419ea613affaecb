"""top against a program of the test's own: a uprobe on a fixture that calls the probed function
exactly n times, run with BPF statistics on; top reports exactly n runs for it (in the period and in
total), finds it among the programs this process holds, and prints it as a table and as JSON."""
from __future__ import annotations

import os
import signal
import time

import pytest

import bpfkit
from bpfkit import _sys as sc
from bpfkit.testing import triggers
from bpfkit.tools import top

from _tool_cli import Tool, run

pytestmark = pytest.mark.root


def _probe_calls(n: int) -> tuple[bpfkit.Object, int]:
    """Load tests/uprobe_add and make exactly n calls of the probed function."""
    obj = bpfkit.load("tests/uprobe_add")
    with triggers.calls(n, 1, 2) as t:
        with obj.progs.on_add.attach_uprobe(str(t.binary), t.symbol, pid=t.pid):
            t.run()
    assert obj.bss.calls == n
    return obj, obj.progs.on_add.id


def test_top_counts_the_runs_of_our_own_program() -> None:
    with top.Top() as t:
        obj, prog_id = _probe_calls(57)
        with obj:
            rows = {r.id: r for r in t.sample(pid=os.getpid())}
            assert prog_id in top.held_by(os.getpid())
            row = rows[prog_id]
            assert (row.name, row.type, row.runs, row.total_runs) == ("on_add", "kprobe", 57, 57)
            assert row.run_time_ns > 0 and row.avg_ns == row.run_time_ns // 57 and row.cpu_percent > 0
            # nothing ran since: the next period is empty, the total stays
            again = {r.id: r for r in t.sample(pid=os.getpid())}[prog_id]
            assert (again.runs, again.total_runs, again.runs_per_s) == (0, 57, 0.0)
            assert set(rows) == top.held_by(os.getpid())  # -p: only what this process holds


def test_top_command_once_table_and_json() -> None:
    with sc.enable_stats():  # counted from here, as `bpfkit top` counts while it runs
        obj, prog_id = _probe_calls(23)
        with obj:
            fin = run(["top", "--once", "--json", "-p", str(os.getpid()), "0.2"])
            assert fin.rc == 0, fin.stderr
            (doc,) = fin.json()
            (prog,) = [p for p in doc["programs"] if p["id"] == prog_id]
            assert (prog["name"], prog["total_runs"], prog["runs"]) == ("on_add", 23, 0)
            fin = run(["top", "--once", "-p", str(os.getpid()), "-n", "on_add", "0.2"])
    assert fin.rc == 0, fin.stderr
    assert fin.lines[0].split() == ["ID", "TYPE", "NAME", "EVENTS/s", "AVG_NS", "CPU%", "TOTAL_RUNS", "TOTAL_AVG"]
    rows = {line.split()[0]: line.split() for line in fin.lines[1:]}
    assert {r[2] for r in rows.values()} == {"on_add", "on_add_ret"}  # -n: names containing on_add
    row = rows[str(prog_id)]
    assert (row[1], row[2], row[6]) == ("kprobe", "on_add", "23")


def test_top_refreshes_every_interval_and_stops_on_sigterm() -> None:
    with Tool(["top", "0.3"]) as tool:
        time.sleep(1.2)
        fin = tool.stop(signal.SIGTERM)
    assert fin.rc == 0, fin.stderr
    assert sum(line.split()[:2] == ["ID", "TYPE"] for line in fin.lines) >= 3
    bad = run(["top", "-p", "999999999"])
    assert bad.rc == 2 and "no such process" in bad.stderr
