// Test program for uprobes: counts calls of bpfkit_add(a, b) in the uprobe_target fixture,
// records its arguments and, from the uretprobe, its return values.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 target_pid = 0;

__u64 calls = 0;
__u64 returns = 0;
__s64 arg_sum = 0;
__s32 last_a = 0;
__s32 last_b = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __s32);   /* return value */
	__type(value, __u64); /* how often it was returned */
} retvals SEC(".maps");

static __always_inline int mine(void)
{
	return !target_pid || (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("uprobe")
int BPF_KPROBE(on_add, int a, int b)
{
	if (!mine())
		return 0;
	__sync_fetch_and_add(&calls, 1);
	__sync_fetch_and_add(&arg_sum, (__s64)a + b);
	last_a = a;
	last_b = b;
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(on_add_ret, int ret)
{
	if (!mine())
		return 0;
	__sync_fetch_and_add(&returns, 1);
	__u64 one = 1, *n = bpf_map_lookup_elem(&retvals, &ret);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&retvals, &ret, &one, BPF_NOEXIST);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
