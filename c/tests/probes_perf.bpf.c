// perf_event programs: count samples of a software event (page faults, cpu-clock), in total and
// per CPU (so a test can tell that sampling ran on every CPU, not just that links exist).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 samples = 0;
__u64 period_seen = 0;
__u64 cookie_seen = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cpu_samples SEC(".maps");

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&cpu_samples, &zero);

	if (n)
		*n += 1;  /* this CPU's slot: no other CPU writes it */
	__sync_fetch_and_add(&samples, 1);
	period_seen = ctx->sample_period;
	cookie_seen = bpf_get_attach_cookie(ctx);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
