"""USDT probes with programs written for libbpf's unchanged usdt.bpf.h: arguments, cookies,
semaphores, shared libraries, by pid (issue 5)."""
from __future__ import annotations

import os
import textwrap

from typing import Any

import pytest

import bpfkit
from bpfkit.probes import usdt as usdt_mod
from bpfkit.testing import fixtures

pytestmark = pytest.mark.root




def test_usdt_arguments_cookie_library_semaphore_and_constants(bpf_load: Any) -> None:
    n = 25
    exe = fixtures.usdt_target()
    with fixtures.spawn(exe, str(n)) as proc:
        with bpf_load("tests/probes_usdt", target_pid=proc.pid) as obj:
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


def test_semaphore_guarded_probe_stays_off_without_a_tracer(bpf_load: Any) -> None:
    exe = fixtures.usdt_target()
    with fixtures.spawn(exe, "7") as proc:
        with bpf_load("tests/probes_usdt", target_pid=proc.pid) as obj:
            with obj.progs.on_tick.attach_usdt(str(exe), "bpfkit", "tick"):
                out = proc.finish()
            assert obj.bss.ticks == 7 and obj.bss.guarded == 0
    assert out.strip() == "guarded=0"


def test_usdt_by_pid_only_finds_the_probe_in_a_mapped_library(bpf_load: Any) -> None:
    exe = fixtures.usdt_target()
    with fixtures.spawn(exe, "9") as proc, fixtures.spawn(exe, "4") as other:
        with bpf_load("tests/probes_usdt", target_pid=0) as obj:  # no BPF-side filter: the kernel's pid filter must do it
            with obj.progs.on_libtick.attach_usdt(None, "bpfkit_lib", "libtick", pid=proc.pid) as link:
                assert str(fixtures.usdt_lib().resolve()) in link.links[0].description
                proc.finish()
                other.finish()
            assert obj.bss.libticks == 9


def test_spec_slots_are_reused_after_detach(bpf_load: Any) -> None:
    exe = fixtures.usdt_target()
    with bpf_load("tests/probes_usdt", target_pid=1) as obj:
        specs = obj.maps["__bpf_usdt_specs"]
        for _ in range(3):
            with obj.progs.on_tick.attach_usdt(str(exe), "bpfkit", "tick"):
                assert len(usdt_mod._allocator(specs).free) == specs.max_entries - 1
        assert len(usdt_mod._allocator(specs).free) == specs.max_entries


def test_missing_probe_lists_what_the_binary_has(bpf_load: Any) -> None:
    exe = fixtures.usdt_target()
    with bpf_load("tests/probes_usdt", target_pid=1) as obj:
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


_GUARDED_LIB_C = r"""
/* A semaphore-guarded USDT probe in a shared library: the semaphore lives in the library's
 * .probes section, so the kernel must find it at the library's load address in each process. */
#define _SDT_HAS_SEMAPHORES 1
#include <sys/sdt.h>

__attribute__((visibility("hidden"))) unsigned short bpfkit_lib_libguarded_semaphore
	__attribute__((unused)) __attribute__((section(".probes")));

__attribute__((noipa)) int lib_fire_guarded(int i)
{
	if (__builtin_expect(bpfkit_lib_libguarded_semaphore, 0)) {
		DTRACE_PROBE1(bpfkit_lib, libguarded, i);
		return 1;
	}
	return 0;
}
"""
_GUARDED_MAIN_C = r"""
/* usage: prog N. Prints "ready <pid>"; then twice: waits for a line on stdin, calls
 * lib_fire_guarded(0..N-1) and prints "phaseK=<how often the probe fired>". */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int lib_fire_guarded(int i);

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1;
	char line[64];

	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	for (int phase = 0; phase < 2; phase++) {
		long fired = 0;
		if (!fgets(line, sizeof(line), stdin))
			clearerr(stdin);
		for (int i = 0; i < n; i++)
			fired += lib_fire_guarded(i);
		printf("phase%d=%ld\n", phase, fired);
		fflush(stdout);
	}
	return 0;
}
"""


@pytest.fixture(scope="module")
def guarded_lib(tmp_path_factory) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(executable, libusdt_guarded.so) built from the sources above."""
    import shutil
    import subprocess

    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is needed to build the shared-library USDT fixture")
    d = tmp_path_factory.mktemp("usdt_guarded_lib")
    (d / "lib.c").write_text(_GUARDED_LIB_C)
    (d / "main.c").write_text(_GUARDED_MAIN_C)
    lib, exe = d / "libusdt_guarded.so", d / "usdt_guarded_main"
    for cmd in ([gcc, "-O2", "-g", "-shared", "-fPIC", "-o", str(lib), str(d / "lib.c")],
                [gcc, "-O2", "-g", "-o", str(exe), str(d / "main.c"), str(lib), f"-Wl,-rpath,{d}"]):
        subprocess.run(cmd, check=True, capture_output=True)
    return str(exe), str(lib)


def _read_semaphore(pid: int, lib: str, file_offset: int) -> int:
    """The semaphore's current value in process ``pid`` (its writable, private mapping)."""
    real = os.path.realpath(lib)
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            parts = line.split(maxsplit=5)
            if len(parts) < 6 or "w" not in parts[1] or os.path.realpath(parts[5].strip()) != real:
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            off = int(parts[2], 16)
            if off <= file_offset < off + (end - start):
                with open(f"/proc/{pid}/mem", "rb") as mem:
                    mem.seek(start + file_offset - off)
                    return int.from_bytes(mem.read(2), "little")
    raise AssertionError(f"{lib} offset {file_offset:#x} is not mapped writable by {pid}")


def test_semaphore_guarded_probe_in_a_shared_library_is_on_only_while_attached(guarded_lib, bpf_load: Any) -> None:  # type: ignore[no-untyped-def]
    import time

    from bpfkit.binaries import read_usdt_notes

    n = 17
    exe, lib = guarded_lib
    [note] = read_usdt_notes(lib, "bpfkit_lib", "libguarded")
    assert note.semaphore_offset != 0
    with fixtures.spawn(exe, str(n)) as proc:
        assert _read_semaphore(proc.pid, lib, note.semaphore_offset) == 0
        with bpf_load("tests/probes_usdt", target_pid=proc.pid) as obj:
            # by library path, no pid: the kernel raises the semaphore in every process mapping it
            with obj.progs.on_guarded.attach_usdt(lib, "bpfkit_lib", "libguarded"):
                assert _read_semaphore(proc.pid, lib, note.semaphore_offset) == 1
                proc.release()  # phase 0: n calls while attached
                deadline = time.monotonic() + 5
                while obj.bss.guarded < n and time.monotonic() < deadline:
                    time.sleep(0.01)
            assert _read_semaphore(proc.pid, lib, note.semaphore_offset) == 0  # lowered on detach
            out = proc.finish()  # phase 1: n calls after detaching
            assert (obj.bss.guarded, obj.bss.guarded_sum) == (n, n * (n - 1) // 2)
    assert out.split() == [f"phase0={n}", "phase1=0"]
