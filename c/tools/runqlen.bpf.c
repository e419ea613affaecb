// runqlen: run-queue length sampled on every CPU by a cpu-clock perf event, read with CO-RE from
// the CPU's `struct rq` (reached from the current task: se.cfs_rq->rq; the `runqueues` per-CPU
// symbol would be simpler but kernels without CONFIG_KALLSYMS_ALL cannot resolve it). rq's
// nr_running counts every scheduling class, not only CFS as bcc's cfs_rq->nr_running does.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define MAX_QLEN 1023   /* longer queues are counted in the last slot */

__u64 unreadable = 0;   /* samples without a run queue to read (no CONFIG_FAIR_GROUP_SCHED) */

/* per CPU: samples by queue length (a CPU's samples land in its own slot row) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_QLEN + 1);
	__type(key, __u32);
	__type(value, __u64);
} qlen SEC(".maps");

SEC("perf_event")
int on_sample(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct rq *rq;
	__u32 len;
	__u64 *count;

	if (!bpf_core_field_exists(task->se.cfs_rq) || !bpf_core_field_exists(struct cfs_rq, rq)) {
		__sync_fetch_and_add(&unreadable, 1);
		return 0;
	}
	rq = BPF_CORE_READ(task, se.cfs_rq, rq);
	if (!rq) {
		__sync_fetch_and_add(&unreadable, 1);
		return 0;
	}
	len = BPF_CORE_READ(rq, nr_running);

	/* the running task is counted in nr_running unless the CPU is idle: waiting = the rest */
	if ((__u32)bpf_get_current_pid_tgid() != 0 && len > 0)
		len--;
	if (len > MAX_QLEN)
		len = MAX_QLEN;
	count = bpf_map_lookup_elem(&qlen, &len);
	if (count)
		*count += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
