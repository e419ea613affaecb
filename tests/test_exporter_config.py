"""Exporter config checking: every mistake is a BpfUsageError naming the file, the entry and what
was expected; checks against the object's maps happen before anything is loaded."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

import bpfkit
from bpfkit import BpfUsageError
from bpfkit.exporter import collectors, config, tools
from bpfkit.shipped import find_object


def _write(tmp_path: Path, text: str, name: str = "exporter.toml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _err(data: Any) -> str:
    with pytest.raises(BpfUsageError) as e:
        config.parse(data)
    return str(e.value)


COUNTER = {"name": "c_total", "type": "counter", "map": "calls"}


def _one(metric: dict[str, Any], **entry: Any) -> dict[str, Any]:
    return {"objects": [{"object": "tests/exporter_test", "name": "t", **entry, "metrics": [metric]}]}


def test_a_good_file_parses_into_exact_specs(tmp_path: Path) -> None:
    p = _write(tmp_path, """
[exporter]
listen = "127.0.0.1:9999"

[[objects]]
name = "t"
object = "tests/exporter_test"
rodata = { hist_nr = 7, hist_arg = 2 }
attach = ["on_sys_enter"]

[[objects.metrics]]
name = "calls_total"
help = "calls"
type = "counter"
map = "calls"
labels = [
  { name = "pid", field = "key.pid" },
  { name = "op", field = "key.nr", decoder = "static", map = { 0 = "read", 0x1 = "write" }, default = "other" },
]

[[objects.metrics]]
name = "arg"
type = "histogram"
map = "arg_hist"
sum_map = "arg_stats"
scale = 0.001
max_le = 1e6
""")
    cfg = config.load(p)
    assert cfg.listen == "127.0.0.1:9999" and cfg.path == p
    (e,) = cfg.entries
    assert (e.name, e.kind, e.target, e.rodata, e.attach) == \
        ("t", "object", "tests/exporter_test", {"hist_nr": 7, "hist_arg": 2}, ("on_sys_enter",))
    c, h = e.metrics
    assert (c.name, c.family, c.help, c.type, c.map, c.skip_zero) == ("calls_total", "calls", "calls", "counter",
                                                                       "calls", True)
    assert c.labels == (config.LabelSpec("pid", "key.pid"),
                        config.LabelSpec("op", "key.nr", "static", {"map": {0: "read", 1: "write"},
                                                                    "default": "other"}))
    assert c.where == f'{p}: objects[0] ("t") metrics[0] ("calls_total")'
    assert (h.type, h.buckets, h.sum_map, h.scale, h.min_le, h.max_le, h.help) == \
        ("histogram", "log2", "arg_stats", 0.001, 0.0, 1e6, "map arg_hist")


def test_json_and_dict_give_the_same_config(tmp_path: Path) -> None:
    data = _one(COUNTER)
    from_json = config.load(_write(tmp_path, json.dumps(data), "x.json"))
    assert from_json.entries[0].metrics[0].name == config.parse(data).entries[0].metrics[0].name == "c_total"
    assert config.parse(data).listen == config.DEFAULT_LISTEN == "127.0.0.1:9435"


def test_tools_expand_to_their_object_and_metrics() -> None:
    cfg = config.parse({"objects": [{"tool": "syscalls", "rodata": {"target_pid": 5}},
                                    {"tool": "syscount", "name": "sc"}, {"tool": "bpf_stats"}]})
    sysc, sc, st = cfg.entries
    assert (sysc.name, sysc.kind, sysc.object_name, sysc.rodata) == ("syscalls", "tool", "exporter/syscalls",
                                                                      {"target_pid": 5})
    assert [m.name for m in sysc.metrics] == ["bpfkit_syscalls_total", "bpfkit_syscalls_out_of_range_total"]
    assert sc.name == "sc" and sc.object_name == "exporter/procs"
    assert [m.type for m in sc.metrics] == ["counter", "counter", "histogram", "counter"]
    assert (st.collector, st.metrics) == ("progstats:ProgStatsCollector", ())
    assert tools.available() == ["syscalls", "syscount", "bpf_stats", "runqlat", "tcpretrans"]
    (rq,) = config.parse({"objects": [{"tool": "runqlat", "rodata": {"bpfkit_filter_tgid": 7}}]}).entries
    assert (rq.object_name, rq.rodata) == ("tools/runqlat",
                                            {"unit_ns": 1, "with_sum": 1, "bpfkit_filter_tgid": 7})
    assert [(m.name, m.type, m.scale, m.sum_map) for m in rq.metrics] == [
        ("bpfkit_runqueue_latency_seconds", "histogram", 1e-9, "hist_sum"),
        ("bpfkit_runqlat_missed_total", "counter", 1.0, "")]


def test_every_ready_tool_fits_its_object() -> None:
    for name in tools.available():
        (entry,) = config.parse({"objects": [{"tool": name}]}).entries
        if entry.collector:
            continue
        spec = bpfkit.open(entry.object_name)
        assert [collectors.plan(m, spec).spec for m in entry.metrics] == list(entry.metrics)


@pytest.mark.parametrize("data, message", [
    ({}, "exporter config: no [[objects]] entries: nothing to export"),
    ({"objects": []}, "no [[objects]] entries"),
    ({"objcts": []}, "exporter config: unknown key 'objcts'; expected one of: exporter, objects"),
    ({"objects": {"tool": "syscalls"}}, "exporter config: 'objects' must be a list, got a table"),
    ({"objects": [{"tool": "syscalls"}], "exporter": {"listen": "localhost"}},
     "exporter config: [exporter]: listen address 'localhost' is not HOST:PORT"),
    ({"objects": [{"name": "x"}]}, 'exporter config: objects[0] ("x"): needs exactly one of object'),
    ({"objects": [{"tool": "syscalls", "object": "x"}]}, "got object and tool"),
    ({"objects": [{"tool": "nope"}]},
     "exporter config: objects[0]: unknown tool 'nope'; available: syscalls, syscount, bpf_stats, runqlat, tcpretrans"),
    ({"objects": [{"tool": "bpf_stats", "rodata": {"x": 1}}]}, "it takes no rodata, attach or metrics"),
    ({"objects": [{"tool": "syscalls", "atach": []}]},
     "objects[0]: unknown key 'atach'; expected one of: attach, code, metrics, name, object, rodata, source, tool"),
    ({"objects": [{"object": "no/such/thing"}]}, "object 'no/such/thing' is neither a file (relative paths are taken "
                                                 "from"),
    ({"objects": [{"source": "missing.bpf.c"}]}, "source file"),
    ({"objects": [{"object": "tests/exporter_test"}]}, "no metrics: add [[objects.metrics]] tables"),
    ({"objects": [{"tool": "syscalls", "rodata": {"target_pid": [1]}}]},
     "objects[0] rodata: target_pid must be a number, boolean or string, got a list"),
    ({"objects": [{"tool": "syscalls", "attach": ["a", "a"]}]}, "attach names a program twice"),
    ({"objects": [{"tool": "syscalls", "attach": "on_sys_enter"}]}, "'attach' must be a list, got the string"),
    ({"objects": [{"tool": "syscalls"}, {"tool": "syscalls"}]},
     "exporter config: objects[1]: entry name 'syscalls' is already used by exporter config: objects[0]"),
    ({"objects": [{"tool": "bpf_stats"}, {"tool": "bpf_stats", "name": "again"}]},
     "tool 'bpf_stats' exposes 'bpfkit_prog_run_time_seconds', as does"),
])
def test_entry_errors(data: dict[str, Any], message: str) -> None:
    assert message in _err(data)


@pytest.mark.parametrize("metric, message", [
    ({"type": "counter", "map": "calls"}, "metrics[0]: missing 'name' (a string)"),
    ({**COUNTER, "name": "9lives"}, "'9lives' is not a Prometheus metric name"),
    ({**COUNTER, "type": "summary"}, "type 'summary' is not one of: counter, gauge, histogram"),
    ({**COUNTER, "global": "seen"}, "needs exactly one of map (a BPF map of the object) or global"),
    ({"name": "c", "type": "counter"}, "needs exactly one of map"),
    ({**COUNTER, "buckets": "log2"}, "'buckets' is only for histograms (this metric is a counter)"),
    ({**COUNTER, "scale": 0}, "scale must be a positive number, got 0.0"),
    ({**COUNTER, "skip_zero": "yes"}, "'skip_zero' must be true or false, got the string 'yes'"),
    ({**COUNTER, "labels": [{"name": "a", "field": "key"}, {"name": "a", "field": "key"}]},
     "label 'a' is defined twice"),
    ({**COUNTER, "labels": [{"name": "__x", "field": "key"}]}, "'__x' is not a Prometheus label name"),
    ({**COUNTER, "labels": [{"name": "pid", "field": "keys.pid"}]},
     'labels[0] ("pid"): field \'keys.pid\' must be key, key.<field>[.<field>...], or value.<field>'),
    ({**COUNTER, "labels": [{"name": "pid", "field": "key.pid", "decoder": "pid"}]},
     "decoder 'pid' is not one of: int, hex, string, comm, syscall, errno, cgroup, ip, static"),
    ({**COUNTER, "labels": [{"name": "op", "field": "key.nr", "decoder": "static"}]}, "decoder 'static' needs 'map'"),
    ({**COUNTER, "labels": [{"name": "op", "field": "key.nr", "decoder": "static", "map": {"one": "x"}}]},
     "decoder 'static': map key 'one' is not an integer"),
    ({**COUNTER, "labels": [{"name": "op", "field": "key.nr", "decoder": "static", "map": {"1": 2}}]},
     "decoder 'static': map value for '1' must be a string, got the number 2"),
    ({**COUNTER, "labels": [{"name": "op", "field": "key.nr", "colour": "red"}]}, "unknown key 'colour'"),
    ({**COUNTER, "global": None, "map": None}, "needs exactly one of map"),
    ({"name": "g", "type": "gauge", "global": "seen", "value": "x"}, "a global variable has no key or value"),
    ({"name": "h", "type": "histogram", "global": "seen"}, "a histogram reads a map"),
    ({"name": "h", "type": "histogram", "map": "arg_hist", "value": "x"}, "a histogram's value is its bucket counts"),
    ({"name": "h", "type": "histogram", "map": "arg_hist", "labels": [{"name": "le", "field": "key"}]},
     "'le' is the histogram's bucket label"),
    ({"name": "h", "type": "histogram", "map": "arg_hist", "labels": [{"name": "c", "field": "value.x"}]},
     "histogram labels come from the key"),
    ({"name": "h", "type": "histogram", "map": "arg_hist", "buckets": "exp2"}, "buckets 'exp2' is not one of: log2"),
    ({"name": "h", "type": "histogram", "map": "arg_hist", "buckets": "linear", "lo": 0, "hi": 0, "step": 1},
     "linear buckets need the lo, hi, step of BPFKIT_LINEAR_HIST with lo < hi and step > 0 (got lo=0, hi=0"),
    ({"name": "h", "type": "histogram", "map": "arg_hist", "step": 5}, "lo, hi and step are for buckets = \"linear\""),
    ({"name": "h", "type": "histogram", "map": "arg_hist", "min_le": 10, "max_le": 10},
     "min_le (10) must be below max_le (10)"),
    ({"name": "h", "type": "histogram", "map": "arg_hist", "skip_zero": True}, "skip_zero is for counters and gauges"),
])
def test_metric_errors_name_the_entry_and_metric(metric: dict[str, Any], message: str) -> None:
    metric = {k: v for k, v in metric.items() if v is not None}
    text = _err(_one(metric))
    assert text.startswith("exporter config: objects[0] (\"t\") metrics[0]"), text
    assert message in text


def test_errors_name_the_file(tmp_path: Path) -> None:
    p = _write(tmp_path, '[[objects]]\nname = "a"\nobject = "tests/exporter_test"\n[[objects.metrics]]\n'
                         'name = "x"\ntype = "counter"\nmap = "calls"\nlabels = [{ name = "p", field = "pid" }]\n')
    with pytest.raises(BpfUsageError) as e:
        config.load(p)
    assert str(e.value) == (f'{p}: objects[0] ("a") metrics[0] ("x") labels[0] ("p"): field \'pid\' must be key, '
                            'key.<field>[.<field>...], or value.<field> (e.g. "key.pid", "value.comm")')


def test_unreadable_or_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(BpfUsageError, match=r"cannot read exporter config .*missing.toml: No such file"):
        config.load(tmp_path / "missing.toml")
    with pytest.raises(BpfUsageError, match=r"bad.toml: not valid TOML: .*line 1"):
        config.load(_write(tmp_path, "[[objects]\n", "bad.toml"))
    with pytest.raises(BpfUsageError, match=r"x.yaml: YAML is not supported; write the config in TOML"):
        config.load(_write(tmp_path, "objects: []\n", "x.yaml"))
    with pytest.raises(BpfUsageError, match=r"x.json: not valid JSON"):
        config.load(_write(tmp_path, "{", "x.json"))


def test_relative_paths_are_taken_from_the_config_dir(tmp_path: Path) -> None:
    src = Path(find_object("tests/exporter_test") or "")
    (tmp_path / "objs").mkdir()
    (tmp_path / "objs" / "mine.bpf.o").write_bytes(src.read_bytes())
    (tmp_path / "prog.bpf.c").write_text("// not compiled by parse()\n")
    p = _write(tmp_path, '[[objects]]\nobject = "objs/mine.bpf.o"\n[[objects.metrics]]\nname = "a"\ntype = "gauge"\n'
                         'global = "seen"\n[[objects]]\nsource = "prog.bpf.c"\n[[objects.metrics]]\nname = "b"\n'
                         'type = "gauge"\nglobal = "seen"\n')
    a, b = config.load(p).entries
    assert (a.name, a.target) == ("mine", str(tmp_path / "objs" / "mine.bpf.o"))
    assert (b.name, b.kind, b.target) == ("prog", "source", str(tmp_path / "prog.bpf.c"))


def test_metric_names_must_not_clash() -> None:
    two = {"objects": [{"tool": "syscalls"}, {"object": "tests/exporter_test", "metrics": [
        {"name": "bpfkit_syscalls", "type": "gauge", "global": "seen"}]}]}
    assert "metric name 'bpfkit_syscalls' clashes with exporter config: objects[0] (tool 'syscalls') metrics[0]" \
        in _err(two)
    hist = _one({"name": "h", "type": "histogram", "map": "arg_hist"})
    hist["objects"][0]["metrics"].append({"name": "h_count", "type": "gauge", "global": "seen"})
    assert "(both expose 'h_count')" in _err(hist)


@pytest.mark.parametrize("listen, want", [
    ("127.0.0.1:9435", ("127.0.0.1", 9435)), (":9435", ("0.0.0.0", 9435)), ("[::1]:0", ("::1", 0)),
    ("localhost:80", ("localhost", 80)),
])
def test_listen_addresses(listen: str, want: tuple[str, int]) -> None:
    assert config.parse_listen(listen) == want


@pytest.mark.parametrize("listen", ["9435", "host:", "a:99999", "::1:80"])
def test_bad_listen_addresses(listen: str) -> None:
    with pytest.raises(BpfUsageError, match=re.escape(f"listen address {listen!r} is not HOST:PORT")):
        config.parse_listen(listen)


# -- checks against the object, before it is loaded ----------------------------------------------

def _plan_err(metric: dict[str, Any], obj: str = "tests/exporter_test") -> str:
    (m,) = config.parse(_one(metric)).entries[0].metrics
    with pytest.raises(BpfUsageError) as e:
        collectors.plan(m, bpfkit.open(obj))
    text = str(e.value)
    assert text.startswith(m.where + ": "), text
    return text[len(m.where) + 2:]


@pytest.mark.parametrize("metric, obj, message", [
    ({**COUNTER, "map": "nope"}, "tests/exporter_test",
     "object 'exporter_test' has no map 'nope'; its maps: getpid_calls, getpid_by_cgroup, calls, arg_hist, "
     "arg_stats, errors"),
    ({**COUNTER, "map": ".bss"}, "tests/exporter_test", "has no map '.bss' (global variables: use global = \"name\")"),
    ({**COUNTER, "map": "events"}, "tests/count",
     "map 'events' is a ringbuf map; metrics read hash, array, percpu_hash, percpu_array, lru_hash, lru_percpu_hash"),
    ({**COUNTER, "map": "procs"}, "exporter/procs",
     "map 'procs' has struct values; name the field to export with value = \"...\" (numeric fields: calls, reads)"),
    ({**COUNTER, "map": "procs", "value": "comm"}, "exporter/procs", "value value.comm is |S16, not a number"),
    ({**COUNTER, "map": "procs", "value": "cals"}, "exporter/procs",
     "value has no field 'cals'; its fields: calls, reads, comm"),
    ({**COUNTER, "labels": [{"name": "p", "field": "key.tid"}]}, "tests/exporter_test",
     "key has no field 'tid'; its fields: pid, nr"),
    ({**COUNTER, "labels": [{"name": "p", "field": "key.pid.x"}]}, "tests/exporter_test",
     "key.pid has no field 'x'; its fields: none (it is a uint32)"),
    ({**COUNTER, "labels": [{"name": "p", "field": "key.pid", "decoder": "string"}]}, "tests/exporter_test",
     "label 'p': field 'key.pid' is uint32; decoder 'string' needs a char array field (e.g. char comm[16])"),
    ({**COUNTER, "map": "getpid_calls", "labels": [{"name": "c", "field": "key.comm", "decoder": "comm"}]},
     "tests/exporter_test", "label 'c': field 'key.comm' is |S16; decoder 'comm' needs an integer field"),
    ({**COUNTER, "map": "getpid_calls", "labels": [{"name": "k", "field": "key"}]}, "tests/exporter_test",
     "label 'k': field 'key' is a struct; decoder 'int' needs an integer field"),
    ({**COUNTER, "map": "arg_stats", "value": "count", "labels": [{"name": "x", "field": "value.min"}]},
     "tests/exporter_test", "labels from value fields are not supported for per-CPU map 'arg_stats'"),
    ({"name": "g", "type": "gauge", "global": "nope"}, "tests/exporter_test",
     "object 'exporter_test' has no global variable 'nope'; its globals: seen, target_cgroup, hist_nr, hist_arg"),
    ({"name": "h", "type": "histogram", "map": "calls"}, "tests/exporter_test",
     "map 'calls': a keyed histogram's key is {key, slot} (BPFKIT_LOG2_HIST(name) or BPFKIT_KEYED_LOG2_HIST(name, "
     "key_type, n)); got fields pid, nr"),
    ({"name": "h", "type": "histogram", "map": "arg_stats"}, "tests/exporter_test",
     "map 'arg_stats' has [('count', '<u8'), ('total', '<i8'), ('min', '<i8'), ('max', '<i8')] values; a "
     "histogram map counts in integer slots"),
    ({"name": "h", "type": "histogram", "map": "read_bytes", "labels": [{"name": "x", "field": "key"}]},
     "exporter/procs", "map 'read_bytes' is one histogram (its key is the slot): it has no key fields for labels"),
    ({"name": "h", "type": "histogram", "map": "arg_hist", "labels": [{"name": "x", "field": "key.pid"}]},
     "tests/exporter_test", "key has no field 'pid'; its fields: none (it is a uint32)"),
    ({"name": "h", "type": "histogram", "map": "lin"}, "tests/maps_hist",
     "map 'lin' has 12 slots, but log2 buckets have 66: is it BPFKIT_LOG2_HIST(name)? (BPFKIT_LINEAR_HIST needs "
     "buckets = \"linear\" with its lo, hi, step)"),
    ({"name": "h", "type": "histogram", "map": "lin", "buckets": "linear", "lo": 0, "hi": 100, "step": 5},
     "tests/maps_hist", "map 'lin' has 12 slots, but linear buckets lo=0, hi=100, step=5 have 22"),
    ({"name": "h", "type": "histogram", "map": "arg_hist", "sum_map": "calls"}, "tests/exporter_test",
     "sum_map 'calls' must hold struct bpfkit_stats values (BPFKIT_STATS or BPFKIT_KEYED_STATS)"),
    ({"name": "h", "type": "histogram", "map": "klat", "sum_map": "st"}, "tests/maps_hist",
     "sum_map 'st' must be a BPFKIT_KEYED_STATS keyed like the histogram, got a percpu_array map"),
    ({"name": "h", "type": "histogram", "map": "klin", "buckets": "linear", "lo": 0, "hi": 100, "step": 10,
      "sum_map": "kst"}, "tests/maps_hist", "sum_map 'kst' is keyed by uint32, the histogram by uint64"),
    ({"name": "h", "type": "histogram", "map": "lat", "sum_map": "kst"}, "tests/maps_hist",
     "sum_map 'kst' must be one BPFKIT_STATS for a single histogram, got a percpu_hash map"),
])
def test_metric_checked_against_the_object(metric: dict[str, Any], obj: str, message: str) -> None:
    assert message in _plan_err(metric, obj)


def test_defaults_by_field_type() -> None:
    m = config.parse(_one({**COUNTER, "map": "getpid_calls", "labels": [
        {"name": "pid", "field": "key.pid"}, {"name": "comm", "field": "key.comm"}]})).entries[0].metrics[0]
    p = collectors.plan(m, bpfkit.open("tests/exporter_test"))
    assert [(lp.root, lp.path, lp.decoder_name) for lp in p.labels] == [("key", ("pid",), "int"),
                                                                         ("key", ("comm",), "string")]
    assert math.isinf(config.parse(_one({"name": "h", "type": "histogram", "map": "lin", "buckets": "linear",
                                          "lo": -5, "hi": 5, "step": 1})).entries[0].metrics[0].min_le)
