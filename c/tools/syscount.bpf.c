// syscount: system calls counted by syscall (or by process with by_process), optionally only the
// failed ones or one errno, optionally with the time spent in them, as bcc's syscount(8).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfkit_filter.h"

const volatile bool by_process = false;       /* -P: key by process (tgid) instead of syscall */
const volatile bool measure_latency = false;  /* -L: time from sys_enter to sys_exit */
const volatile bool only_failures = false;    /* -x: only syscalls returning < 0 */
const volatile __s32 only_errno = 0;          /* -e: only syscalls returning -only_errno */

struct value {
	__u64 count;
	__u64 total_ns;
	char comm[16]; /* by_process: the process's name, kept up to date across exec */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32); /* syscall number, or tgid with by_process */
	__type(value, struct value);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);   /* tid */
	__type(value, __u64); /* sys_enter time */
} start SEC(".maps");

__u64 dropped = 0; /* syscalls not counted: the counts table was full */

SEC("tracepoint/raw_syscalls/sys_enter")
int on_sys_enter(void *ctx)
{
	if (!measure_latency || !bpfkit_filter_pass())
		return 0;
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 ts = bpf_ktime_get_ns();

	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int on_sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (!bpfkit_filter_pass())
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	long ret = ctx->ret;
	__u64 delta = 0;

	if (ctx->id < 0)
		return 0; /* not a system call (e.g. a return from a signal handler's restart) */
	if (measure_latency) {
		__u64 *ts = bpf_map_lookup_elem(&start, &tid);
		if (!ts)
			return 0; /* entered before we attached */
		delta = bpf_ktime_get_ns() - *ts;
		bpf_map_delete_elem(&start, &tid);
	}
	if (only_failures && ret >= 0)
		return 0;
	if (only_errno && ret != -only_errno)
		return 0;

	__u32 key = by_process ? (__u32)(id >> 32) : (__u32)ctx->id;
	struct value *v = bpf_map_lookup_elem(&counts, &key);
	if (!v) {
		struct value zero = {};
		if (by_process)
			bpf_get_current_comm(zero.comm, sizeof(zero.comm));
		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counts, &key);
		if (!v) {
			__sync_fetch_and_add(&dropped, 1);
			return 0;
		}
	}
	__sync_fetch_and_add(&v->count, 1);
	if (measure_latency)
		__sync_fetch_and_add(&v->total_ns, delta);
	return 0;
}

/* A process is named by what it runs: after exec its comm changes (python3 -> dd), and a row made
 * by its first syscalls, before the exec, takes the new name. */
SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
	if (!by_process)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct value *v = bpf_map_lookup_elem(&counts, &tgid);
	if (v)
		bpf_get_current_comm(v->comm, sizeof(v->comm));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
