// Example probe for docs/testing.md: write(2) calls and bytes per process.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct stats {
	__u64 calls;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);            /* pid */
	__type(value, struct stats);
} stats SEC(".maps");

const volatile __u32 target_pid = 0;   /* 0: every process */

SEC("tracepoint/syscalls/sys_enter_write")
int count_write(struct trace_event_raw_sys_enter *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct stats zero = {}, *s;

	if (target_pid && pid != target_pid)
		return 0;
	s = bpf_map_lookup_elem(&stats, &pid);
	if (!s) {
		bpf_map_update_elem(&stats, &pid, &zero, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&stats, &pid);
		if (!s)
			return 0;
	}
	__sync_fetch_and_add(&s->calls, 1);
	__sync_fetch_and_add(&s->bytes, ctx->args[2]);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
