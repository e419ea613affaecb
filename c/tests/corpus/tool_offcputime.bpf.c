// Loader corpus, shaped like BCC's offcputime/profile/funccount: stacks of blocked tasks from
// sched_switch (raw tracepoint and perf_event sampling), kernel-function counts from kprobes.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define PERF_MAX_STACK_DEPTH 127
const volatile pid_t targ_tgid = -1;
const volatile bool kernel_threads_only = false;
const volatile __u64 min_block_ns = 1;

struct key_t { __u32 pid, tgid; int user_stack_id, kern_stack_id; char name[16]; };
struct internal_key { __u64 start_ts; struct key_t key; };

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, u32); __type(value, struct internal_key); } start SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_STACK_TRACE); __uint(key_size, sizeof(u32)); __uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(u64)); __uint(max_entries, 1024); } stackmap SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, struct key_t); __type(value, u64); } info SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 64); __type(key, u32); __type(value, u64); } counts SEC(".maps");

static bool allow_record(struct task_struct *t)
{
	if (targ_tgid != -1 && targ_tgid != BPF_CORE_READ(t, tgid))
		return false;
	if (kernel_threads_only && !(BPF_CORE_READ(t, flags) & 0x00200000))
		return false;
	return true;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct internal_key *i_keyp, i_key = {};
	u32 pid = BPF_CORE_READ(prev, pid);
	if (allow_record(prev)) {
		i_key.key.pid = pid;
		i_key.key.tgid = BPF_CORE_READ(prev, tgid);
		i_key.start_ts = bpf_ktime_get_ns();
		if (BPF_CORE_READ(prev, flags) & 0x00200000)
			i_key.key.user_stack_id = -1;
		else
			i_key.key.user_stack_id = bpf_get_stackid(ctx, &stackmap, BPF_F_USER_STACK);
		i_key.key.kern_stack_id = bpf_get_stackid(ctx, &stackmap, 0);
		bpf_map_update_elem(&start, &pid, &i_key, 0);
		bpf_probe_read_kernel_str(&i_key.key.name, sizeof(i_key.key.name), BPF_CORE_READ(prev, comm));
	}
	pid = BPF_CORE_READ(next, pid);
	i_keyp = bpf_map_lookup_elem(&start, &pid);
	if (!i_keyp)
		return 0;
	s64 delta = (s64)(bpf_ktime_get_ns() - i_keyp->start_ts);
	if (delta >= (s64)min_block_ns) {
		u64 zero = 0, *val = bpf_map_lookup_elem(&info, &i_keyp->key);
		if (!val) {
			bpf_map_update_elem(&info, &i_keyp->key, &zero, BPF_NOEXIST);
			val = bpf_map_lookup_elem(&info, &i_keyp->key);
		}
		if (val)
			__sync_fetch_and_add(val, (u64)delta / 1000);
	}
	bpf_map_delete_elem(&start, &pid);
	return 0;
}

SEC("perf_event")
int do_perf_event(struct bpf_perf_event_data *ctx)
{
	struct key_t key = {};
	u64 one = 1, *valp;
	key.tgid = bpf_get_current_pid_tgid() >> 32;
	key.pid = (u32)bpf_get_current_pid_tgid();
	key.user_stack_id = bpf_get_stackid(&ctx->regs, &stackmap, BPF_F_USER_STACK);
	key.kern_stack_id = bpf_get_stackid(&ctx->regs, &stackmap, 0);
	bpf_get_current_comm(&key.name, sizeof(key.name));
	valp = bpf_map_lookup_elem(&info, &key);
	if (!valp)
		bpf_map_update_elem(&info, &key, &one, BPF_NOEXIST);
	else
		__sync_fetch_and_add(valp, 1);
	return 0;
}

static int count(u32 idx)
{
	u64 *c = bpf_map_lookup_elem(&counts, &idx);
	if (c)
		(*c)++;
	return 0;
}

SEC("kprobe/vfs_read") int BPF_KPROBE(count_vfs_read) { return count(0); }
SEC("kprobe/vfs_write") int BPF_KPROBE(count_vfs_write) { return count(1); }
SEC("kretprobe/vfs_read") int BPF_KRETPROBE(ret_vfs_read, long ret) { return count(ret < 0 ? 2 : 3); }

char LICENSE[] SEC("license") = "GPL";
