// kprobe tests: read(2) of one process through ksyscall/kretsyscall (arguments and return value),
// plain kprobes by name or pattern, and kprobe_multi. Only runs for real on kernels with kprobes.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

const volatile __u32 target_pid = 0;

__u64 read_calls = 0;    /* BPF_KSYSCALL on read */
__u64 read_bytes_asked = 0;
__s64 read_fd = -100;
__u64 read_returns = 0;  /* kretsyscall on read */
__s64 read_ret_sum = 0;
__u64 kprobe_hits = 0;   /* plain kprobe / wildcard */
__u64 multi_hits = 0;    /* kprobe.multi */
__u64 last_cookie = 0;

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("ksyscall/read")
int BPF_KSYSCALL(on_read, int fd, void *buf, unsigned long count)
{
	if (!mine())
		return 0;
	__sync_fetch_and_add(&read_calls, 1);
	__sync_fetch_and_add(&read_bytes_asked, count);
	read_fd = fd;
	return 0;
}

SEC("kretsyscall/read")
int BPF_KRETPROBE(on_read_ret, long ret)
{
	if (!mine())
		return 0;
	__sync_fetch_and_add(&read_returns, 1);
	__sync_fetch_and_add(&read_ret_sum, ret);
	return 0;
}

SEC("kprobe")
int on_kprobe(struct pt_regs *ctx)
{
	if (!mine())
		return 0;
	__sync_fetch_and_add(&kprobe_hits, 1);
	last_cookie = bpf_get_attach_cookie(ctx);
	return 0;
}

SEC("kprobe.multi")
int on_multi(struct pt_regs *ctx)
{
	if (mine())
		__sync_fetch_and_add(&multi_hits, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
