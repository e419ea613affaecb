// softirqs: soft interrupt time (or counts, or time distributions) per kind, from the
// softirq_entry and softirq_exit BTF tracepoints. Soft interrupts do not nest on a CPU, so one
// per-CPU slot holds the one running.
//
// BTF (not plain) tracepoints: a plain tracepoint program is skipped whenever it interrupts
// another kprobe/tracepoint BPF program on its CPU (the kernel's global bpf_prog_active guard),
// and interrupts often do; a BTF tracepoint program is only skipped when it interrupts itself.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_hist.h"

#define NR_VECS 10        /* HI .. RCU */

const volatile __s32 target_cpu = -1;   /* -c */
const volatile __u8 dist = 0;           /* -d: a histogram per kind */
const volatile __u64 unit_ns = 1000;    /* of the histogram: usecs, or 1 for -N */

struct start_val {
	__u64 ts;
	__u32 vec;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct start_val);
} start SEC(".maps");

struct vec_stats {
	__u64 count;      /* entries */
	__u64 total_ns;   /* time from entry to exit */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_VECS);
	__type(key, __u32);
	__type(value, struct vec_stats);
} stats SEC(".maps");

BPFKIT_KEYED_LOG2_HIST(hist_by, __u32, NR_VECS);

static __always_inline bool other_cpu(void)
{
	return target_cpu >= 0 && bpf_get_smp_processor_id() != (__u32)target_cpu;
}

SEC("tp_btf/softirq_entry")
int BPF_PROG(on_entry, unsigned int vec_nr)
{
	__u32 vec = vec_nr, zero = 0;
	struct vec_stats *st;
	struct start_val *s;

	if (other_cpu() || vec >= NR_VECS)
		return 0;
	st = bpf_map_lookup_elem(&stats, &vec);
	if (st)
		st->count += 1;
	s = bpf_map_lookup_elem(&start, &zero);
	if (s) {
		s->ts = bpf_ktime_get_ns();
		s->vec = vec;
	}
	return 0;
}

SEC("tp_btf/softirq_exit")
int BPF_PROG(on_exit, unsigned int vec_nr)
{
	__u32 zero = 0, vec;
	struct start_val *s = bpf_map_lookup_elem(&start, &zero);
	struct vec_stats *st;
	__u64 delta;

	if (other_cpu() || !s || !s->ts)
		return 0;
	vec = s->vec;
	delta = bpf_ktime_get_ns() - s->ts;
	s->ts = 0;
	if (vec >= NR_VECS || vec != vec_nr)
		return 0;
	st = bpf_map_lookup_elem(&stats, &vec);
	if (st)
		st->total_ns += delta;
	if (dist)
		bpfkit_keyed_log2_record(hist_by, vec, delta / unit_ns);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
