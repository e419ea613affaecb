"""USDT probes with programs written for libbpf's unchanged usdt.bpf.h: arguments, cookies,
semaphores, shared libraries, by pid (issue 5)."""
from __future__ import annotations

import os
import textwrap

import pytest

import bpfkit
from bpfkit.probes import usdt as usdt_mod
from bpfkit.testing import fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")


def _spec(pid: int) -> bpfkit.ObjectSpec:
    spec = bpfkit.open("tests/probes_usdt")
    spec.rodata.target_pid = pid
    return spec


def test_usdt_arguments_cookie_library_semaphore_and_constants() -> None:
    n = 25
    exe = fixtures.usdt_target()
    with fixtures.spawn(exe, str(n)) as proc:
        with _spec(proc.pid).load() as obj:
            p = obj.progs
            with p.on_tick.attach_usdt(str(exe), "bpfkit", "tick", cookie=77), \
                    p.on_libtick.attach_usdt(str(fixtures.usdt_lib()), "bpfkit_lib", "libtick", pid=proc.pid), \
                    p.on_guarded.attach_usdt(str(exe), "bpfkit", "guarded"), \
                    p.on_consts.attach_usdt(str(exe), "bpfkit", "consts"):
                out = proc.finish()
            b = obj.bss
            assert out.strip() == f"guarded={n}"  # the kernel raised the semaphore while attached
            assert (b.ticks, b.tick_i_sum, b.tick_v_sum) == (n, n * (n - 1) // 2, 10 * n * (n - 1) // 2)
            assert b.tick_cookie == 77 and obj.data.arg_count == 2
            assert (b.libticks, b.libtick_sum) == (n, n * (n - 1) // 2)
            assert (b.guarded, b.guarded_sum) == (n, n * (n - 1) // 2)
            assert (b.consts_calls, b.const_a, b.const_b, b.const_c) == (1, 7, -9, 200)


def test_semaphore_guarded_probe_stays_off_without_a_tracer() -> None:
    exe = fixtures.usdt_target()
    with fixtures.spawn(exe, "7") as proc:
        with _spec(proc.pid).load() as obj:
            with obj.progs.on_tick.attach_usdt(str(exe), "bpfkit", "tick"):
                out = proc.finish()
            assert obj.bss.ticks == 7 and obj.bss.guarded == 0
    assert out.strip() == "guarded=0"


def test_usdt_by_pid_only_finds_the_probe_in_a_mapped_library() -> None:
    exe = fixtures.usdt_target()
    with fixtures.spawn(exe, "9") as proc, fixtures.spawn(exe, "4") as other:
        with _spec(0).load() as obj:  # no BPF-side filter: the kernel's pid filter must do it
            with obj.progs.on_libtick.attach_usdt(None, "bpfkit_lib", "libtick", pid=proc.pid) as link:
                assert str(fixtures.usdt_lib().resolve()) in link.links[0].description
                proc.finish()
                other.finish()
            assert obj.bss.libticks == 9


def test_spec_slots_are_reused_after_detach() -> None:
    exe = fixtures.usdt_target()
    with _spec(1).load() as obj:
        specs = obj.maps["__bpf_usdt_specs"]
        for _ in range(3):
            with obj.progs.on_tick.attach_usdt(str(exe), "bpfkit", "tick"):
                assert len(usdt_mod._allocator(specs).free) == specs.max_entries - 1
        assert len(usdt_mod._allocator(specs).free) == specs.max_entries


def test_missing_probe_lists_what_the_binary_has() -> None:
    exe = fixtures.usdt_target()
    with _spec(1).load() as obj:
        with pytest.raises(bpfkit.BpfNotFoundError, match=r"bpfkit:nope not found.*bpfkit:tick"):
            obj.progs.on_tick.attach_usdt(str(exe), "bpfkit", "nope")
        with pytest.raises(bpfkit.BpfNotFoundError, match="no USDT probes"):
            obj.progs.on_tick.attach_usdt(str(fixtures.uprobe_target()), "bpfkit", "tick")


def test_program_without_usdt_maps_is_told_to_use_usdt_bpf_h() -> None:
    with bpfkit.load("tests/uprobe_add") as obj:
        with pytest.raises(bpfkit.AttachError, match="usdt.bpf.h"):
            obj.progs.on_add.attach_usdt(str(fixtures.usdt_target()), "bpfkit", "tick")


def test_sec_usdt_path_provider_name_attaches_by_section(tmp_path) -> None:  # type: ignore[no-untyped-def]
    exe = fixtures.usdt_target()
    src = tmp_path / "usdt_sec.bpf.c"
    src.write_text(textwrap.dedent(f"""\
        #include "vmlinux.h"
        #include <bpf/bpf_helpers.h>
        #include <bpf/bpf_tracing.h>
        #include <bpf/usdt.bpf.h>
        const volatile __u32 target_pid = 0;
        __u64 hits = 0;
        __s64 v_sum = 0;
        SEC("usdt/{exe}:bpfkit:tick")
        int BPF_USDT(on_tick, int i, long v)
        {{
            if ((bpf_get_current_pid_tgid() >> 32) == target_pid) {{
                __sync_fetch_and_add(&hits, 1);
                __sync_fetch_and_add(&v_sum, v);
            }}
            return 0;
        }}
        char LICENSE[] SEC("license") = "GPL";
        """))
    spec = bpfkit.open(bpfkit.compile(src))
    with fixtures.spawn(exe, "6") as proc:
        spec.rodata.target_pid = proc.pid
        with spec.load() as obj:
            with obj.attach() as group:
                assert len(group) == 1
                proc.finish()
            assert (obj.bss.hits, obj.bss.v_sum) == (6, 150)
