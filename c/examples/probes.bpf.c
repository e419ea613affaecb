// The README's probe example: one program per probe kind, each in a bare SEC() whose target is
// given by the attach call from Python, counting hits of one process and its children.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/usdt.bpf.h>

/* Only the fields used, matched to the kernel's task_struct by CO-RE (the ___ suffix is ignored):
 * naming vmlinux.h's task_struct would copy its whole type graph into the object's BTF (600 KB). */
struct task_struct___min {
	struct task_struct___min *real_parent;
	__s32 tgid;
} __attribute__((preserve_access_index));

const volatile __u32 target_pid = 0;
__u64 tracepoint_hits = 0;
__u64 uprobe_hits = 0;
__u64 usdt_hits = 0;
__u64 samples = 0;
__u64 kprobe_hits = 0;

static __always_inline int mine(void)
{
	struct task_struct___min *task = (struct task_struct___min *)bpf_get_current_task();
	__u32 pid = bpf_get_current_pid_tgid() >> 32;

	return pid == target_pid || BPF_CORE_READ(task, real_parent, tgid) == target_pid;
}

SEC("tracepoint")
int on_tracepoint(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&tracepoint_hits, 1);
	return 0;
}

SEC("uprobe")
int on_uprobe(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&uprobe_hits, 1);
	return 0;
}

SEC("usdt")
int on_usdt(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&usdt_hits, 1);
	return 0;
}

SEC("perf_event")
int on_sample(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&samples, 1);
	return 0;
}

SEC("kprobe")
int on_kprobe(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&kprobe_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
