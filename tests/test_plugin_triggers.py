"""bpfkit.testing triggers and the bpf_load / bpf_trigger fixtures: exact counts from the kernel (issue 6)."""
from __future__ import annotations

import errno
import os
import re
import time

import pytest

from bpfkit.errors import BpfError, BpfUsageError
from bpfkit.testing import fixtures, triggers
from bpfkit.testing.plugin import BpfLoader, Triggers

pytestmark = pytest.mark.root

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
    with pytest.raises(BpfUsageError, match="unknown system call 'getpdi'"):
        triggers.syscalls("getpdi", 1)
    with pytest.raises(BpfUsageError, match="'exit_group' does not return to the fixture"):
        triggers.syscalls("exit_group", 1)
    with pytest.raises(BpfUsageError, match="at most 6 arguments"):
        triggers.syscalls("dup", 1, args=(1, 2, 3, 4, 5, 6, 7))
    with pytest.raises(BpfUsageError, match="size is for read/write without args"):
        triggers.syscalls("dup", 1, args=(1,), size=4)
    with pytest.raises(BpfUsageError, match="n must be >= 0"):
        triggers.calls(-1)


def test_trigger_run_notices_a_wrong_value() -> None:
    # the fixture makes 3 calls but the trigger expects 4: run() must not pass that off as done
    with triggers.Trigger(fixtures.syscall_target(), ["getpid", "3", "0"], 4, expect={"done": 4}) as t:
        with pytest.raises(BpfError, match=r"reported done=3, expected 4; its output was 'done 3\\n'"):
            t.run()


def test_fixture_that_never_gets_ready_is_killed_after_the_timeout() -> None:
    t0 = time.monotonic()
    with pytest.raises(BpfError, match=r"sleep \(pid \d+\) did not print 'ready' within 0.5s") as exc:
        fixtures.spawn("sleep", "30", timeout=0.5)
    assert 0.5 <= time.monotonic() - t0 < 3
    pid = int(re.search(r"pid (\d+)", str(exc.value)).group(1))  # type: ignore[union-attr]
    assert not os.path.exists(f"/proc/{pid}")  # killed and reaped
    with pytest.raises(BpfError, match=r"did not start: it printed 'nope\\n', exit status 3, stderr: why"):
        fixtures.spawn("sh", "-c", "echo nope; echo why >&2; exit 3")


SYSCALL_COUNTER = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile __u32 target_pid = 0;
const volatile __s64 target_nr = -1;
__u64 enters = 0;
__u64 exits = 0;
__u64 arg0_sum = 0;
__s64 ret_sum = 0;
__u64 umasks = 0;
__u64 umask_arg = 0;

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int on_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (mine() && ctx->id == target_nr) {
		__sync_fetch_and_add(&enters, 1);
		__sync_fetch_and_add(&arg0_sum, ctx->args[0]);
	}
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int on_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (mine() && ctx->id == target_nr) {
		__sync_fetch_and_add(&exits, 1);
		__sync_fetch_and_add(&ret_sum, ctx->ret);
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_umask")
int on_umask(struct trace_event_raw_sys_enter *ctx)
{
	if (mine()) {
		__sync_fetch_and_add(&umasks, 1);
		umask_arg = ctx->args[0];
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
"""


@pytest.mark.parametrize("kind,n,args,ret,err", [
    ("dup", 25, (12345,), -1, errno.EBADF),
    ("umask", 10, (0o027,), 0o027, 0),  # from the 2nd call on, umask returns the mask set before
    ("writev", 7, (-1, 0, 0), -1, errno.EBADF),  # the fixture reports with write(2) then
    ("poll", 5, (0, 0, 0), 0, 0),  # and waits with ppoll(2)
])
def test_any_syscall_by_name_with_arguments_counted_exactly(
        bpf_load: BpfLoader, bpf_trigger: Triggers, kind: str, n: int, args: tuple[int, ...], ret: int,
        err: int) -> None:
    t = bpf_trigger.syscalls(kind, n, args=args)
    assert t.nr == triggers.syscall_number(kind) and t.args == args
    obj = bpf_load(SYSCALL_COUNTER, target_pid=t.pid, target_nr=t.nr)
    obj.attach()
    res = t.run()
    assert res.values == {"done": n, "ret": ret, "errno": err}
    a0 = args[0] % 2**64
    assert (obj.bss.enters, obj.bss.arg0_sum) == (n, n * a0 % 2**64)
    kernel_ret = -err if err else ret
    assert obj.bss.exits == n
    if kind == "umask":
        assert obj.bss.ret_sum == (n - 1) * ret + umask_before()  # the first call returns the old mask
        assert (obj.bss.umasks, obj.bss.umask_arg) == (n, 0o027)
    else:
        assert obj.bss.ret_sum == n * kernel_ret
        assert obj.bss.umasks == 0


def umask_before() -> int:
    old = os.umask(0)  # the child inherits ours
    os.umask(old)
    return old


def test_unfinished_trigger_is_killed_at_close() -> None:
    t = triggers.calls(1)
    pid = t.pid
    assert os.path.exists(f"/proc/{pid}")
    t.close()
    assert not os.path.exists(f"/proc/{pid}")  # killed and reaped, not a zombie


def test_bpf_load_rejects_unknown_globals(bpf_load: BpfLoader) -> None:
    with pytest.raises(BpfUsageError, match="no global variable 'target_tid'.*target_pid"):
        bpf_load("tests/count", target_tid=1)
