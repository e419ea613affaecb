// syscount: system calls per process, and a log2 histogram of read() sizes.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

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

__u64 read_size_log2[65]; /* bpftrace's log2 slots: [0], [1], then [2^(k-1), 2^k) in slot k */
__u64 dropped = 0;        /* processes not counted because procs was full */

static __always_inline __u32 log2_slot(__u64 v)
{
	__u32 slot = 0;
	/* unrolled binary search: the verifier sees a bounded result */
	if (v >= (1ULL << 32)) { v >>= 32; slot += 32; }
	if (v >= (1ULL << 16)) { v >>= 16; slot += 16; }
	if (v >= (1ULL << 8))  { v >>= 8;  slot += 8; }
	if (v >= (1ULL << 4))  { v >>= 4;  slot += 4; }
	if (v >= (1ULL << 2))  { v >>= 2;  slot += 2; }
	if (v >= (1ULL << 1))  { slot += 1; }
	return slot;
}

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
	__u32 slot = ret ? log2_slot(ret) + 1 : 0;
	if (slot > 64)
		slot = 64;
	__sync_fetch_and_add(&read_size_log2[slot], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
