// System calls entered, by number, for the exporter's ready "syscalls" metric
// (bpfkit_syscalls_total{syscall="read"}): one per-CPU slot per syscall number, so the
// hot path is a plain add and a scrape is one batch read.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define MAX_SYSCALLS 1024

const volatile __u32 target_pid = 0; /* 0: every process */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SYSCALLS);
	__type(key, __u32);   /* syscall number */
	__type(value, __u64); /* calls */
} calls SEC(".maps");

__u64 out_of_range = 0; /* syscall numbers >= MAX_SYSCALLS (none on x86_64 today) */

SEC("tracepoint/raw_syscalls/sys_enter")
int on_sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (target_pid && (bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	long id = ctx->id;
	if (id < 0)
		return 0;
	if (id >= MAX_SYSCALLS) {
		__sync_fetch_and_add(&out_of_range, 1);
		return 0;
	}
	__u32 nr = id;
	__u64 *c = bpf_map_lookup_elem(&calls, &nr);
	if (c)
		*c += 1;
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
