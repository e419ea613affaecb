// exitsnoop: process (or thread) exits with their age, exit code or killing signal, from the
// sched:sched_process_exit tracepoint; the details come from the exiting task itself (CO-RE).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"

const volatile __u8 per_thread = 0;   /* --per-thread: every thread, not only a process's main one */
const volatile __u8 failed_only = 0;  /* -x: not exit(0) */

struct exit_event {
	__u64 start_time;   /* task->start_time, CLOCK_MONOTONIC ns */
	__u64 exit_time;    /* bpf_ktime_get_ns() */
	__u32 pid;
	__u32 tid;
	__u32 ppid;
	__s32 exit_code;    /* exit status (task->exit_code >> 8) */
	__u32 sig_info;     /* killing signal | 0x80 if it dumped core (task->exit_code & 0xff) */
	char comm[16];
};

BPFKIT_RINGBUF(events, struct exit_event, 4 << 20);

SEC("tracepoint/sched/sched_process_exit")
int on_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	__u32 pid = id >> 32, tid = (__u32)id;
	struct exit_event *e;
	int code;

	if (!per_thread && pid != tid)
		return 0;
	if (!bpfkit_filter_pass())
		return 0;
	code = BPF_CORE_READ(task, exit_code);
	if (failed_only && code == 0)
		return 0;
	e = BPFKIT_RESERVE(events);
	if (!e)
		return 0;
	e->start_time = BPF_CORE_READ(task, start_time);
	e->exit_time = bpf_ktime_get_ns();
	e->pid = pid;
	e->tid = tid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exit_code = code >> 8;
	e->sig_info = code & 0xff;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
