// offcputime: time threads spend blocked, per stack. At sched_switch the thread leaving the CPU
// (still `current`) has its stacks taken and its switch-out time noted; when the scheduler puts
// it back, the time in between is added to that (thread, stacks) key. Attached through tp_btf,
// or raw_tp where the kernel has no tp_btf: the same body, arguments read with CO-RE.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit_filter.h"
#include "bpfkit_stacks.h"

#define PF_KTHREAD 0x00200000

const volatile bool user_stacks = true;
const volatile bool kernel_stacks = true;
const volatile bool user_threads_only = false;
const volatile bool kernel_threads_only = false;
const volatile __u64 min_block_ns = 1000;
const volatile __u64 max_block_ns = -1ULL;
const volatile bool filter_state = false;
const volatile __u32 state = 0;

struct key_t {
	__u32 pid;  /* thread id, as bcc keys it */
	__u32 tgid;
	__s32 user_stack_id;
	__s32 kernel_stack_id;
	char comm[16];
};

struct start_t {
	__u64 ts;
	struct key_t key;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct start_t);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct key_t);
	__type(value, __u64); /* nanoseconds off CPU */
} counts SEC(".maps");

BPFKIT_STACK_MAP(stacks, 16384);

__u64 start_full = 0;   /* switch-outs not timed: no room in start */
__u64 counts_full = 0;  /* blocked times not counted: no room for a new key in counts */

/* task_struct.state was renamed __state in 5.14 */
struct task_struct___old {
	long state;
} __attribute__((preserve_access_index));

static __always_inline __u32 task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___old *)t, state);
}

static __always_inline void add(struct key_t *key, __u64 delta)
{
	__u64 *v = bpf_map_lookup_elem(&counts, key);

	if (v) {
		__sync_fetch_and_add(v, delta);
		return;
	}
	if (bpf_map_update_elem(&counts, key, &delta, BPF_NOEXIST)) {
		v = bpf_map_lookup_elem(&counts, key);
		if (v)
			__sync_fetch_and_add(v, delta);
		else
			__sync_fetch_and_add(&counts_full, 1);
	}
}

/* The task fields are read by the caller: tp_btf gets typed pointers it may dereference directly
 * (plain loads), raw_tp must go through bpf_probe_read_kernel (BPF_CORE_READ). */
static __always_inline int on_switch(void *ctx, struct task_struct *prev, __u32 tid, __u32 tgid, __u32 flags,
				     __u32 next_tid)
{
	__u64 now = bpf_ktime_get_ns();
	bool record = tid != 0 && bpfkit_filter_pass(); /* current is still prev here */

	if (record && user_threads_only && (flags & PF_KTHREAD))
		record = false;
	if (record && kernel_threads_only && !(flags & PF_KTHREAD))
		record = false;
	/* bcc's --state: 0 means exactly runnable (preempted); other values are a bitmask, since
	 * sleeps add flags (do_nanosleep: TASK_INTERRUPTIBLE | TASK_FREEZABLE) */
	if (record && filter_state && (state ? !(task_state(prev) & state) : task_state(prev) != 0))
		record = false;
	if (record) {
		struct start_t s = {};

		s.ts = now;
		s.key.pid = tid;
		s.key.tgid = tgid;
		bpf_get_current_comm(s.key.comm, sizeof(s.key.comm));
		/* a kernel thread has no user stack: do not ask (bcc stores -1 as "none" too) */
		s.key.user_stack_id = user_stacks && !(flags & PF_KTHREAD) ? BPFKIT_USER_STACKID(ctx, stacks) : -14;
		s.key.kernel_stack_id = kernel_stacks ? BPFKIT_KERNEL_STACKID(ctx, stacks) : -1;
		if (bpf_map_update_elem(&start, &tid, &s, BPF_ANY))
			__sync_fetch_and_add(&start_full, 1);
	}

	struct start_t *sp = bpf_map_lookup_elem(&start, &next_tid);

	if (!sp)
		return 0;
	__u64 delta = now - sp->ts;
	struct key_t key = sp->key;

	bpf_map_delete_elem(&start, &next_tid);
	if ((__s64)delta < 0 || delta < min_block_ns || delta > max_block_ns)
		return 0;
	add(&key, delta);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(switch_btf, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, prev, prev->pid, prev->tgid, prev->flags, next->pid);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return on_switch(ctx, prev, BPF_CORE_READ(prev, pid), BPF_CORE_READ(prev, tgid), BPF_CORE_READ(prev, flags),
			 BPF_CORE_READ(next, pid));
}

char LICENSE[] SEC("license") = "GPL";
