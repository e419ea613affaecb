// profile: CPU stack sampling. A perf event (cpu-clock) fires on every CPU at -F Hz; each sample
// counts its (process, user stack, kernel stack) in the kernel, as bcc's profile does, so only
// distinct stacks cross to user space at the end.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_filter.h"
#include "bpfkit_stacks.h"

const volatile bool user_stacks = true;
const volatile bool kernel_stacks = true;
const volatile bool include_idle = false;

struct key_t {
	__u32 pid; /* tgid */
	__s32 user_stack_id;   /* -errno when not collected; -1 when not asked for */
	__s32 kernel_stack_id;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct key_t);
	__type(value, __u64);
} counts SEC(".maps");

BPFKIT_STACK_MAP(stacks, 16384);

__u64 samples = 0;      /* samples taken (in scope) */
__u64 counts_full = 0;  /* samples not counted: no room for a new key in counts */

static __always_inline void count(struct key_t *key)
{
	static const __u64 one = 1;
	__u64 *v = bpf_map_lookup_elem(&counts, key);

	if (v) {
		__sync_fetch_and_add(v, 1);
		return;
	}
	if (bpf_map_update_elem(&counts, key, &one, BPF_NOEXIST)) {
		/* another CPU may have inserted it meanwhile */
		v = bpf_map_lookup_elem(&counts, key);
		if (v)
			__sync_fetch_and_add(v, 1);
		else
			__sync_fetch_and_add(&counts_full, 1);
	}
}

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct key_t key = {};

	if (!include_idle && (__u32)id == 0) /* the idle task (swapper) is thread 0 on each CPU */
		return 0;
	if (!bpfkit_filter_pass())
		return 0;
	__sync_fetch_and_add(&samples, 1);
	key.pid = id >> 32;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.user_stack_id = user_stacks ? BPFKIT_USER_STACKID(ctx, stacks) : -1;
	key.kernel_stack_id = kernel_stacks ? BPFKIT_KERNEL_STACKID(ctx, stacks) : -1;
	count(&key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
