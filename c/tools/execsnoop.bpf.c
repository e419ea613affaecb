// execsnoop: every exec(), with its arguments and result, from tracepoints.
//
// A successful exec is reported at sched_process_exec, once the new program is in place: the
// path comes from the tracepoint (kernel memory) and the arguments from the new process's own
// argument area (mm->arg_start..arg_end), which the kernel has just written, so both are always
// readable. (Reading the caller's argv at sys_enter_execve, as bcc does, fails for strings on
// pages not yet faulted in, e.g. string literals of a freshly forked child: empty ARGS.) A failed
// exec (-x) is reported at sys_exit_*, from the pointers saved at sys_enter_* (the caller's memory
// is still there).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"

#define ARGS_BUF 8192                     /* bytes of the argument area kept */
#define PATH_LEN 256
#define ARGSIZE 256                       /* failed execs: bytes kept of each argument */
#define MAX_FAILED_ARGS 32                /* failed execs: arguments read */

#define FLAG_ARGS_CUT 1                   /* the arguments did not fit in ARGS_BUF (or MAX_FAILED_ARGS) */

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
	__u32 args_size;          /* bytes used in args */
	__u32 flags;              /* FLAG_* */
	__u32 pad;
	char comm[16];            /* the new program's name (the caller's on failure) */
	char path[PATH_LEN];      /* the path given to exec */
	char args[ARGS_BUF];      /* argv[0], argv[1], ... each NUL-terminated */
};

BPFKIT_RINGBUF(events, struct exec_event, 16 << 20);

struct exec_start {
	const char *path;
	const char *const *argv;
	__u32 ppid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);                    /* tid */
	__type(value, struct exec_start);
} execs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_event);
} scratch SEC(".maps");

__u64 missed = 0;   /* execs not traced: `execs` full */

static __always_inline __u32 parent_tgid(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, real_parent, tgid);
}

static __always_inline int enter(const char *path, const char *const *argv)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_start s = { .path = path, .argv = argv };

	if (!bpfkit_filter_pass())
		return 0;
	if (filter_uid && (__u32)bpf_get_current_uid_gid() != target_uid)
		return 0;
	s.ppid = parent_tgid();
	if (target_ppid && s.ppid != target_ppid)
		return 0;
	if (bpf_map_update_elem(&execs, &tid, &s, BPF_ANY))
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

static __always_inline struct exec_event *start_event(__u32 ppid, __s32 ret)
{
	__u32 zero = 0;
	struct exec_event *e = bpf_map_lookup_elem(&scratch, &zero);
	__u64 id = bpf_get_current_pid_tgid();

	if (!e)
		return 0;
	e->ts = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->ppid = ppid;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->retval = ret;
	e->args_size = 0;
	e->flags = 0;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec_done(struct trace_event_raw_sched_process_exec *ctx)
{
	__u32 old_tid = ctx->old_pid;
	struct exec_start *s = bpf_map_lookup_elem(&execs, &old_tid);
	struct task_struct *task;
	struct mm_struct *mm;
	struct exec_event *e;
	unsigned long start, end, size;

	if (!s)
		return 0;
	e = start_event(s->ppid, 0);
	bpf_map_delete_elem(&execs, &old_tid);
	if (!e)
		return 0;
	e->tid = old_tid;
	bpf_probe_read_kernel_str(e->path, sizeof(e->path), (void *)ctx + (ctx->__data_loc_filename & 0xFFFF));
	task = (struct task_struct *)bpf_get_current_task();
	mm = BPF_CORE_READ(task, mm);
	start = BPF_CORE_READ(mm, arg_start);
	end = BPF_CORE_READ(mm, arg_end);
	size = end - start;
	if (size > ARGS_BUF) {
		size = ARGS_BUF;
		e->flags |= FLAG_ARGS_CUT;
	}
	if (size && !bpf_probe_read_user(e->args, size, (void *)start))
		e->args_size = size;
	BPFKIT_RINGBUF_OUTPUT(events, e, sizeof(*e));
	return 0;
}

/* failed exec: the caller's argv, one string at a time */
static __always_inline void read_argv(struct exec_event *e, const char *const *argv)
{
	const char *argp;
	long n;

	for (int i = 0; i < MAX_FAILED_ARGS; i++) {
		if (bpf_probe_read_user(&argp, sizeof(argp), &argv[i]) || !argp)
			return;
		if (e->args_size > ARGS_BUF - ARGSIZE) {
			e->flags |= FLAG_ARGS_CUT;
			return;
		}
		n = bpf_probe_read_user_str(&e->args[e->args_size], ARGSIZE, argp);
		if (n <= 0)
			return;
		e->args_size += n;
	}
	if (!bpf_probe_read_user(&argp, sizeof(argp), &argv[MAX_FAILED_ARGS]) && argp)
		e->flags |= FLAG_ARGS_CUT;
}

static __always_inline int exit_(struct trace_event_raw_sys_exit *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct exec_start *s = bpf_map_lookup_elem(&execs, &tid);
	struct exec_event *e;

	if (!s)
		return 0;  /* succeeded: reported at sched_process_exec */
	if (report_failed && ctx->ret < 0) {
		e = start_event(s->ppid, ctx->ret);
		if (e) {
			if (bpf_probe_read_user_str(e->path, sizeof(e->path), s->path) < 0)
				e->path[0] = 0;
			read_argv(e, s->argv);
			BPFKIT_RINGBUF_OUTPUT(events, e, sizeof(*e));
		}
	}
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
