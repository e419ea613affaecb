"""API calls the kernel refuses with a bare EINVAL (or that it takes and then returns garbage for)
get a typed error saying what is wrong (issue 11: 21 such errors were just "Invalid argument
(errno 22)"). Each case makes the real call against the kernel and checks the words that explain it."""
from __future__ import annotations

import os
import uuid
from typing import Any, Callable, Iterator

import numpy as np
import pytest

import bpfkit
from bpfkit import _sys as sc
from bpfkit import counters
from bpfkit.errors import BpfError
from bpfkit.maps import Map
from bpfkit.probes.net import attach_tc, attach_xdp
from bpfkit.probes.sampling import attach_perf_event, max_sample_rate
from bpfkit.probes.tracepoint import attach_raw_tracepoint, attach_tracepoint
from bpfkit.probes.uprobe import attach_uprobe
from bpfkit.testing import fixtures


@pytest.fixture(autouse=True)
def _libbpf_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    # these are loader/failures.py's words, the libbpf backend's; the native loader (the default
    # since the merge) explains the same refusals in its own words, tested with it
    monkeypatch.setenv("BPFKIT_LOADER", "libbpf")


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")


class World:
    def __init__(self) -> None:
        self.tr = bpfkit.load("tests/testrun_progs")
        self.cnt = bpfkit.load("tests/count")
        self.pf = bpfkit.load("tests/probes_perf")
        self.up = bpfkit.load("tests/probes_uprobe")
        self.xdp = next(p for p in self.tr.progs.values() if p.type == "xdp")
        self.tc = next(p for p in self.tr.progs.values() if p.type == "sched_cls")
        self.arr = Map.create("array", "u4", "u8", 4)
        self.exe = str(fixtures.uprobe_target())
        self.pin = f"/sys/fs/bpf/bpfkit_rel_{uuid.uuid4().hex[:10]}"

    def close(self) -> None:
        if os.path.exists(self.pin):
            os.unlink(self.pin)
        for o in (self.tr, self.cnt, self.pf, self.up, self.arr):
            o.close()


@pytest.fixture(scope="module")
def w() -> Iterator[World]:
    world = World()
    yield world
    world.close()


def _pinned_prog(w: World) -> Map:
    sc.obj_pin(w.xdp.fd, w.pin)
    return Map.from_pinned(w.pin)


def _inner_mismatch(w: World) -> None:
    with Map.create("array", "u4", "u8", 1) as inner, Map.create("hash", "u4", "u8", 1) as other, \
            Map.create("array_of_maps", "u4", None, 2, inner_map=inner) as outer:
        outer[0] = other.fd


def _prog_array_gets_map(w: World) -> None:
    with Map.create("prog_array", "u4", "u4", 2) as pa:
        pa[0] = w.arr.fd


def _attach_twice(w: World) -> None:
    first = w.cnt.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid")
    try:
        w.cnt.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid")
    finally:
        first.close()


def _spec_bad_type(w: World) -> None:
    spec = bpfkit.open("tests/count")
    spec.programs.on_getpid.prog_type = 999
    spec.load()


CASES: dict[str, tuple[Callable[[World], Any], str]] = {
    "from_fd of a program": (lambda w: Map.from_fd(os.dup(w.xdp.fd)), "is bpf-prog, not a BPF map"),
    "from_fd of a file": (lambda w: Map.from_fd(os.open("/etc/hostname", os.O_RDONLY)), "not a BPF map"),
    "from_pinned of a program": (_pinned_prog, "is bpf-prog, not a BPF map"),
    "prog_array given a map": (_prog_array_gets_map, "a slot takes the fd of a loaded BPF program"),
    "array_of_maps given another shape": (_inner_mismatch, "shaped like the inner map"),
    "sampling faster than the kernel allows": (
        lambda w: w.pf.progs.on_sample.attach_perf_event("cpu-clock", frequency=max_sample_rate() + 1),
        "perf_event_max_sample_rate"),
    "xdp test run of 4 bytes": (lambda w: w.xdp.test_run(b"\0" * 4), "Ethernet header"),
    "xdp test run with a 7-byte ctx": (lambda w: w.xdp.test_run(b"\0" * 64, ctx=b"\1" * 7), "struct xdp_md"),
    "tc test run of 4 bytes": (lambda w: w.tc.test_run(b"\0" * 4), "Ethernet header"),
    "raw_tp test run with a packet": (lambda w: w.tr.progs.raw_args_probe.test_run(b"\0" * 64), "takes no packet"),
    "raw_tp test run repeated": (lambda w: w.tr.progs.raw_args_probe.test_run(ctx=b"\0" * 24, repeat=5),
                                 "runs exactly once"),
    "raw_tp test run on a cpu without the flag": (
        lambda w: w.tr.progs.raw_args_probe.test_run(ctx=b"\0" * 24, cpu=sc.possible_cpus() - 1)
        if sc.possible_cpus() > 1 else pytest.skip("one CPU"), "BPF_F_TEST_RUN_ON_CPU"),
    "syscall test run with a packet": (lambda w: w.tr.progs.calc.test_run(b"\0" * 16), "takes no packet"),
    "syscall test run with a 70000-byte ctx": (lambda w: w.tr.progs.calc.test_run(ctx=b"\0" * 70000),
                                               "at most 65535"),
    "test run with unknown flags": (lambda w: w.xdp.test_run(b"\0" * 64, flags=1 << 5), "flags="),
    "BPF_F_LOCK without a spin lock": (lambda w: w.arr.update_elem(1, 1, flags=sc.BPF_F_LOCK), "bpf_spin_lock"),
    "tracepoint given a map fd": (lambda w: attach_tracepoint(w.arr.fd, "syscalls", "sys_enter_getpid"),
                                  "is bpf-map, not a loaded BPF program"),
    "tracepoint given an xdp program": (
        lambda w: attach_tracepoint(w.xdp.fd, "syscalls", "sys_enter_getpid"), "needs a TRACEPOINT program"),
    "raw tracepoint given a tracepoint program": (
        lambda w: attach_raw_tracepoint(w.cnt.progs.on_getpid.fd, "sys_enter"), "needs a RAW_TRACEPOINT"),
    "raw tracepoint reading past its args": (
        lambda w: w.tr.progs.raw_args_probe.attach_raw_tracepoint("sys_enter"), "reads ctx->args[] past the 2"),
    "uprobe given a tracepoint program": (
        lambda w: attach_uprobe(w.cnt.progs.on_getpid.fd, w.exe, "bpfkit_add"), "needs a KPROBE program"),
    "perf event given a tracepoint program": (
        lambda w: attach_perf_event(w.cnt.progs.on_getpid.fd, "cpu-clock", frequency=10),
        "needs a PERF_EVENT program"),
    "xdp given a tracepoint program": (
        lambda w: attach_xdp(w.cnt.progs.on_getpid.fd, "lo", mode="generic"), "needs a XDP program"),
    "tc given an xdp program": (lambda w: attach_tc(w.xdp.fd, "lo"), "needs a SCHED_CLS program"),
    "hash map of 0 entries": (lambda w: Map.create("hash", "u4", "u8", 0), "max_entries is 0"),
    "ring buffer of 12345 bytes": (lambda w: Map.create("ringbuf", None, None, 12345), "power of 2"),
    "array with an 8-byte key": (lambda w: Map.create("array", "u8", "u8", 4), "4-byte key"),
    "lpm trie with a 4-byte key": (lambda w: Map.create("lpm_trie", "u4", "u8", 4), "prefix length"),
    "program of an unknown type": (_spec_bad_type, "refused before verification"),
    "the same program twice on a tracepoint": (_attach_twice, "attached there already"),
    "counting neither kernel nor user": (
        lambda w: counters.count(["cpu-clock"], exclude_kernel=True, exclude_user=True), "count nothing"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refusal_is_explained(w: World, case: str) -> None:
    call, words = CASES[case]
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(BpfError) as ei:
        call(w)
    msg = str(ei.value)
    assert words in msg, msg
    assert "Invalid argument (errno 22)" not in msg, msg
    assert len(os.listdir("/proc/self/fd")) == before
    assert w.xdp.fd >= 0 and np.all(w.arr.to_numpy()[1] == 0)  # the world is untouched
