// cpudist: time on CPU per switch-in (or, with -O, off CPU between switches) as a log2
// histogram, from the sched_switch BTF tracepoint.
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

const volatile __u8 offcpu = 0;          /* -O */
const volatile __u8 include_idle = 0;    /* -I */
const volatile __u8 per = PER_NONE;
const volatile __u64 unit_ns = 1000;     /* usecs; 1000000 for -m */

BPFKIT_LOG2_HIST(hist);
SCHED_KEYED_HIST(hist_by, 65536);
BPFKIT_STATS(total);                     /* -e: count and sum of the recorded times */

/* the idle threads all have tid 0: one key per CPU for them */
static __always_inline bool key_of(struct task_struct *t, __u32 *key)
{
	__u32 tid = t->pid;

	if (!tid) {
		if (!include_idle)
			return false;
		*key = 0xffff0000 | bpf_get_smp_processor_id();
		return true;
	}
	if (!bpfkit_filter_pass_task_struct(t))
		return false;
	*key = tid;
	return true;
}

static __always_inline void record(struct task_struct *t, __u32 key, __u64 now)
{
	__s64 delta = since(key, now);

	if (delta < 0)
		return;
	delta /= unit_ns;
	if (per == PER_NONE)
		bpfkit_log2_record(&hist, delta);
	else if (per == PER_PROCESS)
		SCHED_KEYED_RECORD(hist_by, t->tgid, delta);
	else
		SCHED_KEYED_RECORD(hist_by, t->pid, delta);
	bpfkit_stats_record(&total, delta);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 key;

	if (key_of(prev, &key)) {
		if (offcpu)
			remember(key, now);          /* off CPU from now */
		else
			record(prev, key, now);      /* it ran since it was switched in */
	}
	if (key_of(next, &key)) {
		if (offcpu)
			record(next, key, now);      /* it was off CPU since it was switched out */
		else
			remember(key, now);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
