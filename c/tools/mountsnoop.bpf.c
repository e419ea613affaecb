// mountsnoop: mount() and umount() calls, system-wide, with their arguments and result, as bcc's
// mountsnoop; from the syscall tracepoints (enter: the arguments, exit: the return value).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"

#define PATH_LEN 256
#define TYPE_LEN 64
#define DATA_LEN 256

enum { OP_MOUNT = 0, OP_UMOUNT = 1 };

struct mount_event {
	__u64 ts;
	__u64 flags;
	__s64 ret;
	__u32 pid;
	__u32 tid;
	__u32 mnt_ns;
	__u32 op;
	char comm[16];
	char source[PATH_LEN];
	char target[PATH_LEN];
	char fstype[TYPE_LEN];
	char data[DATA_LEN];
};

BPFKIT_RINGBUF(events, struct mount_event, 1 << 18);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);   /* tid */
	__type(value, struct mount_event);
} pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mount_event);
} scratch SEC(".maps");

__u64 missed = 0;

static __always_inline struct mount_event *start(__u32 op)
{
	__u32 zero = 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct mount_event *e = bpf_map_lookup_elem(&scratch, &zero);
	struct task_struct *task;

	if (!e || !bpfkit_filter_pass())
		return NULL;
	__builtin_memset(e, 0, sizeof(*e));
	e->pid = id >> 32;
	e->tid = id;
	e->op = op;
	task = (struct task_struct *)bpf_get_current_task();
	e->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	return e;
}

static __always_inline int keep(struct mount_event *e)
{
	if (bpf_map_update_elem(&pending, &e->tid, e, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_mount")
int on_mount(struct trace_event_raw_sys_enter *ctx)
{
	struct mount_event *e = start(OP_MOUNT);

	if (!e)
		return 0;
	bpf_probe_read_user_str(e->source, sizeof(e->source), (void *)ctx->args[0]);
	bpf_probe_read_user_str(e->target, sizeof(e->target), (void *)ctx->args[1]);
	bpf_probe_read_user_str(e->fstype, sizeof(e->fstype), (void *)ctx->args[2]);
	e->flags = ctx->args[3];
	/* data is filesystem-specific: most take a string of options */
	bpf_probe_read_user_str(e->data, sizeof(e->data), (void *)ctx->args[4]);
	return keep(e);
}

SEC("tracepoint/syscalls/sys_enter_umount")
int on_umount(struct trace_event_raw_sys_enter *ctx)
{
	struct mount_event *e = start(OP_UMOUNT);

	if (!e)
		return 0;
	bpf_probe_read_user_str(e->target, sizeof(e->target), (void *)ctx->args[0]);
	e->flags = ctx->args[1];
	return keep(e);
}

static __always_inline int finish(long ret)
{
	__u32 tid = bpf_get_current_pid_tgid();
	struct mount_event *p = bpf_map_lookup_elem(&pending, &tid), *e;

	if (!p)
		return 0;
	e = BPFKIT_RESERVE(events);
	if (e) {
		__builtin_memcpy(e, p, sizeof(*e));
		e->ts = bpf_ktime_get_ns();
		e->ret = ret;
		BPFKIT_SUBMIT(events, e);
	}
	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_mount")
int on_mount_exit(struct trace_event_raw_sys_exit *ctx)
{
	return finish(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_umount")
int on_umount_exit(struct trace_event_raw_sys_exit *ctx)
{
	return finish(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
