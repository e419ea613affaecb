// The scheduler tools' independent count: how often one thread was switched in and out, from the
// plain sched:sched_switch tracepoint (the tools use its BTF variant and their own logic).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

const volatile __s32 target_tid = 0;

__u64 switched_in = 0;
__u64 switched_out = 0;

SEC("tracepoint/sched/sched_switch")
int on_switch(struct trace_event_raw_sched_switch *ctx)
{
	if (ctx->next_pid == target_tid)
		__sync_fetch_and_add(&switched_in, 1);
	if (ctx->prev_pid == target_tid)
		__sync_fetch_and_add(&switched_out, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
