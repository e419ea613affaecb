// runqlat: run-queue latency (from being woken or preempted to running) as a log2 histogram,
// from the sched_wakeup, sched_wakeup_new and sched_switch BTF tracepoints.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_hist.h"
#define BPFKIT_FILTER_TASK
#include "bpfkit_filter.h"
#include "sched_common.h"

#define PER_NONE 0
#define PER_PROCESS 1    /* -P */
#define PER_THREAD 2     /* -L */
#define PER_PIDNS 3      /* --pidnss */

const volatile __u8 per = PER_NONE;
const volatile __u64 unit_ns = 1000;     /* usecs; 1000000 for -m */
const volatile __u8 with_sum = 0;        /* 1: also count and sum the values in hist_sum (the exporter's _sum) */

BPFKIT_LOG2_HIST(hist);
BPFKIT_STATS(hist_sum);
SCHED_KEYED_HIST(hist_by, 65536);

static __always_inline int enqueue(struct task_struct *p)
{
	__u32 tid = p->pid;  /* BTF pointer: a direct load, no helper call */

	if (!tid || !bpfkit_filter_pass_task_struct(p))
		return 0;
	remember(tid, bpf_ktime_get_ns());
	return 0;
}

static __always_inline __u32 pidns_of(struct task_struct *t)
{
	struct pid *pid = BPF_CORE_READ(t, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid upid = {};

	bpf_core_read(&upid, sizeof(upid), &pid->numbers[level & 31]);
	return BPF_CORE_READ(upid.ns, ns.inum);
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
	__u32 tid;
	__s64 delta;

	/* still runnable: it waits on the run queue from now */
	if (preempt || task_state(prev) == TASK_RUNNING)
		enqueue(prev);
	tid = next->pid;
	if (!tid)
		return 0;
	delta = since(tid, bpf_ktime_get_ns());
	if (delta < 0)
		return 0;
	delta /= unit_ns;
	if (per == PER_NONE) {
		bpfkit_log2_record(&hist, delta);
		if (with_sum)
			bpfkit_stats_record(&hist_sum, delta);
	}
	else if (per == PER_PROCESS)
		SCHED_KEYED_RECORD(hist_by, next->tgid, delta);
	else if (per == PER_THREAD)
		SCHED_KEYED_RECORD(hist_by, tid, delta);
	else
		SCHED_KEYED_RECORD(hist_by, pidns_of(next), delta);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
