"""uprobes beyond the basics: glob patterns (one link each, or one uprobe_multi link), cookies,
libraries by short name with a pid filter, stripped binaries (issue 5)."""
from __future__ import annotations

import errno

from typing import Any

import pytest

import bpfkit
from bpfkit import features
from bpfkit import _sys as sc
from bpfkit.probes.link import MultiLink
from bpfkit.testing import fixtures

pytestmark = pytest.mark.root
UPROBE_MULTI = features.check("uprobe_multi")




@pytest.mark.parametrize("pie", [True, False])
def test_wildcard_attaches_each_function_with_its_cookie(pie: bool, bpf_load: Any) -> None:
    n = 13
    exe = fixtures.uprobe_target(pie=pie)
    with fixtures.spawn(exe, str(n)) as proc:
        with bpf_load("tests/probes_uprobe", target_pid=proc.pid) as obj:
            with obj.progs.on_any.attach_uprobe(str(exe), "bpfkit_*", cookie=3) as link:
                assert isinstance(link, MultiLink) and len(link) == 2  # bpfkit_add, bpfkit_void
                assert all(sc.BPF_LINK_TYPE_NAMES[sc.link_info(lk.fd).type] == "perf_event" for lk in link)
                proc.finish()
            assert obj.bss.hits == n + 1
            assert obj.bss.cookie_sum == 3 * (n + 1)


@pytest.mark.skipif(not UPROBE_MULTI[0], reason=UPROBE_MULTI[1])
def test_uprobe_multi_link_for_a_pattern_entry_and_return(bpf_load: Any) -> None:
    n = 21
    exe = fixtures.uprobe_target()
    spec = bpf_load.open("tests/probes_uprobe")
    for name in ("on_multi", "on_multi_ret"):
        spec.programs[name].expected_attach_type = sc.BPF_TRACE_UPROBE_MULTI
    with fixtures.spawn(exe, str(n)) as proc:
        with bpf_load(spec, target_pid=proc.pid) as obj:
            with obj.progs.on_multi.attach_uprobe(str(exe), "bpfkit_*", pid=proc.pid) as entry, \
                    obj.progs.on_multi_ret.attach_uretprobe(str(exe), "bpfkit_*") as ret:
                for link in (entry, ret):
                    assert sc.BPF_LINK_TYPE_NAMES[sc.link_info(link.fd).type] == "uprobe_multi"
                proc.finish()
            assert obj.bss.multi_hits == n + 1
            assert obj.bss.multi_ret_hits == n + 1


def test_library_by_short_name_with_pid_filter(bpf_load: Any) -> None:
    n = 31
    exe = fixtures.syscall_target()  # calls libc's syscall() n times
    with fixtures.spawn(exe, "getpid", str(n)) as proc, fixtures.spawn(exe, "getpid", "5") as other:
        with bpf_load("tests/probes_uprobe", target_pid=proc.pid) as obj:
            # the BPF filter passes proc only, and the kernel filter must drop `other` before that
            with obj.progs.on_any.attach_uprobe("c", "syscall", pid=proc.pid) as link:
                assert "libc.so" in link.description
                proc.finish()
                other.finish()
            assert obj.bss.hits == n


def test_symbol_plus_offset_and_raw_address_hit_the_same_function(bpf_load: Any) -> None:
    from bpfkit.binaries import find_symbol

    exe = fixtures.uprobe_target(pie=False)
    addr = find_symbol(str(exe), "bpfkit_add").address
    with fixtures.spawn(exe, "4") as proc:
        with bpf_load("tests/probes_uprobe", target_pid=proc.pid) as obj:
            with obj.progs.on_any.attach_uprobe(str(exe), addr, cookie=1), \
                    obj.progs.on_any.attach_uprobe(str(exe), "bpfkit_void+0", cookie=100):
                proc.finish()
            assert obj.bss.hits == 5 and obj.bss.cookie_sum == 4 + 100


def test_stripped_binary_and_unmatched_pattern_are_clear_errors(bpf_load: Any) -> None:
    with bpf_load("tests/probes_uprobe", target_pid=1) as obj:
        with pytest.raises(bpfkit.BpfNotFoundError, match="stripped"):
            obj.progs.on_any.attach_uprobe(str(fixtures.uprobe_target(stripped=True)), "bpfkit_add")
        with pytest.raises(bpfkit.BpfNotFoundError, match="no function .* matches 'nothing_like_this_\\*'"):
            obj.progs.on_any.attach_uprobe(str(fixtures.uprobe_target()), "nothing_like_this_*")
        assert obj.links == []


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()  # reaped: the pid names no process now
    return proc.pid


def test_a_pid_that_is_gone_is_the_same_not_found_error_on_every_path(bpf_load: Any) -> None:
    pid = _dead_pid()
    exe = str(fixtures.uprobe_target())
    with bpf_load("tests/probes_uprobe", target_pid=1) as obj, bpfkit.load("tests/probes_perf") as perf, bpfkit.open("tests/probes_usdt").load() as u:
        attempts = [lambda: obj.progs.on_any.attach_uprobe(exe, "bpfkit_add", pid=pid),
                    lambda: obj.progs.on_any.attach_uretprobe(exe, "bpfkit_*", pid=pid),
                    lambda: perf.progs.on_sample.attach_perf_event("page-faults", period=1, pid=pid),
                    lambda: u.progs.on_tick.attach_usdt(None, "bpfkit", "tick", pid=pid),
                    lambda: u.progs.on_tick.attach_usdt(str(fixtures.usdt_target()), "bpfkit", "tick", pid=pid)]
        for attempt in attempts:
            with pytest.raises(bpfkit.BpfNotFoundError, match=f"no process {pid} ") as exc:
                attempt()
            assert exc.value.errno == errno.ESRCH
        assert obj.links == [] and perf.links == [] and u.links == []


def test_a_directory_is_reported_as_a_directory(bpf_load: Any) -> None:
    with bpf_load("tests/probes_uprobe", target_pid=1) as obj:
        with pytest.raises(bpfkit.BpfUsageError, match="/tmp is a directory") as exc:
            obj.progs.on_any.attach_uprobe("/tmp", "main")
        assert exc.value.errno == errno.EISDIR
        assert obj.links == []


@pytest.mark.parametrize("how", ["offset=", "sym+off", "address"])
def test_uretprobe_off_the_function_entry_is_refused(how: str, bpf_load: Any) -> None:
    # The kernel would take the word at *sp as the return address, which past the prologue it is
    # not: the traced process would "return" to garbage. Nothing may get attached.
    from bpfkit.binaries import find_symbol

    exe = str(fixtures.uprobe_target(pie=False))
    addr = find_symbol(exe, "main").address
    with bpf_load("tests/probes_uprobe", target_pid=1) as obj:
        attach = {"offset=": lambda: obj.progs.on_any.attach_uretprobe(exe, "main", offset=4),
                  "sym+off": lambda: obj.progs.on_any.attach_uretprobe(exe, "main+0x4"),
                  "address": lambda: obj.progs.on_any.attach_uretprobe(exe, addr + 4)}[how]
        with pytest.raises(bpfkit.AttachError, match="return probe must be on the function's entry, not at main"
                                                      r"\+0x4") as exc:
            attach()
        assert exc.value.errno == errno.EINVAL
        assert obj.links == []
        # at the entry itself it is fine, by name, "+0" or address
        for symbol in ("main", "main+0", addr):
            with obj.progs.on_any.attach_uretprobe(exe, symbol):
                pass
