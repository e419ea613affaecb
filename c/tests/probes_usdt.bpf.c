// USDT tests, written exactly as for libbpf: <bpf/usdt.bpf.h> unchanged, BPF_USDT() arguments.
// The usdt_target fixture fires bpfkit:tick(i, i*10), bpfkit_lib:libtick(i) (in a shared
// library), bpfkit:guarded(i) (semaphore) and bpfkit:consts(7, -9, 200).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

const volatile __u32 target_pid = 0;

__u64 ticks = 0;
__s64 tick_i_sum = 0;
__s64 tick_v_sum = 0;
__u64 tick_cookie = 0;
__u64 libticks = 0;
__s64 libtick_sum = 0;
__u64 guarded = 0;
__s64 guarded_sum = 0;
__u64 consts_calls = 0;
__s64 const_a = 0;
__s64 const_b = 0;
__s64 const_c = 0;
__s64 arg_count = -1;

static __always_inline int mine(void)
{
	return !target_pid || (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("usdt")
int BPF_USDT(on_tick, int i, long v)
{
	if (!mine())
		return 0;
	__sync_fetch_and_add(&ticks, 1);
	__sync_fetch_and_add(&tick_i_sum, i);
	__sync_fetch_and_add(&tick_v_sum, v);
	tick_cookie = bpf_usdt_cookie(ctx);
	arg_count = bpf_usdt_arg_cnt(ctx);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_libtick, int i)
{
	if (!mine())
		return 0;
	__sync_fetch_and_add(&libticks, 1);
	__sync_fetch_and_add(&libtick_sum, i);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_guarded, int i)
{
	if (!mine())
		return 0;
	__sync_fetch_and_add(&guarded, 1);
	__sync_fetch_and_add(&guarded_sum, i);
	return 0;
}

SEC("usdt")
int BPF_USDT(on_consts, int a, long b, unsigned char c)
{
	if (!mine())
		return 0;
	__sync_fetch_and_add(&consts_calls, 1);
	const_a = a;
	const_b = b;
	const_c = c;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
