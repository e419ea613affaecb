// Tracepoint record layout check: copy the raw record of sys_enter_read for one process so the
// test can decode it with bpfkit.probes.tracepoint_dtype() built from tracefs' format file.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 target_pid = 0;

__u64 records = 0;
__u8 raw[64];

SEC("tracepoint/syscalls/sys_enter_read")
int on_read(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	__sync_fetch_and_add(&records, 1);
	bpf_probe_read_kernel(raw, sizeof(raw), ctx);
	return 0;
}


// Raw tracepoint argument layout check: the first MAX_RAW sys_enter events of one process, as the
// u64 args[] a raw_tp program gets, for the test to decode with tracepoint_dtype("sys_enter")
// built from BTF.
#define MAX_RAW 64
__u64 raw_records = 0;
__u64 raw_args[MAX_RAW][2];

SEC("raw_tp/sys_enter")
int on_raw_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	__u64 i = __sync_fetch_and_add(&raw_records, 1);
	if (i < MAX_RAW) {
		raw_args[i][0] = ctx->args[0];
		raw_args[i][1] = ctx->args[1];
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
