// tcpaccept: TCP connections accepted, as bcc's tcpaccept, from the accept()/accept4() syscall
// tracepoints instead of a kretprobe on inet_csk_accept: on return, the new descriptor's socket
// is looked up in the caller's file table.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"
#include "tcp_common.h"

const volatile __u16 filter_lports[8] = {};  /* -P PORT[,PORT...], all 0: any */

struct accept_event {
	struct sk_addr a;
	__u64 ts;
	__u32 pid;
	__u32 tid;
	char comm[16];
};

BPFKIT_RINGBUF(events, struct accept_event, 1 << 20);

static __always_inline bool port_wanted(__u16 lport)
{
	bool any = true;

	for (int i = 0; i < 8; i++) {
		if (!filter_lports[i])
			break;
		any = false;
		if (filter_lports[i] == lport)
			return true;
	}
	return any;
}

static __always_inline int accepted(long fd)
{
	struct accept_event *e;
	struct sock *sk;
	struct sk_addr a = {};
	__u64 id;

	if (fd < 0 || !bpfkit_filter_pass())
		return 0;
	sk = fd_sock(fd);
	if (!sk || !sk_is_tcp(sk) || !sk_wanted(sk))
		return 0;
	sk_read_addr(sk, &a);
	if (!port_wanted(a.lport))
		return 0;
	e = BPFKIT_RESERVE(events);
	if (!e)
		return 0;
	id = bpf_get_current_pid_tgid();
	e->a = a;
	e->ts = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = id;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	BPFKIT_SUBMIT(events, e);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int on_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int on_accept(struct trace_event_raw_sys_exit *ctx)
{
	return accepted(ctx->ret);
}

char LICENSE[] SEC("license") = "GPL";
