// Loader corpus: .text functions appended per program in libbpf's order (depth first, first call
// first), static, global and hidden-global subprograms, callbacks passed to bpf_loop and
// bpf_for_each_map_elem (function addresses), CO-RE and global data inside subprograms, and
// several programs in one section.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define __hidden __attribute__((visibility("hidden")))

struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4); __type(key, __u32); __type(value, __u64); } vals SEC(".maps");

__u64 sum = 0;
const volatile __u64 bias = 1;

static __noinline __u64 sub_b(__u64 x)
{
	return x * 3 + bias;
}

static __noinline __u64 sub_a(__u64 x)
{
	sum += x;
	return sub_b(x + 1);
}

static __noinline __u64 sub_c(__u64 x)
{
	return sub_b(x) ^ 0x55;
}

__noinline int global_sub(int x)
{
	/* a global function is verified on its own: only scalars in and out */
	return x * 2 + 1;
}

__hidden __noinline int hidden_sub(int x)
{
	return x - 1;
}

static __noinline int task_pid(void)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	return BPF_CORE_READ(t, tgid);  /* a CO-RE relocation in .text */
}

static int loop_cb(__u32 i, void *ctx)
{
	__u64 *acc = ctx;
	*acc += i;
	return 0;
}

static __u64 each_cb(struct bpf_map *map, __u32 *key, __u64 *val, void *ctx)
{
	*(__u64 *)ctx += *val;
	return 0;
}

SEC("raw_tp/sys_enter")
int main_a(void *ctx)
{
	return sub_a(bpf_get_prandom_u32()) + global_sub(task_pid()) > 0;
}

SEC("raw_tp/sys_enter")
int main_b(void *ctx)
{
	__u64 acc = 0;
	bpf_loop(8, loop_cb, &acc, 0);
	return sub_c(acc) + hidden_sub(1) > 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int main_c(void *ctx)
{
	__u64 acc = 0;
	bpf_for_each_map_elem(&vals, each_cb, &acc, 0);
	return global_sub(acc) + task_pid() > 0;
}

SEC("?tracepoint/syscalls/sys_enter_getppid")
int not_autoloaded(void *ctx)
{
	return sub_a(2) > 0;
}

char LICENSE[] SEC("license") = "GPL";
