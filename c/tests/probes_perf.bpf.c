// perf_event programs: count samples of a software event (page faults, cpu-clock).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 samples = 0;
__u64 period_seen = 0;
__u64 cookie_seen = 0;

SEC("perf_event")
int on_sample(struct bpf_perf_event_data *ctx)
{
	__sync_fetch_and_add(&samples, 1);
	period_seen = ctx->sample_period;
	cookie_seen = bpf_get_attach_cookie(ctx);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
