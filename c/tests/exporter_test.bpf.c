// Exporter test program: the test's fixture processes, moved into a cgroup of their own,
// make known system calls; these maps turn into metrics whose values the test knows.
// Only tasks in cgroup target_cgroup are counted, so other processes add no noise.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfkit_hist.h"

const volatile __u64 target_cgroup = 0; /* cgroup v2 id (inode of its directory) */
const volatile __u32 hist_nr = 0;       /* the syscall whose argument hist_arg is recorded */
const volatile __u32 hist_arg = 0;

struct proc_key {
	__u32 pid;
	char comm[16];
};

struct call_key {
	__u32 pid;
	__u32 nr;
};

struct err_key {
	__u32 pid;
	__s32 err; /* negative errno, as the syscall returned it */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct proc_key);
	__type(value, __u64);
} getpid_calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 64);
	__type(key, __u64); /* cgroup id */
	__type(value, __u64);
} getpid_by_cgroup SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct call_key);
	__type(value, __u64);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct err_key);
	__type(value, __u64);
} errors SEC(".maps");

BPFKIT_KEYED_LOG2_HIST(arg_hist, __u32, 64); /* per pid */
BPFKIT_KEYED_STATS(arg_stats, __u32, 64);    /* per pid: the exact sum behind arg_hist */

__u64 seen = 0; /* every counted syscall entry: a global metric */

static __always_inline int counted(void)
{
	return bpf_get_current_cgroup_id() == target_cgroup;
}

/* ctx may only be read at constant offsets, and clang folds a switch into a variable one */
static __always_inline __s64 arg_of(struct trace_event_raw_sys_enter *ctx, __u32 i)
{
	__s64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &ctx->args[i < 6 ? i : 5]);
	return v;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	if (!counted())
		return 0;
	struct proc_key k = {};
	k.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	bpfkit_count_add(&getpid_calls, &k, 1);
	__u64 cg = target_cgroup;
	__u64 *c = bpf_map_lookup_elem(&getpid_by_cgroup, &cg);
	if (c) {
		*c += 1;
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&getpid_by_cgroup, &cg, &one, BPF_NOEXIST);
	}
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int on_sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (!counted())
		return 0;
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct call_key k = { .pid = pid, .nr = (__u32)ctx->id };
	bpfkit_count_add(&calls, &k, 1);
	__sync_fetch_and_add(&seen, 1);
	if (ctx->id == hist_nr && hist_arg < 6) {
		__s64 v = arg_of(ctx, hist_arg);
		bpfkit_keyed_log2_record_signed(arg_hist, pid, v);
		bpfkit_keyed_stats_record(&arg_stats, &pid, v);
	}
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_exit")
int on_sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	if (!counted() || ctx->ret >= 0 || ctx->ret < -4095)
		return 0;
	struct err_key k = { .pid = bpf_get_current_pid_tgid() >> 32, .err = (__s32)ctx->ret };
	bpfkit_count_add(&errors, &k, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
