// stackcount: count the distinct stacks that reach a probe. One body, one program per program
// type a probe can need (tracepoint, raw tracepoint, kprobe/uprobe/USDT, perf event); the tool
// loads only the one its probe runs.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_filter.h"
#include "bpfkit_stacks.h"

const volatile bool user_stacks = true;
const volatile bool kernel_stacks = true;
const volatile __s32 target_cpu = -1;
/* A uprobe on a function's first instruction: the frame-pointer walk starts from the caller's
 * frame (the function has not pushed its own yet), so it skips the direct caller. Its return
 * address is at the top of the user stack: record it, and the Python side puts it back. */
const volatile bool entry_return = false;

struct key_t {
	__u32 tgid;
	__s32 user_stack_id;
	__s32 kernel_stack_id;
	char comm[16];
	__u64 entry_ret; /* with entry_return: the return address at *sp, 0 otherwise */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct key_t);
	__type(value, __u64);
} counts SEC(".maps");

BPFKIT_STACK_MAP(stacks, 16384);

__u64 hits = 0;         /* probe hits in scope */
__u64 counts_full = 0;  /* hits not counted: no room for a new key in counts */

static __always_inline int count_stack(void *ctx)
{
	struct key_t key = {};
	__u64 *v;
	static const __u64 one = 1;

	if (!bpfkit_filter_pass())
		return 0;
	if (target_cpu >= 0 && bpf_get_smp_processor_id() != (__u32)target_cpu)
		return 0;
	__sync_fetch_and_add(&hits, 1);
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	key.user_stack_id = user_stacks ? BPFKIT_USER_STACKID(ctx, stacks) : -1;
	key.kernel_stack_id = kernel_stacks ? BPFKIT_KERNEL_STACKID(ctx, stacks) : -1;
	if (entry_return && user_stacks && key.user_stack_id >= 0)
		bpf_probe_read_user(&key.entry_ret, sizeof(key.entry_ret), (void *)PT_REGS_SP((struct pt_regs *)ctx));
	v = bpf_map_lookup_elem(&counts, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
		return 0;
	}
	if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST)) {
		v = bpf_map_lookup_elem(&counts, &key);
		if (v)
			__sync_fetch_and_add(v, 1);
		else
			__sync_fetch_and_add(&counts_full, 1);
	}
	return 0;
}

SEC("tracepoint")
int on_tracepoint(void *ctx)
{
	return count_stack(ctx);
}

SEC("raw_tp")
int on_raw_tracepoint(void *ctx)
{
	return count_stack(ctx);
}

SEC("kprobe")
int on_kprobe(struct pt_regs *ctx)
{
	return count_stack(ctx);
}

SEC("uprobe")
int on_uprobe(struct pt_regs *ctx)
{
	return count_stack(ctx);
}

SEC("perf_event")
int on_perf_event(struct bpf_perf_event_data *ctx)
{
	return count_stack(ctx);
}

char LICENSE[] SEC("license") = "GPL";
