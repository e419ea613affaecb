// The README's map example: the read(2) calls of one process, kept in the map kinds people
// reach for first (hash, per-CPU array, mmapable array, a log2 histogram). One program only:
// attaching a second one reads tracefs while the first is attached, which it would count.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfkit_hist.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);   /* fd */
	__type(value, __u64); /* read() calls */
} by_fd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64); /* read() calls, per CPU */
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, __u64); /* [0] calls, [1] bytes asked for: read in place from Python */
} totals SEC(".maps");

BPFKIT_LOG2_HIST(read_bytes); /* sizes asked for */

const volatile __u32 target_pid = 0;

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("tracepoint/syscalls/sys_enter_read")
int on_read(struct trace_event_raw_sys_enter *ctx)
{
	if (!mine())
		return 0;
	__u32 fd = ctx->args[0], zero = 0, one = 1;
	__u64 size = ctx->args[2];

	bpfkit_count_add(&by_fd, &fd, 1);
	__u64 *n = bpf_map_lookup_elem(&calls, &zero);
	if (n)
		*n += 1;
	__u64 *t = bpf_map_lookup_elem(&totals, &zero);
	if (t)
		__sync_fetch_and_add(t, 1);
	t = bpf_map_lookup_elem(&totals, &one);
	if (t)
		__sync_fetch_and_add(t, size);
	bpfkit_log2_record(&read_bytes, size);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
