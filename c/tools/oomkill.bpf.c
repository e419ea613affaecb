// oomkill: OOM kills — the task whose allocation triggered the OOM killer and the victim, with
// its memory — as bcc's oomkill, from the oom:mark_victim tracepoint (fired in the triggering
// task's context when the victim is chosen) instead of bcc's kprobe on oom_kill_process.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit.h"

struct oom_event {
	__u64 ts;
	__u32 tpid;           /* triggered by (the current task) */
	__u32 vpid;           /* the victim */
	__u64 total_vm_kb;    /* the victim's, 0 before Linux 6.8's richer mark_victim */
	__u64 anon_rss_kb;
	__u64 file_rss_kb;
	__u64 shmem_rss_kb;
	__u32 uid;
	__s32 oom_score_adj;
	char tcomm[16];
	char vcomm[16];
};

BPFKIT_RINGBUF(events, struct oom_event, 1 << 16);

SEC("tracepoint/oom/mark_victim")
int on_mark_victim(struct trace_event_raw_mark_victim *ctx)
{
	struct oom_event *e = BPFKIT_RESERVE(events);

	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	e->tpid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->tcomm, sizeof(e->tcomm));
	e->vpid = BPF_CORE_READ(ctx, pid);
	if (bpf_core_field_exists(ctx->__data_loc_comm)) {
		__u32 loc = BPF_CORE_READ(ctx, __data_loc_comm);

		bpf_probe_read_kernel_str(e->vcomm, sizeof(e->vcomm), (void *)ctx + (loc & 0xffff));
		e->total_vm_kb = BPF_CORE_READ(ctx, total_vm);
		e->anon_rss_kb = BPF_CORE_READ(ctx, anon_rss);
		e->file_rss_kb = BPF_CORE_READ(ctx, file_rss);
		e->shmem_rss_kb = BPF_CORE_READ(ctx, shmem_rss);
		e->uid = BPF_CORE_READ(ctx, uid);
		e->oom_score_adj = BPF_CORE_READ(ctx, oom_score_adj);
	}
	BPFKIT_SUBMIT(events, e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
