// drsnoop: direct reclaim — a task that had to free memory itself before its allocation could
// go on — with its latency and the pages reclaimed, as bcc's drsnoop, from the vmscan
// tracepoints (as bcc's). With `memcg` set, also the reclaim a task does when its memory cgroup
// is at its limit (mm_vmscan_memcg_reclaim_*), which bcc leaves out.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"

enum { KIND_DIRECT = 0, KIND_MEMCG = 1 };

struct dr_event {
	__u64 ts;        /* the end of the reclaim */
	__u64 delta_ns;
	__u64 nr_reclaimed;
	__u32 pid;
	__u32 tid;
	__u32 kind;
	__u32 pad_;
	char comm[16];
};

BPFKIT_RINGBUF(events, struct dr_event, 1 << 18);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);     /* tid */
	__type(value, __u64);   /* begin */
} start SEC(".maps");

__u64 missed = 0;

static __always_inline int begin(void)
{
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 ts = bpf_ktime_get_ns();

	if (!bpfkit_filter_pass())
		return 0;
	if (bpf_map_update_elem(&start, &tid, &ts, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
	return 0;
}

static __always_inline int end(__u64 nr_reclaimed, __u32 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	__u64 *ts = bpf_map_lookup_elem(&start, &tid);
	struct dr_event *e;

	if (!ts)
		return 0;
	e = BPFKIT_RESERVE(events);
	if (e) {
		e->ts = bpf_ktime_get_ns();
		e->delta_ns = e->ts - *ts;
		e->nr_reclaimed = nr_reclaimed;
		e->pid = id >> 32;
		e->tid = tid;
		e->kind = kind;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		BPFKIT_SUBMIT(events, e);
	}
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_begin")
int on_direct_begin(void *ctx)
{
	return begin();
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_end")
int on_direct_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	return end(ctx->nr_reclaimed, KIND_DIRECT);
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_begin")
int on_memcg_begin(void *ctx)
{
	return begin();
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_end")
int on_memcg_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	return end(ctx->nr_reclaimed, KIND_MEMCG);
}

char LICENSE[] SEC("license") = "GPL";
