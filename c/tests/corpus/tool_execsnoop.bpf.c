// Loader corpus, shaped like BCC's execsnoop: execve entry/exit tracepoints, the parent read with
// CO-RE, per-exec state in a hash, events through a perf buffer, filters in .rodata.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define ARGSIZE 128
#define MAXARGS 8

const volatile bool ignore_failed = true;
const volatile uid_t targ_uid = -1;
const volatile int max_args = MAXARGS;

struct event {
	pid_t pid, ppid;
	uid_t uid;
	int retval;
	int args_count;
	unsigned int args_size;
	char comm[16];
	char args[MAXARGS * ARGSIZE];
};

static const struct event empty_event = {};

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, pid_t); __type(value, struct event); } execs SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); __uint(key_size, sizeof(u32)); __uint(value_size, sizeof(u32)); } events SEC(".maps");

SEC("tracepoint/syscalls/sys_enter_execve")
int tracepoint__syscalls__sys_enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	pid_t pid = id >> 32;
	uid_t uid = (u32)bpf_get_current_uid_gid();
	if (targ_uid != (uid_t)-1 && targ_uid != uid)
		return 0;
	if (bpf_map_update_elem(&execs, &pid, &empty_event, BPF_NOEXIST))
		return 0;
	struct event *e = bpf_map_lookup_elem(&execs, &pid);
	if (!e)
		return 0;
	e->pid = pid;
	e->uid = uid;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->args_count = 0;
	e->args_size = 0;
	const char **args = (const char **)(ctx->args[1]);
	const char *argp;
	for (int i = 0; i < MAXARGS && i < max_args; i++) {
		bpf_probe_read_user(&argp, sizeof(argp), &args[i]);
		if (!argp)
			return 0;
		if (e->args_size > (MAXARGS - 1) * ARGSIZE)
			return 0;
		long n = bpf_probe_read_user_str(&e->args[e->args_size], ARGSIZE, argp);
		if (n > ARGSIZE || n < 0)
			return 0;
		e->args_count++;
		e->args_size += n;
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int tracepoint__syscalls__sys_exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	pid_t pid = bpf_get_current_pid_tgid() >> 32;
	struct event *e = bpf_map_lookup_elem(&execs, &pid);
	if (!e)
		return 0;
	int ret = ctx->ret;
	if (ignore_failed && ret < 0)
		goto cleanup;
	e->retval = ret;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	unsigned int len = sizeof(*e) - sizeof(e->args) + e->args_size;
	if (len <= sizeof(*e))
		bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, e, len);
cleanup:
	bpf_map_delete_elem(&execs, &pid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
