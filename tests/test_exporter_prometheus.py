"""The exporter end to end: a real Prometheus server scrapes it every second while fixture
processes, moved into a cgroup of their own, make known system calls; Prometheus's query API
must then return exactly the counts and histogram buckets they made."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from bpfkit.exporter import Exporter
from bpfkit.testing.triggers import syscall_number

from _cgroup import move
from _prometheus import Prometheus

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")

N_GETPID = 100_000
POLLS = [(300, 3), (100, 5)]  # (timeout ms recorded in the histogram, calls): one child each, alive >= 0.5 s
N_DUP = 4  # dup(12345) fails with EBADF


def _config(tmp_path: Path, cgroup_id: int) -> Path:
    labels_pid = '{ name = "pid", field = "key.pid" }'
    text = f"""
[exporter]
listen = "127.0.0.1:0"

[[objects]]
name = "test"
object = "tests/exporter_test"
rodata = {{ target_cgroup = {cgroup_id}, hist_nr = {syscall_number("poll")}, hist_arg = 2 }}

[[objects.metrics]]
name = "exporter_test_getpid_total"
help = "getpid() per process, comm from the key"
type = "counter"
map = "getpid_calls"
labels = [{labels_pid}, {{ name = "comm", field = "key.comm" }}]

[[objects.metrics]]
name = "exporter_test_getpid_by_cgroup_total"
help = "getpid() per cgroup (per-CPU map)"
type = "counter"
map = "getpid_by_cgroup"
labels = [{{ name = "cgroup", field = "key", decoder = "cgroup" }}]

[[objects.metrics]]
name = "exporter_test_calls_total"
help = "syscalls per process and name"
type = "counter"
map = "calls"
labels = [{labels_pid}, {{ name = "comm", field = "key.pid", decoder = "comm" }},
          {{ name = "syscall", field = "key.nr", decoder = "syscall" }}]

[[objects.metrics]]
name = "exporter_test_errors_total"
help = "failed syscalls per process and errno"
type = "counter"
map = "errors"
labels = [{labels_pid}, {{ name = "errno", field = "key.err", decoder = "errno" }}]

[[objects.metrics]]
name = "exporter_test_poll_timeout"
help = "poll() timeout argument per process"
type = "histogram"
map = "arg_hist"
sum_map = "arg_stats"
labels = [{{ name = "pid", field = "key" }}]

[[objects.metrics]]
name = "exporter_test_seen_total"
help = "syscalls entered by the test's cgroup"
type = "counter"
global = "seen"
"""
    path = tmp_path / "exporter.toml"
    path.write_text(text)
    return path


def _by(result: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(r["metric"].get(lb, "") for lb in labels): float(r["value"][1]) for r in result}


def test_prometheus_scrapes_exact_counts_and_buckets(tmp_path: Path, cgroup: Path, bpf_trigger: Any) -> None:
    # the children start (and make their start-up syscalls) outside the cgroup, then move in
    getpid = bpf_trigger.syscalls("getpid", N_GETPID)
    polls = [bpf_trigger.syscalls("poll", n, args=(0, 0, ms)) for ms, n in POLLS]
    dup = bpf_trigger.syscalls("dup", N_DUP, args=(12345,))
    children = [getpid, *polls, dup]
    for t in children:
        move(cgroup, t.pid)
    rel_cgroup = "/" + cgroup.name

    with Exporter(_config(tmp_path, os.stat(cgroup).st_ino)) as ex:
        prom = Prometheus(f"{ex.address[0]}:{ex.address[1]}", tmp_path)
        try:
            prom.wait_scrape_after(time.time())  # the target is up before anything happens
            # The poll children stay alive for their timeouts: scrape while they sleep so the comm
            # decoder reads /proc/PID/comm of live processes (it keeps the name afterwards).
            runner = threading.Thread(target=lambda: [t.run() for t in polls])
            runner.start()
            deadline = time.monotonic() + 10
            while not all(f'pid="{t.pid}"' in ex.metrics_text() for t in polls) and time.monotonic() < deadline:
                time.sleep(0.02)
            runner.join()
            getpid.run()
            dup.run()
            # Prometheus may shift a scrape's timestamp by up to 2 ms to align it with its schedule
            at = prom.wait_scrape_after(time.time() + 0.01)

            def q(expr: str) -> list[dict[str, Any]]:
                return prom.query(expr, at)

            # the counter: exactly N getpid() calls by that process, comm taken from the key
            got = _by(q("exporter_test_getpid_total"), "pid", "comm")
            assert got == {(str(getpid.pid), "syscall_target"): N_GETPID}
            # per-CPU map summed; the cgroup id decoded to the cgroup's path
            assert _by(q("exporter_test_getpid_by_cgroup_total"), "cgroup") == {(rel_cgroup,): N_GETPID}
            # every syscall each child made once in the cgroup, by name
            calls = _by(q("exporter_test_calls_total"), "pid", "syscall")
            assert {s: v for (p, s), v in calls.items() if p == str(getpid.pid)} == \
                {"getpid": N_GETPID, "writev": 1, "exit_group": 1}
            assert {s: v for (p, s), v in calls.items() if p == str(dup.pid)} == \
                {"dup": N_DUP, "writev": 1, "exit_group": 1}
            for (ms, n), t in zip(POLLS, polls):
                assert {s: v for (p, s), v in calls.items() if p == str(t.pid)} == \
                    {"poll": n, "writev": 1, "exit_group": 1}
            comms = _by(q("exporter_test_calls_total"), "pid", "comm")
            for t in polls:
                assert (str(t.pid), "syscall_target") in comms
            assert _by(q("exporter_test_errors_total"), "pid", "errno") == {(str(dup.pid), "EBADF"): N_DUP}
            assert _by(q("exporter_test_seen_total"), "job") == {("bpfkit",): sum(calls.values())}

            # the histogram: every le bucket of each child's series is exact
            buckets = _by(q("exporter_test_poll_timeout_bucket"), "pid", "le")
            for (ms, n), t in zip(POLLS, polls):
                mine = {le: v for (p, le), v in buckets.items() if p == str(t.pid)}
                assert len(mine) == 66  # le = 0, 1, 3, 7 ... 2**64-1 (log2 slots 1..65) and +Inf
                # a value v is in every bucket with v <= le: computed here from the values, not the slots
                assert mine == {le: (n if ms <= float(le) else 0) for le in mine}
                assert (mine["255"], mine["511"]) == ((0, n) if ms > 255 else (n, n))
            counts = _by(q("exporter_test_poll_timeout_count"), "pid")
            sums = _by(q("exporter_test_poll_timeout_sum"), "pid")
            assert counts == {(str(t.pid),): n for (_, n), t in zip(POLLS, polls)}
            assert sums == {(str(t.pid),): ms * n for (ms, n), t in zip(POLLS, polls)}
            # aggregated over the children, as a dashboard would
            agg = _by(q('sum by (le) (exporter_test_poll_timeout_bucket{le=~"63|127|511|\\\\+Inf"})'), "le")
            assert agg == {("63",): 0, ("127",): 5, ("511",): 8, ("+Inf",): 8}
        finally:
            prom.close()
