// syncsnoop: calls that flush data to storage (sync, syncfs, fsync, fdatasync, sync_file_range,
// msync), from the syscall entry tracepoints.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"

#define CALL_SYNC 0
#define CALL_SYNCFS 1
#define CALL_FSYNC 2
#define CALL_FDATASYNC 3
#define CALL_SYNC_FILE_RANGE 4
#define CALL_MSYNC 5

struct sync_event {
	__u64 ts;
	__u32 pid;
	__u32 tid;
	__u32 call;         /* CALL_* */
	__u32 pad;
	char comm[16];
};

BPFKIT_RINGBUF(events, struct sync_event, 1 << 20);

static __always_inline int report(__u32 call)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct sync_event *e;

	if (!bpfkit_filter_pass())
		return 0;
	e = BPFKIT_RESERVE(events);
	if (!e)
		return 0;
	e->ts = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->call = call;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_sync")
int on_sync(void *ctx) { return report(CALL_SYNC); }

SEC("tracepoint/syscalls/sys_enter_syncfs")
int on_syncfs(void *ctx) { return report(CALL_SYNCFS); }

SEC("tracepoint/syscalls/sys_enter_fsync")
int on_fsync(void *ctx) { return report(CALL_FSYNC); }

SEC("tracepoint/syscalls/sys_enter_fdatasync")
int on_fdatasync(void *ctx) { return report(CALL_FDATASYNC); }

SEC("tracepoint/syscalls/sys_enter_sync_file_range")
int on_sync_file_range(void *ctx) { return report(CALL_SYNC_FILE_RANGE); }

SEC("tracepoint/syscalls/sys_enter_msync")
int on_msync(void *ctx) { return report(CALL_MSYNC); }

char LICENSE[] SEC("license") = "GPL";
