// killsnoop: signals sent with kill(2), tkill(2) and tgkill(2), with their result, from the
// syscall tracepoints (the arguments kept per thread from entry to exit).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"

#define KIND_KILL 0
#define KIND_TKILL 1
#define KIND_TGKILL 2

const volatile __s32 target_pid = 0;  /* -T: the receiver, 0: any */
const volatile __u8 filter_sig = 0;
const volatile __s32 target_sig = 0;  /* -s */
const volatile __u8 failed_only = 0;  /* -x */

struct kill_args {
	__s32 tpid;
	__s32 sig;
	__u32 kind;
};

struct kill_event {
	__u64 ts;
	__u32 pid;          /* the sender */
	__u32 tid;
	__s32 tpid;         /* kill: the pid argument (may be 0, -1, -pgid); tkill/tgkill: the thread */
	__s32 sig;
	__s32 ret;          /* 0, or -errno */
	__u32 kind;         /* KIND_* */
	char comm[16];
};

BPFKIT_RINGBUF(events, struct kill_event, 1 << 20);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct kill_args);
} inflight SEC(".maps");

__u64 missed = 0;   /* calls not traced: `inflight` full */

static __always_inline int enter(__s32 tpid, __s32 sig, __u32 kind)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct kill_args a = { .tpid = tpid, .sig = sig, .kind = kind };

	if (target_pid && tpid != target_pid)
		return 0;
	if (filter_sig && sig != target_sig)
		return 0;
	if (!bpfkit_filter_pass())
		return 0;
	if (bpf_map_update_elem(&inflight, &tid, &a, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_kill")
int on_kill(struct trace_event_raw_sys_enter *ctx)
{
	return enter((__s32)ctx->args[0], (__s32)ctx->args[1], KIND_KILL);
}

SEC("tracepoint/syscalls/sys_enter_tkill")
int on_tkill(struct trace_event_raw_sys_enter *ctx)
{
	return enter((__s32)ctx->args[0], (__s32)ctx->args[1], KIND_TKILL);
}

SEC("tracepoint/syscalls/sys_enter_tgkill")
int on_tgkill(struct trace_event_raw_sys_enter *ctx)
{
	return enter((__s32)ctx->args[1], (__s32)ctx->args[2], KIND_TGKILL);
}

static __always_inline int exit_(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct kill_args *a = bpf_map_lookup_elem(&inflight, &tid);
	struct kill_event *e;

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
	e->tpid = a->tpid;
	e->sig = a->sig;
	e->kind = a->kind;
	e->ret = ctx->ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
out:
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_kill")
int on_kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit_(ctx);
}

SEC("tracepoint/syscalls/sys_exit_tkill")
int on_tkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit_(ctx);
}

SEC("tracepoint/syscalls/sys_exit_tgkill")
int on_tgkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return exit_(ctx);
}

char LICENSE[] SEC("license") = "GPL";
