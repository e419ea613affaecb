"""uprobes beyond the basics: glob patterns (one link each, or one uprobe_multi link), cookies,
libraries by short name with a pid filter, stripped binaries (issue 5)."""
from __future__ import annotations

import os

import pytest

import bpfkit
from bpfkit import features
from bpfkit import syscall as sc
from bpfkit.probes.link import MultiLink
from bpfkit.testing import fixtures

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")
UPROBE_MULTI = features.check("uprobe_multi")


def _spec(pid: int) -> bpfkit.ObjectSpec:
    spec = bpfkit.open("tests/probes_uprobe")
    spec.rodata.target_pid = pid
    return spec


@pytest.mark.parametrize("pie", [True, False])
def test_wildcard_attaches_each_function_with_its_cookie(pie: bool) -> None:
    n = 13
    exe = fixtures.uprobe_target(pie=pie)
    with fixtures.spawn(exe, str(n)) as proc:
        with _spec(proc.pid).load() as obj:
            with obj.progs.on_any.attach_uprobe(str(exe), "bpfkit_*", cookie=3) as link:
                assert isinstance(link, MultiLink) and len(link) == 2  # bpfkit_add, bpfkit_void
                assert all(sc.BPF_LINK_TYPE_NAMES[sc.link_info(lk.fd).type] == "perf_event" for lk in link)
                proc.finish()
            assert obj.bss.hits == n + 1
            assert obj.bss.cookie_sum == 3 * (n + 1)


@pytest.mark.skipif(not UPROBE_MULTI[0], reason=UPROBE_MULTI[1])
def test_uprobe_multi_link_for_a_pattern_entry_and_return() -> None:
    n = 21
    exe = fixtures.uprobe_target()
    spec = _spec(0)
    for name in ("on_multi", "on_multi_ret"):
        spec.programs[name].expected_attach_type = sc.BPF_TRACE_UPROBE_MULTI
    with fixtures.spawn(exe, str(n)) as proc:
        spec.rodata.target_pid = proc.pid
        with spec.load() as obj:
            with obj.progs.on_multi.attach_uprobe(str(exe), "bpfkit_*", pid=proc.pid) as entry, \
                    obj.progs.on_multi_ret.attach_uretprobe(str(exe), "bpfkit_*") as ret:
                for link in (entry, ret):
                    assert sc.BPF_LINK_TYPE_NAMES[sc.link_info(link.fd).type] == "uprobe_multi"
                proc.finish()
            assert obj.bss.multi_hits == n + 1
            assert obj.bss.multi_ret_hits == n + 1


def test_library_by_short_name_with_pid_filter() -> None:
    n = 31
    exe = fixtures.syscall_target()  # calls libc's syscall() n times
    with fixtures.spawn(exe, "getpid", str(n)) as proc, fixtures.spawn(exe, "getpid", "5") as other:
        with _spec(proc.pid).load() as obj:
            # the BPF filter passes proc only, and the kernel filter must drop `other` before that
            with obj.progs.on_any.attach_uprobe("c", "syscall", pid=proc.pid) as link:
                assert "libc.so" in link.description
                proc.finish()
                other.finish()
            assert obj.bss.hits == n


def test_symbol_plus_offset_and_raw_address_hit_the_same_function() -> None:
    from bpfkit.probes.elf import find_symbol

    exe = fixtures.uprobe_target(pie=False)
    addr = find_symbol(str(exe), "bpfkit_add").address
    with fixtures.spawn(exe, "4") as proc:
        with _spec(proc.pid).load() as obj:
            with obj.progs.on_any.attach_uprobe(str(exe), addr, cookie=1), \
                    obj.progs.on_any.attach_uprobe(str(exe), "bpfkit_void+0", cookie=100):
                proc.finish()
            assert obj.bss.hits == 5 and obj.bss.cookie_sum == 4 + 100


def test_stripped_binary_and_unmatched_pattern_are_clear_errors() -> None:
    with _spec(1).load() as obj:
        with pytest.raises(bpfkit.BpfNotFoundError, match="stripped"):
            obj.progs.on_any.attach_uprobe(str(fixtures.uprobe_target(stripped=True)), "bpfkit_add")
        with pytest.raises(bpfkit.BpfNotFoundError, match="no function .* matches 'nothing_like_this_\\*'"):
            obj.progs.on_any.attach_uprobe(str(fixtures.uprobe_target()), "nothing_like_this_*")
        assert obj.links == []
