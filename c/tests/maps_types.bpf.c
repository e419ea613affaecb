// Map-type test program: on each getpid() of target_pid it touches a task storage, records its
// kernel stack, pushes to a queue and bumps a counter in the map stored in a hash of maps.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* an enum-typed value field: BTF gives the map value dtype an integer field for it */
enum task_phase {
	TASK_PHASE_NONE = 0,
	TASK_PHASE_FEW = 1,
	TASK_PHASE_MANY = 0xab,
};

struct task_val {
	__u64 calls;
	__u32 pid;
	enum task_phase phase;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_val);
} task_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 64);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 16);
	__type(value, __u64);
} fifo SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 8);
	__type(key, __u32);
	__array(values, struct inner);
} outer SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64);
} mm SEC(".maps");

const volatile __u32 target_pid = 0;
__s64 last_stackid = -1;
__u64 seq = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	__u64 n = __sync_fetch_and_add(&seq, 1);

	struct task_val *tv = bpf_task_storage_get(&task_calls, bpf_get_current_task_btf(), 0,
						   BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (tv) {
		tv->calls += 1;
		tv->pid = target_pid;
		tv->phase = tv->calls >= 10 ? TASK_PHASE_MANY : TASK_PHASE_FEW;
	}
	last_stackid = bpf_get_stackid(ctx, &stacks, 0);
	bpf_map_push_elem(&fifo, &n, BPF_EXIST);

	__u32 zero = 0, slot = n & 3;
	void *in = bpf_map_lookup_elem(&outer, &zero);
	if (in) {
		__u64 *c = bpf_map_lookup_elem(in, &slot);
		if (c)
			__sync_fetch_and_add(c, 1);
	}
	__u32 idx = n & 1023;
	__u64 *m = bpf_map_lookup_elem(&mm, &idx);
	if (m)
		*m += n;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
