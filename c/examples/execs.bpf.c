// The README's running example: every exec and exit of the children of one process.
// Filtering on the parent keeps the example exact on a busy machine, and the reading process
// itself never execs, so reading the events does not make more of them.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit.h"
#include "bpfkit_hist.h"

struct exec_event {
	__u32 pid;
	__u32 ppid;
	char comm[16];
};

struct exit_event {
	__u32 pid;
	__s32 exit_code;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, char[16]);
	__type(value, __u64);
} counts SEC(".maps");

BPFKIT_RINGBUF(events, struct exec_event, 256 * 1024);
BPFKIT_PERFBUF(exits, struct exit_event);

/* Only the fields used, matched to the kernel's task_struct by CO-RE (the ___ suffix is ignored):
 * naming vmlinux.h's task_struct would copy its whole type graph into the object's BTF (600 KB). */
struct task_struct___min {
	struct task_struct___min *real_parent;
	__s32 tgid;
	__s32 exit_code;
} __attribute__((preserve_access_index));

const volatile __u32 parent_pid = 0; /* 0: children of every process */
__u64 execs = 0;
__u64 exits_seen = 0;

static __always_inline __u32 parent_of(struct task_struct___min *task)
{
	return BPF_CORE_READ(task, real_parent, tgid);
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec(void *ctx)
{
	struct task_struct___min *task = (struct task_struct___min *)bpf_get_current_task();
	__u32 ppid = parent_of(task);

	if (parent_pid && ppid != parent_pid)
		return 0;
	__sync_fetch_and_add(&execs, 1);

	char comm[16] = {};
	bpf_get_current_comm(comm, sizeof(comm));
	bpfkit_count_add(&counts, comm, 1);

	struct exec_event *e = BPFKIT_RESERVE(events);
	if (!e)
		return 0;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = ppid;
	__builtin_memcpy(e->comm, comm, sizeof(comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int on_exit(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct task_struct___min *task = (struct task_struct___min *)bpf_get_current_task();

	if ((__u32)pid_tgid != pid_tgid >> 32)
		return 0; /* a thread, not the process */
	if (parent_pid && parent_of(task) != parent_pid)
		return 0;
	__sync_fetch_and_add(&exits_seen, 1);

	struct exit_event e = {};
	e.pid = pid_tgid >> 32;
	e.exit_code = BPF_CORE_READ(task, exit_code) >> 8;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	BPFKIT_PERF_OUTPUT(ctx, exits, &e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
