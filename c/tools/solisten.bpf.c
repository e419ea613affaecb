// solisten: listen() calls — process, address, port and backlog — as bcc's solisten, from
// sock:inet_sock_set_state (CLOSE -> LISTEN happens in the caller of listen()) instead of a
// kprobe on inet_listen.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"
#include "tcp_common.h"

struct listen_event {
	struct sk_addr a;
	__u64 ts;
	__u32 pid;
	__u32 tid;
	__u32 backlog;
	__u32 pad_;
	char comm[16];
};

BPFKIT_RINGBUF(events, struct listen_event, 1 << 18);

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state, const struct sock *sk, int oldstate, int newstate)
{
	struct listen_event *e;
	__u64 id;

	if (newstate != TCP_LISTEN || !sk_wanted(sk) || !bpfkit_filter_pass())
		return 0;
	e = BPFKIT_RESERVE(events);
	if (!e)
		return 0;
	sk_read_addr(sk, &e->a);
	id = bpf_get_current_pid_tgid();
	e->ts = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = id;
	e->backlog = BPF_CORE_READ(sk, sk_max_ack_backlog);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	BPFKIT_SUBMIT(events, e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
