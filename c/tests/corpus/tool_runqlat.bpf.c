// Loader corpus, shaped like BCC's runqlat: wakeup/switch BTF tracepoints, a log2 histogram per
// pid namespace, the previous task's state read through a flavor for kernels before 5.14.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define MAX_SLOTS 26
#define TASK_RUNNING 0

const volatile bool targ_per_process = false;
const volatile bool targ_per_thread = false;
const volatile pid_t targ_tgid = 0;

struct hist { __u32 slots[MAX_SLOTS]; char comm[16]; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, u32); __type(value, u64); } start SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, u32); __type(value, struct hist); } hists SEC(".maps");
static struct hist zero;
__u64 switches = 0;  /* a global next to the static: .bss stays mmapable for bpfkit.Object */

struct task_struct___o { volatile long state; } __attribute__((preserve_access_index));

static __always_inline __u64 get_task_state(void *task)
{
	struct task_struct___o *t = task;
	if (bpf_core_field_exists(t->state))
		return BPF_CORE_READ(t, state);
	return BPF_CORE_READ((struct task_struct *)task, __state);
}

static __always_inline u64 log2l(u64 v)
{
	u64 r = 0;
	for (int i = 0; i < 6 && v > 1; i++) { v >>= 1; r++; }
	return r;
}

static int trace_enqueue(u32 tgid, u32 pid)
{
	if (!pid || (targ_tgid && targ_tgid != tgid))
		return 0;
	u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &pid, &ts, BPF_ANY);
	return 0;
}

static int handle_switch(bool preempt, struct task_struct *prev, struct task_struct *next)
{
	switches++;
	if (get_task_state(prev) == TASK_RUNNING)
		trace_enqueue(BPF_CORE_READ(prev, tgid), BPF_CORE_READ(prev, pid));
	u32 pid = BPF_CORE_READ(next, pid);
	u64 *tsp = bpf_map_lookup_elem(&start, &pid);
	if (!tsp)
		return 0;
	s64 delta = bpf_ktime_get_ns() - *tsp;
	if (delta < 0)
		goto cleanup;
	u32 hkey = targ_per_process ? BPF_CORE_READ(next, tgid) : targ_per_thread ? pid : (u32)-1;
	struct hist *histp = bpf_map_lookup_elem(&hists, &hkey);
	if (!histp) {
		bpf_map_update_elem(&hists, &hkey, &zero, BPF_NOEXIST);
		histp = bpf_map_lookup_elem(&hists, &hkey);
		if (!histp)
			goto cleanup;
		BPF_CORE_READ_STR_INTO(&histp->comm, next, comm);
	}
	u64 slot = log2l(delta / 1000U);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;
	__sync_fetch_and_add(&histp->slots[slot], 1);
cleanup:
	bpf_map_delete_elem(&start, &pid);
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p) { return trace_enqueue(p->tgid, p->pid); }

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new, struct task_struct *p) { return trace_enqueue(p->tgid, p->pid); }

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return handle_switch(preempt, prev, next);
}

SEC("raw_tp/sched_switch")
int BPF_PROG(sched_switch_raw, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	return handle_switch(preempt, prev, next);
}

char LICENSE[] SEC("license") = "GPL";
