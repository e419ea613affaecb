"""Every integer that goes into a kernel struct is range-checked where it still has its name
(issue 11): ctypes would truncate it silently (pid=2**40 became 0, the calling process;
max_entries=2**32+5 a 5-entry map; repeat=-1 four billion runs). Each case asserts the
BpfUsageError names the argument, and that nothing was created in the kernel."""
from __future__ import annotations

import os

import numpy as np
import pytest

import bpfkit
from bpfkit import _sys as sc
from bpfkit import counters
from bpfkit.errors import BpfUsageError
from bpfkit.maps import Map
from bpfkit.probes.uprobe import attach_uprobe, attach_uprobe_offset
from bpfkit.testing import fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _refused(fn, *words: str) -> BpfUsageError:  # type: ignore[no-untyped-def]
    before = _fds()
    with pytest.raises(BpfUsageError) as ei:
        fn()
    msg = str(ei.value)
    for w in words:
        assert w in msg, msg
    assert _fds() == before  # nothing was opened on the way to the refusal
    return ei.value


@pytest.fixture(scope="module")
def uprobe_obj():  # type: ignore[no-untyped-def]
    with bpfkit.load("tests/probes_uprobe") as obj:
        yield obj


@pytest.fixture(scope="module")
def perf_obj():  # type: ignore[no-untyped-def]
    with bpfkit.load("tests/probes_perf") as obj:
        yield obj


@pytest.fixture(scope="module")
def testrun_obj():  # type: ignore[no-untyped-def]
    with bpfkit.load("tests/testrun_progs") as obj:
        yield obj


@pytest.mark.parametrize("pid", [2**40, 2**32 + 1, -7, 0, 2**31, 1.5, True])
def test_uprobe_pid_out_of_range(uprobe_obj, pid) -> None:  # type: ignore[no-untyped-def]
    exe = str(fixtures.uprobe_target())
    _refused(lambda: uprobe_obj.progs.on_any.attach_uprobe(exe, "bpfkit_add", pid=pid), "pid")


def test_probe_layer_checks_pid_too(uprobe_obj) -> None:  # type: ignore[no-untyped-def]
    exe = str(fixtures.uprobe_target())
    _refused(lambda: attach_uprobe(uprobe_obj.progs.on_any.fd, exe, "bpfkit_add", pid=2**32 + 1), "pid")
    _refused(lambda: attach_uprobe_offset(uprobe_obj.progs.on_any.fd, exe, 0x1000, pid=-7), "pid")


@pytest.mark.parametrize("offset", [2**64, -4096, 2**63])
def test_uprobe_offset_out_of_range(uprobe_obj, offset: int) -> None:  # type: ignore[no-untyped-def]
    exe = str(fixtures.uprobe_target())
    _refused(lambda: uprobe_obj.progs.on_any.attach_uprobe(exe, "bpfkit_add", offset=offset), "offset")


def test_uprobe_offset_outside_code(uprobe_obj) -> None:  # type: ignore[no-untyped-def]
    # a file offset inside the ELF headers (or past the end) is no instruction: the kernel would
    # take it and the probe would never fire, or corrupt data
    exe = str(fixtures.uprobe_target())
    _refused(lambda: attach_uprobe_offset(uprobe_obj.progs.on_any.fd, exe, 0), "offset", "executable")
    _refused(lambda: attach_uprobe_offset(uprobe_obj.progs.on_any.fd, exe, 1 << 40), "offset")


@pytest.mark.parametrize("cookie", [-1, 2**64])
def test_cookie_out_of_range(uprobe_obj, cookie: int) -> None:  # type: ignore[no-untyped-def]
    exe = str(fixtures.uprobe_target())
    _refused(lambda: uprobe_obj.progs.on_any.attach_uprobe(exe, "bpfkit_add", cookie=cookie), "cookie")


def test_tracepoint_cookie_out_of_range() -> None:
    with bpfkit.load("tests/minimal") as obj:
        prog = next(iter(obj.progs.values()))
        _refused(lambda: prog.attach_tracepoint("syscalls", "sys_enter_getpid", cookie=2**64), "cookie")


@pytest.mark.parametrize("max_entries", [2**32 + 5, -1, 2**64])
def test_map_create_max_entries(max_entries: int) -> None:
    _refused(lambda: Map.create("hash", "u4", "u8", max_entries), "max_entries")


def test_map_create_flags_and_extra() -> None:
    _refused(lambda: Map.create("hash", "u4", "u8", 4, flags=2**32), "flags")
    _refused(lambda: Map.create("hash", "u4", "u8", 4, flags=-1), "flags")
    _refused(lambda: Map.create("bloom_filter", None, "u8", 4, map_extra=2**64), "map_extra")


def test_map_update_flags() -> None:
    with Map.create("hash", "u4", "u8", 4) as m:
        _refused(lambda: m.update_elem(1, 2, flags=2**64), "flags")
        _refused(lambda: m.update_elem(1, 2, flags=-1), "flags")
        _refused(lambda: m.update(np.arange(2), 1, flags=2**32 + 1), "flags")
        assert len(m) == 0


@pytest.mark.parametrize("repeat", [-1, 2**32])
def test_test_run_repeat(testrun_obj, repeat: int) -> None:  # type: ignore[no-untyped-def]
    prog = testrun_obj.progs.calc
    ctx = np.zeros(1, [("a", "i4"), ("b", "i4"), ("p", "i8")]).tobytes()
    _refused(lambda: prog.test_run(ctx=ctx, repeat=repeat), "repeat")


def test_test_run_sizes_and_cpu(testrun_obj) -> None:  # type: ignore[no-untyped-def]
    prog = next(p for p in testrun_obj.progs.values() if p.type == "xdp")
    pkt = bytes(64)
    _refused(lambda: prog.test_run(pkt, data_out_size=-1), "data_out_size")
    _refused(lambda: prog.test_run(pkt, data_out_size=2**32), "data_out_size")
    _refused(lambda: prog.test_run(pkt, ctx_out_size=-5), "ctx_out_size")
    _refused(lambda: prog.test_run(pkt, flags=2**32), "flags")
    _refused(lambda: prog.test_run(pkt, cpu=-1), "cpu")
    _refused(lambda: prog.test_run(pkt, cpu=2**32), "cpu")


def test_perf_event_cpus(perf_obj) -> None:  # type: ignore[no-untyped-def]
    prog = perf_obj.progs.on_sample
    _refused(lambda: prog.attach_perf_event("cpu-clock", frequency=99, cpus=[]), "cpus")
    _refused(lambda: prog.attach_perf_event("cpu-clock", frequency=99, cpus=[-1]), "cpu")
    _refused(lambda: prog.attach_perf_event("cpu-clock", frequency=99, cpus=[2**32]), "cpu")
    _refused(lambda: prog.attach_perf_event("cpu-clock", frequency=99, cpus=[sc.possible_cpus()]), "cpu")


def test_perf_event_rates_and_pid(perf_obj) -> None:  # type: ignore[no-untyped-def]
    prog = perf_obj.progs.on_sample
    _refused(lambda: prog.attach_perf_event("cpu-clock", frequency=-99), "frequency")
    _refused(lambda: prog.attach_perf_event("cpu-clock", period=2**64), "period")
    _refused(lambda: prog.attach_perf_event("cpu-clock", period=10, pid=2**40), "pid")
    _refused(lambda: prog.attach_perf_event("cpu-clock", period=10, pid=-7), "pid")
    _refused(lambda: prog.attach_perf_event("cpu-clock", period=10, cookie=-1), "cookie")


def test_counters_pid_and_cpus() -> None:
    _refused(lambda: counters.count(["page-faults"], pid=2**40), "pid")
    _refused(lambda: counters.count(["page-faults"], pid=2**32 + os.getpid()), "pid")
    _refused(lambda: counters.count(["page-faults"], cpus=[]), "cpus")
    _refused(lambda: counters.count(["page-faults"], cpus=[2**32]), "cpu")


def test_usdt_pid(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with bpfkit.load("tests/probes_usdt") as obj:
        prog = next(iter(obj.progs.values()))
        _refused(lambda: prog.attach_usdt(None, "bpfkit", "tick", pid=2**40), "pid")
        _refused(lambda: prog.attach_usdt(None, "bpfkit", "tick", pid=-7), "pid")


def test_good_values_still_work(uprobe_obj) -> None:  # type: ignore[no-untyped-def]
    # the edges of each range are accepted
    with Map.create("hash", "u4", "u8", 2**20, flags=0) as m:
        m.update_elem(1, 2, flags=sc.BPF_NOEXIST)
        assert m[1] == 2
    exe = str(fixtures.uprobe_target())
    with fixtures.spawn(exe, "3") as proc:
        with uprobe_obj.progs.on_any.attach_uprobe(exe, "bpfkit_add", pid=proc.pid, cookie=2**64 - 1):
            proc.finish()
