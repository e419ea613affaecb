// runqslower: threads that waited on a run queue longer than a threshold, one event each, from
// the sched_wakeup, sched_wakeup_new and sched_switch BTF tracepoints.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit.h"
#define BPFKIT_FILTER_TASK
#include "bpfkit_filter.h"
#include "sched_common.h"

const volatile __u64 min_us = 10000;

struct runq_event {
	__u64 ts;
	__u64 delta_us;
	__u32 pid;          /* the thread that waited */
	__u32 tgid;
	__u32 prev_pid;     /* the thread it waited for */
	__u32 cpu;
	char task[16];
	char prev_task[16];
};

BPFKIT_RINGBUF(events, struct runq_event, 1 << 20);

static __always_inline int enqueue(struct task_struct *p)
{
	__u32 tid = p->pid;  /* BTF pointer: a direct load, no helper call */

	if (!tid || !bpfkit_filter_pass_task_struct(p))
		return 0;
	remember(tid, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(on_wakeup, struct task_struct *p)
{
	return enqueue(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(on_wakeup_new, struct task_struct *p)
{
	return enqueue(p);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct runq_event *e;
	__u64 now = bpf_ktime_get_ns();
	__s64 delta;
	__u32 tid;

	if (preempt || task_state(prev) == TASK_RUNNING)
		enqueue(prev);
	tid = next->pid;
	if (!tid)
		return 0;
	delta = since(tid, now);
	if (delta < 0)
		return 0;
	delta /= 1000;
	if (min_us && (__u64)delta <= min_us)
		return 0;
	e = BPFKIT_RESERVE(events);
	if (!e)
		return 0;
	e->ts = now;
	e->delta_us = delta;
	e->pid = tid;
	e->tgid = next->tgid;
	e->prev_pid = prev->pid;
	e->cpu = bpf_get_smp_processor_id();
	BPF_CORE_READ_STR_INTO(&e->task, next, comm);
	BPF_CORE_READ_STR_INTO(&e->prev_task, prev, comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
