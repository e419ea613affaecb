/* Scoping a tool to a process, a thread, a command name or a cgroup, on the BPF side (our own code;
 * include after vmlinux.h and bpf_helpers.h).
 *
 * The Python side sets these `const volatile` globals before load (bpfkit.tools.common.Scope does
 * it from -p/-t/-c/--cgroup); the verifier then prunes the checks that are off, so an unscoped tool
 * pays nothing for them.
 *
 *     #include "bpfkit_filter.h"
 *
 *     SEC("tracepoint/syscalls/sys_enter_openat")
 *     int on_openat(void *ctx)
 *     {
 *             if (!bpfkit_filter_pass())
 *                     return 0;
 *             ...
 *     }
 */
#ifndef __BPFKIT_FILTER_H
#define __BPFKIT_FILTER_H

const volatile __u32 bpfkit_filter_tgid = 0;     /* a process (tgid), 0: any */
const volatile __u32 bpfkit_filter_tid = 0;      /* a thread, 0: any */
const volatile __u64 bpfkit_filter_cgroup = 0;   /* a cgroup v2 id (its directory's inode), 0: any */
const volatile __u8 bpfkit_filter_has_comm = 0;  /* 1: bpfkit_filter_comm must match */
const volatile char bpfkit_filter_comm[16] = {};

/* True when the current task is inside the scope the Python side set. */
static __always_inline bool bpfkit_filter_pass(void)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (bpfkit_filter_tgid && (__u32)(id >> 32) != bpfkit_filter_tgid)
		return false;
	if (bpfkit_filter_tid && (__u32)id != bpfkit_filter_tid)
		return false;
	if (bpfkit_filter_cgroup && bpf_get_current_cgroup_id() != bpfkit_filter_cgroup)
		return false;
	if (bpfkit_filter_has_comm) {
		char comm[16];

		bpf_get_current_comm(comm, sizeof(comm));
		for (int i = 0; i < 16; i++) {
			if (comm[i] != bpfkit_filter_comm[i])
				return false;
			if (!comm[i])
				break;
		}
	}
	return true;
}

/* The same scope for a task other than the current one (e.g. the task woken in sched_wakeup). */
static __always_inline bool bpfkit_filter_pass_task(__u32 tgid, __u32 tid)
{
	if (bpfkit_filter_tgid && tgid != bpfkit_filter_tgid)
		return false;
	if (bpfkit_filter_tid && tid != bpfkit_filter_tid)
		return false;
	return true;
}

/* The whole scope (process, thread, command name, cgroup) for a task other than the current one,
 * read from its task_struct with CO-RE: the task woken in sched_wakeup, `next` in sched_switch.
 * Define BPFKIT_FILTER_TASK before including this header to get it (it needs bpf_core_read.h). */
#ifdef BPFKIT_FILTER_TASK
static __always_inline bool bpfkit_filter_pass_task_struct(struct task_struct *t)
{
	if (bpfkit_filter_tgid && BPF_CORE_READ(t, tgid) != bpfkit_filter_tgid)
		return false;
	if (bpfkit_filter_tid && BPF_CORE_READ(t, pid) != bpfkit_filter_tid)
		return false;
	if (bpfkit_filter_cgroup && BPF_CORE_READ(t, cgroups, dfl_cgrp, kn, id) != bpfkit_filter_cgroup)
		return false;
	if (bpfkit_filter_has_comm) {
		char comm[16];

		BPF_CORE_READ_STR_INTO(&comm, t, comm);
		for (int i = 0; i < 16; i++) {
			if (comm[i] != bpfkit_filter_comm[i])
				return false;
			if (!comm[i])
				break;
		}
	}
	return true;
}
#endif

#endif /* __BPFKIT_FILTER_H */
