// opensnoop: open(2), openat(2) and openat2(2) with the file name and result, from the syscall
// tracepoints (the name pointer and flags kept per thread from entry to exit).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"

#define NAME_LEN 256

const volatile __u8 filter_uid = 0;
const volatile __u32 target_uid = 0;    /* -u */
const volatile __u32 flags_mask = 0;    /* -f: report only calls with one of these flags, 0: all */
const volatile __u8 failed_only = 0;    /* -x */

struct open_args {
	const char *fname;
	__s32 flags;
	__u32 mode;
};

struct open_event {
	__u64 ts;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__s32 ret;          /* the fd, or -errno */
	__s32 flags;
	__u32 mode;
	__u32 name_cut;     /* 1: the name was longer than NAME_LEN - 1 bytes and is cut */
	char comm[16];
	char name[NAME_LEN];
};

BPFKIT_RINGBUF(events, struct open_event, 4 << 20);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct open_args);
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

static __always_inline int enter(const char *fname, __s32 flags, __u32 mode)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct open_args a = { .fname = fname, .flags = flags, .mode = mode };

	if (flags_mask && !(flags & flags_mask))
		return 0;
	if (filter_uid && (__u32)bpf_get_current_uid_gid() != target_uid)
		return 0;
	if (!bpfkit_filter_pass())
		return 0;
	if (bpf_map_update_elem(&inflight, &tid, &a, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_open")
int on_open(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[0], (__s32)ctx->args[1], (__u32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_enter_openat")
int on_openat(struct trace_event_raw_sys_enter *ctx)
{
	return enter((const char *)ctx->args[1], (__s32)ctx->args[2], (__u32)ctx->args[3]);
}

SEC("tracepoint/syscalls/sys_enter_openat2")
int on_openat2(struct trace_event_raw_sys_enter *ctx)
{
	struct open_how how = {};

	bpf_probe_read_user(&how, sizeof(how), (void *)ctx->args[2]);
	return enter((const char *)ctx->args[1], (__s32)how.flags, (__u32)how.mode);
}

static __always_inline int exit_(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct open_args *a = bpf_map_lookup_elem(&inflight, &tid);
	struct open_event *e;

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
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->ret = ctx->ret;
	e->flags = a->flags;
	e->mode = a->mode;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->name_cut = read_name(e->name, a->fname);
	bpf_ringbuf_submit(e, 0);
out:
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_open")
int on_open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit_(ctx);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int on_openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit_(ctx);
}

SEC("tracepoint/syscalls/sys_exit_openat2")
int on_openat2_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit_(ctx);
}

char LICENSE[] SEC("license") = "GPL";
