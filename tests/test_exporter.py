"""The exporter on the real kernel, without Prometheus: fixture processes make known events and the
scraped text must hold exactly those counts and buckets; closing it leaves no fd behind."""
from __future__ import annotations

import gc
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterable

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bpfkit import BpfUsageError
import bpfkit
from bpfkit.exporter import Exporter, collectors

from _cgroup import move

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of a scrape: (name, labels) -> value."""
    out: Samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def pick(got: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """Samples called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return {lab: v for (n, lab), v in got.items() if n == name and want <= lab}


def buckets(got: Samples, name: str, **labels: str) -> dict[str, float]:
    return {dict(lab)["le"]: v for lab, v in pick(got, name + "_bucket", **labels).items()}


def cumulative(values: Iterable[int], les: Iterable[str]) -> dict[str, float]:
    """What each ``le`` bucket must hold: the number of values <= le (computed from the values)."""
    vals = list(values)
    return {le: float(sum(1 for v in vals if v <= float(le))) for le in les}


def test_go_float_writes_le_as_prometheus_clients_do() -> None:
    assert [collectors.go_float(x) for x in (0, 1, 1023, 524287, 1048575, 2**64 - 1, 0.5, 1.023e-06, -1,
                                             float("inf"), 1e-4, 123456.5)] == \
        ["0", "1", "1023", "524287", "1.048575e+06", "1.8446744073709552e+19", "0.5", "1.023e-06", "-1", "+Inf",
         "0.0001", "123456.5"]
    assert collectors.log2_bounds()[:6] == [-1, 0, 1, 3, 7, 15] and collectors.log2_bounds()[-1] == 2**64 - 1
    assert collectors.linear_bounds(-10, 20, 10) == [-11, -1, 9, 19, None]


def test_bpfkit_hist_maps_become_exact_histograms(bpf_trigger: Any) -> None:
    n = 20
    t = bpf_trigger.syscalls("getpid", n)  # the k-th getpid records k (c/tests/maps_hist.bpf.c)
    lin = {"buckets": "linear", "lo": 0, "hi": 100, "step": 10}
    cfg = {"objects": [{"object": "tests/maps_hist", "rodata": {"target_pid": t.pid}, "metrics": [
        {"name": "lat", "type": "histogram", "map": "lat"},
        {"name": "lat_ms", "type": "histogram", "map": "lat", "scale": 0.001, "max_le": 0.1},
        {"name": "slat", "type": "histogram", "map": "slat", "min_le": -1},
        {"name": "lin", "type": "histogram", "map": "lin", **lin},
        {"name": "klat", "type": "histogram", "map": "klat", "sum_map": "kst",
         "labels": [{"name": "k", "field": "key"}]},
        {"name": "klin", "type": "histogram", "map": "klin", **lin,
         "labels": [{"name": "k", "field": "key", "decoder": "static", "map": {0: "zero"}}]},
        {"name": "st_values_total", "type": "counter", "map": "st", "value": "count"},
        {"name": "st_total", "type": "gauge", "map": "st", "value": "total"},
        {"name": "seq", "type": "gauge", "global": "seq"},
    ]}]}
    with Exporter(cfg).start(serve=False) as ex:
        t.run()
        got = samples(ex.metrics_text())
    values = list(range(n))

    lat = buckets(got, "lat")
    assert len(lat) == 66 and lat == cumulative(values, lat)  # le 0, 1, 3, ... 2**64-1, +Inf
    assert (lat["0"], lat["1"], lat["3"], lat["15"], lat["31"]) == (1, 2, 4, 16, 20)
    assert pick(got, "lat_count") == {frozenset(): n} and not pick(got, "lat_sum")  # no sum recorded: none shown
    # scaled to milliseconds and cut at 0.1: le = bound / 1000 for bounds up to 100, the rest in +Inf only
    assert buckets(got, "lat_ms") == {"0": 1, "0.001": 2, "0.003": 4, "0.007": 8, "0.015": 16, "0.031": 20,
                                      "0.063": 20, "+Inf": 20}
    slat = buckets(got, "slat")  # n - 3: -3, -2, -1 land in the negative slot
    assert slat["-1"] == 3 and slat == cumulative([v - 3 for v in values], slat)
    assert buckets(got, "lin") == {"-1": 0, **{str(10 * i + 9): 20 if i else 10 for i in range(10)}, "+Inf": 20}
    for k in range(3):
        mine = [v for v in values if v % 3 == k]
        kb = buckets(got, "klat", k=str(k))
        assert kb == cumulative(mine, kb)
        assert pick(got, "klat_count", k=str(k)) == {frozenset({("k", str(k))}): len(mine)}
        assert pick(got, "klat_sum", k=str(k)) == {frozenset({("k", str(k))}): sum(mine)}  # exact, from kst
    assert buckets(got, "klin", k="zero") == cumulative([v for v in values if v % 3 == 0],
                                                        buckets(got, "klin", k="zero"))
    assert set(dict(lab)["k"] for lab in pick(got, "klin_count")) == {"zero", "1", "2"}
    # BPFKIT_STATS is a per-CPU array: every CPU's copy summed
    assert pick(got, "st_values_total") == {frozenset(): n}
    assert pick(got, "st_total") == {frozenset(): sum(v - 10 for v in values)}
    assert pick(got, "seq") == {frozenset(): n}


def test_tools_count_one_process_exactly(bpf_trigger: Any) -> None:
    n, size = 50, 3000
    reader = bpf_trigger.syscalls("read", n, size=size)
    getpid = bpf_trigger.syscalls("getpid", 1000)
    cfg = {"objects": [{"tool": "syscalls", "rodata": {"target_pid": getpid.pid}},
                       {"tool": "syscount", "rodata": {"target_pid": reader.pid}}]}
    with Exporter(cfg).start(serve=False) as ex:
        reader.run()
        getpid.run()
        got = samples(ex.metrics_text())
    # zero counters are skipped, so these are all the syscalls the child made after attaching
    assert {dict(lab)["syscall"]: v for lab, v in pick(got, "bpfkit_syscalls_total").items()} == \
        {"getpid": 1000, "writev": 1, "exit_group": 1}
    assert pick(got, "bpfkit_syscalls_out_of_range_total") == {frozenset(): 0}
    pid = str(reader.pid)
    assert pick(got, "bpfkit_process_reads_total") == {frozenset({("pid", pid), ("comm", "syscall_target")}): n}
    assert pick(got, "bpfkit_process_syscalls_total") == \
        {frozenset({("pid", pid), ("comm", "syscall_target")}): n + 2}  # + writev + exit_group
    rb = buckets(got, "bpfkit_read_bytes")
    assert len(rb) == 34 and rb["4.294967295e+09"] == n  # le 0 .. 2**32-1, then +Inf
    assert rb == cumulative([size] * n, rb) and (rb["2047"], rb["4095"]) == (0, n)
    assert pick(got, "bpfkit_syscount_untracked_total") == {frozenset(): 0}


def test_rows_with_the_same_labels_are_added(bpf_trigger: Any, cgroup: Path) -> None:
    kids = [bpf_trigger.syscalls("getpid", k) for k in (300, 200)]
    for k in kids:
        move(cgroup, k.pid)  # exporter_test counts only tasks in this cgroup
    cfg = {"objects": [{"object": "tests/exporter_test", "rodata": {"target_cgroup": os.stat(cgroup).st_ino},
                        "metrics": [{"name": "by_comm_total", "type": "counter", "map": "getpid_calls",
                                     "labels": [{"name": "comm", "field": "key.comm"}]}]}]}
    with Exporter(cfg).start(serve=False) as ex:
        for k in kids:
            k.run()
        got = samples(ex.metrics_text())
    # two keys {pid, comm} end with the same labels {comm}: one series with their sum
    assert pick(got, "by_comm_total") == {frozenset({("comm", "syscall_target")}): 500}


def _fds() -> set[str]:
    gc.collect()
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            out.add(f"{fd} -> {os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass
    return out


def test_serves_http_and_closes_every_fd(bpf_trigger: Any) -> None:
    before = _fds()
    t = bpf_trigger.calls(25, 3, 4)  # its pipes are closed once it has run
    cfg = {"objects": [{"tool": "bpf_stats"}, {"tool": "syscalls"}]}
    with Exporter(cfg, listen="127.0.0.1:0") as ex:
        assert ex.address[0] == "127.0.0.1" and ex.url == f"http://127.0.0.1:{ex.address[1]}/metrics"
        assert any("anon_inode:bpf-stats" in f for f in _fds() - before)
        with bpfkit.load("tests/uprobe_add") as obj:  # a program that runs exactly 25 times
            obj.progs.on_add.attach_uprobe(str(t.binary), t.symbol, pid=t.pid)
            t.run()
            prog_id = obj.progs.on_add.id
            with urllib.request.urlopen(ex.url, timeout=10) as r:
                assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                got = samples(r.read().decode())
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(ex.url.replace("/metrics", "/nope"), timeout=10)
        with pytest.raises(BpfUsageError, match="exporter already started"):
            ex.start()
    (runs,) = pick(got, "bpfkit_prog_runs_total", id=str(prog_id)).items()
    assert dict(runs[0]) == {"id": str(prog_id), "name": "on_add", "type": "kprobe", "tag": dict(runs[0])["tag"]}
    assert runs[1] == 25  # BPF statistics: run_cnt of the uprobe program, exactly the calls made
    (run_time,) = pick(got, "bpfkit_prog_run_time_seconds_total", id=str(prog_id)).values()
    assert 0 < run_time < 0.1
    assert pick(got, "bpfkit_prog_recursion_misses_total", id=str(prog_id)) == {runs[0]: 0}
    ex.close()  # idempotent
    assert _fds() == before  # the objects, links, stats fd and listening socket are all closed
    with pytest.raises(BpfUsageError, match="not serving"):
        ex.url


def test_registers_in_another_programs_registry() -> None:
    registry = CollectorRegistry()  # auto_describe: the exporter's describe() names its families
    ex = Exporter({"objects": [{"tool": "syscalls"}]}, registry=registry).start(serve=False)
    try:
        text = generate_latest(registry).decode()
        assert "# TYPE bpfkit_syscalls_total counter" in text
        assert "# TYPE bpfkit_exporter_read_errors_total counter" in text
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            Exporter({"objects": [{"tool": "syscalls"}]}, registry=registry).start(serve=False)
    finally:
        ex.close()
    assert "bpfkit_syscalls_total" not in generate_latest(registry).decode()


def test_a_bad_entry_loads_nothing(tmp_path: Any) -> None:
    before = _fds()
    cfg = {"objects": [{"tool": "syscalls"}, {"object": "tests/exporter_test", "rodata": {"nope": 1}, "metrics": [
        {"name": "g", "type": "gauge", "global": "seen"}]}]}
    with pytest.raises(BpfUsageError, match=r"objects\[1\]: rodata: object 'exporter_test' has no const volatile "
                                            r"'nope'; it has: target_cgroup, hist_nr, hist_arg"):
        Exporter(cfg).start(serve=False)
    cfg["objects"][1] = {"object": "tests/exporter_test", "attach": ["on_nothing"], "metrics": [
        {"name": "g", "type": "gauge", "global": "seen"}]}
    with pytest.raises(BpfUsageError, match="attach: object 'exporter_test' has no program 'on_nothing'; its "
                                            "programs: on_getpid, on_sys_enter, on_sys_exit"):
        Exporter(cfg).start(serve=False)
    cfg["objects"][1] = {"object": "tests/exporter_test", "rodata": {"hist_nr": -1}, "metrics": [
        {"name": "g", "type": "gauge", "global": "seen"}]}
    with pytest.raises(BpfUsageError, match=r"rodata hist_nr = -1: .*outside 0..4294967295"):
        Exporter(cfg).start(serve=False)
    assert _fds() == before  # the syscalls entry loaded first was closed again


def test_attach_only_the_named_programs(bpf_trigger: Any) -> None:
    t = bpf_trigger.syscalls("getpid", 10)
    cfg = {"objects": [{"object": "tests/count", "rodata": {"target_pid": t.pid}, "attach": [],
                        "metrics": [{"name": "total", "type": "gauge", "global": "total"}]}]}
    with Exporter(cfg).start(serve=False) as ex:
        t.run()
        assert pick(samples(ex.metrics_text()), "total") == {frozenset(): 0}  # nothing attached, nothing seen
