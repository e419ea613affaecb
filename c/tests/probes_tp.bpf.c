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

char LICENSE[] SEC("license") = "GPL";
