"""bpfkit.testing triggers and the bpf_load / bpf_trigger fixtures: exact counts from the kernel (issue 6)."""
from __future__ import annotations

import os

import pytest

from bpfkit.errors import BpfError
from bpfkit.testing import triggers
from bpfkit.testing.plugin import BpfLoader, Triggers

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to load BPF programs")

READ_COUNTER = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile __u32 target_pid = 0;
__u64 reads = 0;
__u64 bytes = 0;
__u64 returns = 0;
__s64 returned = 0;

SEC("tracepoint/syscalls/sys_enter_read")
int on_read(struct trace_event_raw_sys_enter *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	__sync_fetch_and_add(&reads, 1);
	__sync_fetch_and_add(&bytes, ctx->args[2]);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int on_read_exit(struct trace_event_raw_sys_exit *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	__sync_fetch_and_add(&returns, 1);
	__sync_fetch_and_add(&returned, ctx->ret);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


def test_getpid_trigger_counted_exactly(bpf_load: BpfLoader, bpf_trigger: Triggers) -> None:
    t = bpf_trigger.syscalls("getpid", 500)
    obj = bpf_load("tests/count", target_pid=t.pid, multiplier=2)
    obj.progs.on_getpid.attach_tracepoint("syscalls:sys_enter_getpid")
    res = t.run()
    assert (res.pid, res.values["done"]) == (t.pid, 500)
    assert dict(obj.maps.counts.items()) == {t.pid: 500}
    assert obj.bss.total == 1000


def test_read_trigger_with_c_text(bpf_load: BpfLoader, bpf_trigger: Triggers) -> None:
    t = bpf_trigger.syscalls("read", 7, size=4096)
    obj = bpf_load(READ_COUNTER, target_pid=t.pid)
    obj.attach()
    t.run()
    assert (obj.bss.reads, obj.bss.bytes) == (7, 7 * 4096)
    # The child waits for its release without read(2), so no read that began before the attach
    # returns after it: exits match entries exactly.
    assert (obj.bss.returns, obj.bss.returned) == (7, 7 * 4096)


@pytest.mark.parametrize("pie", [True, False])
def test_calls_trigger_hits_uprobe_and_uretprobe(bpf_load: BpfLoader, bpf_trigger: Triggers, pie: bool) -> None:
    t = bpf_trigger.calls(25, 3, 4, pie=pie)
    obj = bpf_load("tests/uprobe_add", target_pid=t.pid)
    obj.progs.on_add.attach_uprobe(str(t.binary), t.symbol, pid=t.pid)
    obj.progs.on_add_ret.attach_uretprobe(str(t.binary), t.symbol, pid=t.pid)
    res = t.run()
    assert res.values["sum"] == 25 * 7
    assert (obj.bss.calls, obj.bss.returns, obj.bss.arg_sum) == (25, 25, 25 * 7)
    assert (obj.bss.last_a, obj.bss.last_b) == t.args == (3, 4)
    assert dict(obj.maps.retvals.items()) == {7: 25}


@pytest.mark.requires("uprobes")
def test_usdt_trigger_fires_each_probe_n_times(bpf_load: BpfLoader, bpf_trigger: Triggers) -> None:
    n = 12
    t = bpf_trigger.usdt(n)
    assert t.library is not None
    obj = bpf_load("tests/probes_usdt", target_pid=t.pid)
    obj.progs.on_tick.attach_usdt(str(t.binary), "bpfkit", "tick", pid=t.pid)
    obj.progs.on_libtick.attach_usdt(str(t.library), "bpfkit_lib", "libtick", pid=t.pid)
    obj.progs.on_guarded.attach_usdt(str(t.binary), "bpfkit", "guarded", pid=t.pid)
    res = t.run()
    assert t.probes[("bpfkit", "tick")] == n
    assert (obj.bss.ticks, obj.bss.tick_i_sum, obj.bss.tick_v_sum) == (n, sum(range(n)), 10 * sum(range(n)))
    assert (obj.bss.libticks, obj.bss.libtick_sum) == (n, sum(range(n)))
    # The USDT attachment raised the semaphore, so the guarded probe fired every time.
    assert res.values["guarded"] == n == obj.bss.guarded


def test_trigger_without_probes_and_its_errors() -> None:
    with triggers.syscalls("write", 3, size=10) as t:
        assert repr(t).endswith("paused>") and t.kind == "write" and t.size == 10
        assert t.run().values["done"] == 3
        with pytest.raises(BpfError, match="already ran"):
            t.run()
    with pytest.raises(BpfError, match="choose one of getpid, read, write"):
        triggers.syscalls("open", 1)
    with pytest.raises(BpfError, match="n must be >= 0"):
        triggers.calls(-1)


def test_unfinished_trigger_is_killed_at_close() -> None:
    t = triggers.calls(1)
    pid = t.pid
    assert os.path.exists(f"/proc/{pid}")
    t.close()
    assert not os.path.exists(f"/proc/{pid}")  # killed and reaped, not a zombie


def test_bpf_load_rejects_unknown_globals(bpf_load: BpfLoader) -> None:
    with pytest.raises(AttributeError, match="no global variable 'target_tid'.*target_pid"):
        bpf_load("tests/count", target_tid=1)
