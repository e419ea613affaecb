// tcptop: TCP bytes sent and received per process and flow, summed in the kernel, as bcc's tcptop;
// from sock:sock_send_length / sock_recv_length (Linux 6.3+: the length sendmsg/recvmsg returned,
// in the caller's context) instead of bcc's kprobes on tcp_sendmsg / tcp_cleanup_rbuf. raw_tp,
// not tp_btf, so that the object still loads on older kernels (the tool then says what is missing).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"
#include "tcp_common.h"

#define MSG_PEEK_ 2

struct flow_key {
	struct sk_addr a;
	__u32 pid;
};

struct flow_val {
	__u64 rx;
	__u64 tx;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow_key);
	__type(value, struct flow_val);
} flows SEC(".maps");

__u64 missed = 0;

static __always_inline int account(struct sock *sk, int ret, bool rx)
{
	struct flow_key k = {};
	struct flow_val *v;

	if (ret <= 0 || !sk_is_tcp(sk) || !sk_wanted(sk) || !bpfkit_filter_pass())
		return 0;
	sk_read_addr(sk, &k.a);
	k.pid = bpf_get_current_pid_tgid() >> 32;
	v = bpf_map_lookup_elem(&flows, &k);
	if (!v) {
		struct flow_val fresh = {};

		bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
		if (bpf_map_update_elem(&flows, &k, &fresh, BPF_NOEXIST) && bpf_map_lookup_elem(&flows, &k) == NULL) {
			__sync_fetch_and_add(&missed, 1);
			return 0;
		}
		v = bpf_map_lookup_elem(&flows, &k);
		if (!v)
			return 0;
	}
	if (rx)
		__sync_fetch_and_add(&v->rx, ret);
	else
		__sync_fetch_and_add(&v->tx, ret);
	return 0;
}

SEC("raw_tp/sock_send_length")
int BPF_PROG(on_send, struct sock *sk, int ret, int flags)
{
	return account(sk, ret, false);
}

SEC("raw_tp/sock_recv_length")
int BPF_PROG(on_recv, struct sock *sk, int ret, int flags)
{
	if (flags & MSG_PEEK_)
		return 0;
	return account(sk, ret, true);
}

char LICENSE[] SEC("license") = "GPL";
