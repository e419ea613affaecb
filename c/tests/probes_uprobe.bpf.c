// uprobe tests beyond the basics: wildcard patterns (one link each or one uprobe_multi link),
// BPF cookies, and a probe in a shared library (libc's getpid wrapper).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 target_pid = 0;

__u64 hits = 0;
__u64 cookie_sum = 0;
__u64 multi_hits = 0;
__u64 multi_ret_hits = 0;

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("uprobe")
int on_any(struct pt_regs *ctx)
{
	if (!mine())
		return 0;
	__sync_fetch_and_add(&hits, 1);
	__sync_fetch_and_add(&cookie_sum, bpf_get_attach_cookie(ctx));
	return 0;
}

/* loaded as uprobe_multi by the test (libbpf 1.1 has no SEC name for it) */
SEC("uprobe")
int on_multi(struct pt_regs *ctx)
{
	if (mine())
		__sync_fetch_and_add(&multi_hits, 1);
	return 0;
}

SEC("uretprobe")
int on_multi_ret(struct pt_regs *ctx)
{
	if (mine())
		__sync_fetch_and_add(&multi_ret_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
