"""Issue 10, item 5: what used to do nothing and say nothing now says what happened and what to do."""
from __future__ import annotations

import os
import textwrap

import pytest

import bpfkit

# one program that names its target and one that cannot (a bare uprobe): the mixed case
MIXED_SRC = textwrap.dedent("""\
    #include "vmlinux.h"
    #include <bpf/bpf_helpers.h>
    const volatile __u32 target_pid = 0;
    __u64 getppids = 0;
    __u64 mallocs = 0;
    SEC("tracepoint/syscalls/sys_enter_getppid")
    int counted(void *ctx)
    {
        if ((bpf_get_current_pid_tgid() >> 32) == target_pid)
            __sync_fetch_and_add(&getppids, 1);
        return 0;
    }
    SEC("uprobe")
    int on_malloc(void *ctx)
    {
        __sync_fetch_and_add(&mallocs, 1);
        return 0;
    }
    char LICENSE[] SEC("license") = "GPL";
    """)


def test_attach_refuses_bare_sections_naming_each_program_and_its_call() -> None:
    with bpfkit.load("examples/probes") as obj:
        with pytest.raises(bpfkit.AttachError) as exc:
            obj.attach()
        assert str(exc.value).splitlines() == [
            "object 'probes': 5 of 5 programs cannot be attached by their SEC() name:",
            "  on_tracepoint: SEC('tracepoint') names no target: call "
            "obj.progs.on_tracepoint.attach_tracepoint(CATEGORY, NAME)",
            "  on_uprobe: SEC('uprobe') names no target: call obj.progs.on_uprobe.attach_uprobe(BINARY, SYMBOL)",
            "  on_usdt: SEC('usdt') names no target: call obj.progs.on_usdt.attach_usdt(BINARY, PROVIDER, NAME)",
            "  on_sample: SEC('perf_event') names no target: call "
            "obj.progs.on_sample.attach_perf_event(EVENT, frequency=HZ)",
            "  on_kprobe: SEC('kprobe') names no target: call obj.progs.on_kprobe.attach_kprobe(FUNCTION)",
        ]
        assert obj.links == []
        with pytest.raises(bpfkit.AttachError, match=r"^program 'on_usdt': SEC\('usdt'\) names no target: call "
                           r"obj\.progs\.on_usdt\.attach_usdt\(BINARY, PROVIDER, NAME\)$"):
            obj.progs.on_usdt.attach()


def test_mixed_object_attaches_the_attachable_programs_only_when_named() -> None:
    spec = bpfkit.open(bpfkit.compile(MIXED_SRC))
    spec.rodata.target_pid = os.getpid()
    with spec.load() as obj:
        with pytest.raises(bpfkit.AttachError) as exc:
            obj.attach()
        assert str(exc.value).splitlines() == [
            f"object {spec.name!r}: 1 of 2 programs cannot be attached by their SEC() name:",
            "  on_malloc: SEC('uprobe') names no target: call obj.progs.on_malloc.attach_uprobe(BINARY, SYMBOL)",
            "To attach only the programs that name their target: obj.attach('counted')",
        ]
        assert obj.links == []  # all or nothing: the attachable one was not attached either
        for _ in range(3):
            os.getppid()
        assert obj.bss.getppids == 0
        with obj.attach("counted") as group:
            assert len(group) == 1
            for _ in range(5):
                os.getppid()
        assert obj.bss.getppids == 5
        with pytest.raises(bpfkit.AttachError, match="on_malloc: SEC"):
            obj.attach("on_malloc")
        with pytest.raises(bpfkit.BpfError, match="no_such_prog"):
            obj.attach("no_such_prog")


def test_unknown_global_lists_the_variables_there_are() -> None:
    spec = bpfkit.open("examples/execs")
    with pytest.raises(AttributeError) as exc:
        spec.rodata.parent_pdi = 1
    assert str(exc.value) == ".rodata has no variable 'parent_pdi' (did you mean 'parent_pid'?); it has: parent_pid"
    with pytest.raises(AttributeError) as exc:
        spec.bss.nothing_like_it
    assert str(exc.value) == ".bss has no variable 'nothing_like_it'; it has: execs, exits_seen"


def test_internal_globals_are_not_listed() -> None:
    spec = bpfkit.open("examples/execs")
    # bpfkit.h's record-type markers and drop counters live in .rodata/.bss, but are not the user's
    assert repr(spec.rodata) == "<.rodata: parent_pid=0>"
    assert repr(spec.bss) == "<.bss: execs=0, exits_seen=0>"
    assert dir(spec.bss) == ["array", "dtype", "execs", "exits_seen"]
    with spec.load() as obj:
        assert repr(obj.bss) == "<.bss: execs=0, exits_seen=0>"
        assert obj.reader("events").has_drop_counter  # still there for the reader


def test_map_spec_repr_shows_what_a_buffer_carries() -> None:
    maps = bpfkit.open("examples/execs").maps
    assert repr(maps.events) == ("<MapSpec events ringbuf 256 KiB record=[('pid', '<u4'), ('ppid', '<u4'), "
                                 "('comm', 'S16')]>")
    assert repr(maps.exits) == ("<MapSpec exits perf_event_array record=[('pid', '<u4'), ('exit_code', '<i4'), "
                                "('comm', 'S16')]>")
    assert repr(maps.counts) == "<MapSpec counts hash key=|S16 value=uint64 max_entries=1024>"
    assert repr(maps[".bss"]) == "<MapSpec .bss global variables: execs, exits_seen>"


def test_exporter_refuses_an_object_it_cannot_attach_by_section() -> None:
    pytest.importorskip("prometheus_client")
    from bpfkit.exporter import Exporter

    cfg = {"objects": [{"object": "examples/probes", "metrics": [
        {"name": "hits", "type": "gauge", "global": "tracepoint_hits"}]}]}
    with pytest.raises(bpfkit.BpfUsageError) as exc:
        Exporter(cfg).start(serve=False)
    lines = str(exc.value).splitlines()
    assert lines[0] == "exporter config: objects[0]: object 'probes': 5 of 5 programs cannot be attached by their SEC() name:"
    assert lines[-1] == "this exporter attaches by SEC() only: list the programs to attach with attach = [...]"
