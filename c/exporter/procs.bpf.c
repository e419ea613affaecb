// The exporter's "syscount" metric set: system calls and reads per process (named at its first call),
// and a log2 histogram of the sizes read() returned. (The syscount tool itself is c/tools/syscount.bpf.c.)
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_hist.h"

const volatile __u32 target_pid = 0; /* 0: every process */

struct proc_stats {
	__u64 calls;
	__u64 reads;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32); /* tgid */
	__type(value, struct proc_stats);
} procs SEC(".maps");

BPFKIT_LOG2_HIST(read_bytes); /* sizes returned by read(), bpftrace's hist() slots */
__u64 dropped = 0;             /* processes not counted because procs was full */

static __always_inline struct proc_stats *stats_of(__u32 tgid)
{
	struct proc_stats *s = bpf_map_lookup_elem(&procs, &tgid);
	if (s)
		return s;
	struct proc_stats zero = {};
	bpf_get_current_comm(zero.comm, sizeof(zero.comm));
	if (bpf_map_update_elem(&procs, &tgid, &zero, BPF_NOEXIST) && bpf_map_lookup_elem(&procs, &tgid) == 0) {
		__sync_fetch_and_add(&dropped, 1);
		return 0;
	}
	return bpf_map_lookup_elem(&procs, &tgid);
}

SEC("tracepoint/raw_syscalls/sys_enter")
int on_sys_enter(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (target_pid && tgid != target_pid)
		return 0;
	struct proc_stats *s = stats_of(tgid);
	if (s)
		__sync_fetch_and_add(&s->calls, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_read")
int on_read_exit(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (target_pid && tgid != target_pid)
		return 0;
	long ret = ctx->ret;
	if (ret < 0)
		return 0;
	struct proc_stats *s = stats_of(tgid);
	if (s)
		__sync_fetch_and_add(&s->reads, 1);
	bpfkit_log2_record(&read_bytes, ret);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
