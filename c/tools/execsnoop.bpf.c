// execsnoop: every exec(), with its arguments and result, from the syscall tracepoints.
//
// sys_enter_execve/execveat copy the path and argv while they are still in the caller's memory
// (one record per thread in `execs`); a successful exec is reported at sched_process_exec (the
// new program is in place, comm is its name; it also tells the thread's old id when a
// non-leader thread exec'd and took over the process id), a failed one at sys_exit_*.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"

#define ARGSIZE 128                       /* bytes kept of each argument, NUL included */
#define TOTAL_MAX_ARGS 60                 /* --max-args can be at most this */
#define ARGS_BUF (TOTAL_MAX_ARGS * ARGSIZE)
#define LAST_ARG (ARGS_BUF - ARGSIZE)

#define FLAG_MORE_ARGS 1                  /* argv had more than max_args entries */
#define FLAG_LONG_ARG 2                   /* an argument was longer than ARGSIZE - 1 bytes */

const volatile __u32 max_args = 20;       /* fields kept: the path, then argv[1 .. max_args-1] */
const volatile __u8 report_failed = 0;    /* -x */
const volatile __u8 filter_uid = 0;
const volatile __u32 target_uid = 0;      /* -u */
const volatile __u32 target_ppid = 0;     /* -P, 0: any */

struct exec_event {
	__u64 ts;                 /* bpf_ktime_get_ns() when the exec finished */
	__u32 pid;                /* process id (after a successful exec: the same) */
	__u32 tid;                /* the thread that called exec */
	__u32 ppid;
	__u32 uid;
	__s32 retval;             /* 0, or -errno */
	__u32 args_count;         /* fields in args: the path and argv[1..] */
	__u32 args_size;          /* bytes used in args, NULs included */
	__u32 flags;              /* FLAG_* */
	char comm[16];            /* the new program's name (the caller's on failure) */
	char args[ARGS_BUF];      /* NUL-separated: the path, then argv[1..] */
};

BPFKIT_RINGBUF(events, struct exec_event, 16 << 20);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__uint(map_flags, BPF_F_NO_PREALLOC);  /* 7.7 KiB values: allocate only what is in flight */
	__type(key, __u32);                    /* tid */
	__type(value, struct exec_event);
} execs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} scratch SEC(".maps");

__u64 missed = 0;   /* execs not traced: `execs` full or the arguments unreadable */

static __always_inline __u32 parent_tgid(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, real_parent, tgid);
}

static __always_inline int enter(const char *filename, const char *const *argv)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id, uid = (__u32)bpf_get_current_uid_gid(), zero = 0;
	struct exec_event *e;
	const char *argp;
	long n;

	if (!bpfkit_filter_pass())
		return 0;
	if (filter_uid && uid != target_uid)
		return 0;
	__u32 ppid = parent_tgid();
	if (target_ppid && ppid != target_ppid)
		return 0;
	e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->pid = id >> 32;
	e->tid = tid;
	e->ppid = ppid;
	e->uid = uid;
	e->flags = 0;
	e->retval = 0;
	n = bpf_probe_read_user_str(e->args, ARGSIZE, filename);
	if (n <= 0) {
		e->args[0] = 0;
		n = 1;
	}
	e->args_count = 1;
	e->args_size = n;
	for (int i = 1; i < TOTAL_MAX_ARGS; i++) {
		if (bpf_probe_read_user(&argp, sizeof(argp), &argv[i]) || !argp)
			goto done;
		if (i >= max_args) {
			e->flags |= FLAG_MORE_ARGS;
			goto done;
		}
		if (e->args_size > LAST_ARG)
			goto done;
		n = bpf_probe_read_user_str(&e->args[e->args_size], ARGSIZE, argp);
		if (n <= 0)
			goto done;
		if (n == ARGSIZE) {
			char next = 0;

			bpf_probe_read_user(&next, 1, argp + ARGSIZE - 1);
			if (next)
				e->flags |= FLAG_LONG_ARG;
		}
		e->args_count++;
		e->args_size += n;
	}
	/* all TOTAL_MAX_ARGS fields read: more only if argv goes on */
	if (!bpf_probe_read_user(&argp, sizeof(argp), &argv[TOTAL_MAX_ARGS]) && argp)
		e->flags |= FLAG_MORE_ARGS;
done:
	if (bpf_map_update_elem(&execs, &tid, e, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int on_execve(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], (const char *const *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int on_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1], (const char *const *)ctx->args[2]);
}

static __always_inline void report(struct exec_event *e, __s32 ret)
{
	e->ts = bpf_ktime_get_ns();
	e->retval = ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	BPFKIT_RINGBUF_OUTPUT(events, e, sizeof(*e));
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec_done(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 old_tid = ctx->old_pid;
	struct exec_event *e = bpf_map_lookup_elem(&execs, &old_tid);

	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	report(e, 0);
	bpf_map_delete_elem(&execs, &old_tid);
	return 0;
}

static __always_inline int exit_(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_event *e = bpf_map_lookup_elem(&execs, &tid);

	if (!e)
		return 0;  /* succeeded: reported at sched_process_exec */
	if (report_failed && ctx->ret < 0)
		report(e, ctx->ret);
	bpf_map_delete_elem(&execs, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_execve")
int on_execve_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit_(ctx);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int on_execveat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit_(ctx);
}

char LICENSE[] SEC("license") = "GPL";
