"""Long-lived processes must not grow (issue 11): an exception at any point of an attach (here a
timer signal whose handler raises, like Ctrl-C) leaves no fd behind; an Object does not keep the
links it made once they are closed; attaching and detaching a tracepoint in a loop does not grow
the heap."""
from __future__ import annotations

import gc
import os
import random
import signal
import tracemalloc
import types
import weakref
from typing import Any, Callable

import pytest

import bpfkit
from bpfkit.btf.kernel_index import vmlinux_index
from bpfkit.maps import Map
from bpfkit.testing import fixtures

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs"),
    # an fd orphaned by the interrupt is closed by its FileIO when collected, which says so
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class _Interrupted(Exception):
    pass


def _interrupt_at_random(action: Callable[[], Any], rounds: int, max_delay_us: int, seed: int) -> int:
    """Run ``action`` ``rounds`` times, each with a one-shot timer whose handler raises at a random
    moment (as Ctrl-C does). Returns how many rounds were interrupted."""
    rng = random.Random(seed)
    state = {"armed": False}

    def handler(signum: int, frame: Any) -> None:
        if state["armed"]:
            state["armed"] = False
            raise _Interrupted

    old = signal.signal(signal.SIGALRM, handler)
    hit = 0
    try:
        for _ in range(rounds):
            delay = rng.randint(1, max_delay_us) / 1e6
            try:
                try:
                    state["armed"] = True
                    signal.setitimer(signal.ITIMER_REAL, delay)
                    action()
                finally:
                    state["armed"] = False
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except _Interrupted:
                hit += 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    return hit


def test_interrupted_tracepoint_attach_leaks_no_fd() -> None:
    gc.collect()
    before = _fds()
    with bpfkit.load("tests/minimal") as obj:
        prog = next(iter(obj.progs.values()))
        with prog.attach_tracepoint("syscalls", "sys_enter_getpid"):
            pass  # warm caches (tracefs id, features) so the loop times only the attach

        def attach_detach() -> None:
            for lk in obj.links:  # one an earlier round attached and was cut off before closing
                lk.close()        # (a program attaches to a tracepoint once: EEXIST otherwise)
            prog.attach_tracepoint("syscalls", "sys_enter_getpid").close()

        hit = _interrupt_at_random(attach_detach, 300, 400, seed=11)
    gc.collect()
    assert hit > 30  # the timer really cut into the attaches
    assert _fds() == before


def test_interrupted_uprobe_and_perf_event_attach_leak_no_fd() -> None:
    exe = str(fixtures.uprobe_target())
    # the process-wide kernel BTF index keeps its mapping of /sys/kernel/btf/vmlinux (CPython's mmap
    # holds a dup of the fd): made first, so that only what the attaches leave is counted
    vmlinux_index()
    gc.collect()
    before = _fds()
    with bpfkit.load("tests/probes_uprobe") as obj, bpfkit.load("tests/probes_perf") as pobj:
        up = obj.progs.on_any
        sample = pobj.progs.on_sample
        up.attach_uprobe(exe, "bpfkit_add").close()

        def both() -> None:
            for lk in obj.links + pobj.links:
                lk.close()
            up.attach_uprobe(exe, "bpfkit_add").close()
            sample.attach_perf_event("cpu-clock", frequency=10).close()

        hit = _interrupt_at_random(both, 200, 600, seed=12)
    gc.collect()
    assert hit > 20
    assert _fds() == before


def test_interrupted_map_create_leaks_no_fd() -> None:
    gc.collect()
    before = _fds()

    def create() -> None:
        Map.create("hash", "u4", "u8", 16, name="rel_leak").close()

    hit = _interrupt_at_random(create, 300, 150, seed=13)
    gc.collect()
    assert hit > 30
    assert _fds() == before


def test_object_lets_closed_links_go() -> None:
    with bpfkit.load("tests/minimal") as obj:
        prog = next(iter(obj.progs.values()))
        refs = []
        for _ in range(50):
            link = prog.attach_tracepoint("syscalls", "sys_enter_getpid")
            refs.append(weakref.ref(link))
            link.close()
        del link
        gc.collect()
        # at most the last closed link is still referenced (let go at the next attach)
        assert sum(r() is not None for r in refs) <= 1
        assert obj.links == []


def test_tracepoint_attach_detach_loop_does_not_grow() -> None:
    with bpfkit.load("tests/minimal") as obj:
        prog = next(iter(obj.progs.values()))
        for _ in range(50):
            with prog.attach_tracepoint("syscalls", "sys_enter_getpid"):
                pass
        gc.collect()
        tracemalloc.start()
        try:
            start = tracemalloc.get_traced_memory()[0]
            n = 400
            for _ in range(n):
                with prog.attach_tracepoint("syscalls", "sys_enter_getpid"):
                    pass
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - start
        finally:
            tracemalloc.stop()
    # a retained Link is ~170 bytes a cycle (68 kB here); allow a few stray allocations
    assert grown < 8 * 1024, f"{grown} bytes over {n} cycles"


@pytest.mark.parametrize("loader", ["native", "libbpf"])
def test_load_use_close_leaves_nothing_for_the_garbage_collector(loader: str) -> None:
    """An Object's whole life (load, map element access, a global read and written, an attach,
    close) frees everything by reference counting: a reference cycle would keep each load's
    objects (its Model, instructions, maps) alive until the collector runs, and make it run."""
    def life() -> None:
        with bpfkit.load("tests/count", loader=loader) as obj:
            obj.maps.counts[1] = 5
            assert obj.maps.counts[1] == 5
            obj.data.in_value = 3
            assert obj.bss.total == 0
            with obj.progs.on_getpid.attach_tracepoint("syscalls", "sys_enter_getpid"):
                pass

    life()
    gc.collect()
    gc.disable()
    saved = gc.get_debug()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(5):
            life()
        gc.collect()
        # (ctypes' array types are cached weakly by CPython and die in a cycle of their own)
        ours = [o for o in gc.garbage if not isinstance(o, type) and
                ((type(o).__module__ or "").startswith("bpfkit") or
                 (isinstance(o, types.FunctionType) and o.__module__.startswith("bpfkit")))]
    finally:
        gc.garbage.clear()
        gc.set_debug(saved)
        gc.enable()
    assert not ours, sorted({type(o).__qualname__ for o in ours})
