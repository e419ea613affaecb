// statsnoop: stat-family calls (stat, lstat, fstatat, statx, statfs) with the path and result,
// from the syscall tracepoints.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"

#define NAME_LEN 256

/* which call: the Python side names them */
#define CALL_STATFS 0
#define CALL_NEWSTAT 1
#define CALL_NEWLSTAT 2
#define CALL_NEWFSTATAT 3
#define CALL_STATX 4

const volatile __u8 failed_only = 0;  /* -x */

struct stat_args {
	const char *fname;
	__u32 call;
};

struct stat_event {
	__u64 ts;
	__u32 pid;
	__u32 tid;
	__s32 ret;
	__u32 call;         /* CALL_* */
	__u32 name_cut;     /* 1: the name was longer than NAME_LEN - 1 bytes and is cut */
	char comm[16];
	char name[NAME_LEN];
};

BPFKIT_RINGBUF(events, struct stat_event, 4 << 20);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct stat_args);
} inflight SEC(".maps");

__u64 missed = 0;   /* calls not traced: `inflight` full */

/* Read the user's path into name[NAME_LEN]; 1 if it did not fit (the helper stops at NAME_LEN - 1
 * bytes whether the string ends there or not: the byte at that index says which). */
static __always_inline __u32 read_name(char *name, const char *user)
{
	long n = bpf_probe_read_user_str(name, NAME_LEN, user);
	char c = 0;

	if (n < 0) {
		name[0] = 0;
		return 0;
	}
	return n == NAME_LEN && !bpf_probe_read_user(&c, 1, user + NAME_LEN - 1) && c;
}

static __always_inline int enter(const char *fname, __u32 call)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct stat_args a = { .fname = fname, .call = call };

	if (!bpfkit_filter_pass())
		return 0;
	if (bpf_map_update_elem(&inflight, &tid, &a, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_statfs")
int on_statfs(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], CALL_STATFS);
}

SEC("tracepoint/syscalls/sys_enter_newstat")
int on_newstat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], CALL_NEWSTAT);
}

SEC("tracepoint/syscalls/sys_enter_newlstat")
int on_newlstat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], CALL_NEWLSTAT);
}

SEC("tracepoint/syscalls/sys_enter_newfstatat")
int on_newfstatat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1], CALL_NEWFSTATAT);
}

SEC("tracepoint/syscalls/sys_enter_statx")
int on_statx(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1], CALL_STATX);
}

static __always_inline int exit_(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct stat_args *a = bpf_map_lookup_elem(&inflight, &tid);
	struct stat_event *e;

	if (!a)
		return 0;
	if (failed_only && ctx->ret >= 0)
		goto out;
	e = BPFKIT_RESERVE(events);
	if (!e)
		goto out;
	e->ts = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = tid;
	e->ret = ctx->ret;
	e->call = a->call;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->name_cut = read_name(e->name, a->fname);
	bpf_ringbuf_submit(e, 0);
out:
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_statfs")
int on_statfs_exit(struct trace_event_raw_sys_exit *ctx) { return exit_(ctx); }

SEC("tracepoint/syscalls/sys_exit_newstat")
int on_newstat_exit(struct trace_event_raw_sys_exit *ctx) { return exit_(ctx); }

SEC("tracepoint/syscalls/sys_exit_newlstat")
int on_newlstat_exit(struct trace_event_raw_sys_exit *ctx) { return exit_(ctx); }

SEC("tracepoint/syscalls/sys_exit_newfstatat")
int on_newfstatat_exit(struct trace_event_raw_sys_exit *ctx) { return exit_(ctx); }

SEC("tracepoint/syscalls/sys_exit_statx")
int on_statx_exit(struct trace_event_raw_sys_exit *ctx) { return exit_(ctx); }

char LICENSE[] SEC("license") = "GPL";
