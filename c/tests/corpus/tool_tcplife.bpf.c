// Loader corpus, shaped like BCC's tcplife: sock:inet_sock_set_state with CO-RE reads of the
// tracepoint record and of struct sock, per-socket birth timestamps, events through a ring buffer.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

const volatile short target_family = 0;
const volatile __u16 target_sports[4] = {};

struct ident { __u32 pid; char comm[16]; };
struct event { __u8 saddr[16], daddr[16]; __u64 ts_us, span_us, rx_b, tx_b; __u32 pid; __u16 sport, dport, family; char comm[16]; };

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, struct sock *); __type(value, __u64); } birth SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, struct sock *); __type(value, struct ident); } idents SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 1 << 18); } events SEC(".maps");

SEC("tracepoint/sock/inet_sock_set_state")
int inet_sock_set_state(struct trace_event_raw_inet_sock_set_state *args)
{
	if (BPF_CORE_READ(args, protocol) != IPPROTO_TCP)
		return 0;
	int family = BPF_CORE_READ(args, family);
	if (target_family && family != target_family)
		return 0;
	struct sock *sk = (struct sock *)BPF_CORE_READ(args, skaddr);
	__u16 sport = BPF_CORE_READ(args, sport), dport = BPF_CORE_READ(args, dport);
	for (int i = 0; i < 4; i++)
		if (target_sports[i] && target_sports[i] != sport)
			return 0;
	int newstate = BPF_CORE_READ(args, newstate);
	if (newstate < TCP_FIN_WAIT1) {
		__u64 ts = bpf_ktime_get_ns();
		bpf_map_update_elem(&birth, &sk, &ts, BPF_ANY);
	}
	if (newstate == TCP_SYN_SENT || newstate == TCP_LAST_ACK) {
		struct ident id = { .pid = bpf_get_current_pid_tgid() >> 32 };
		bpf_get_current_comm(id.comm, sizeof(id.comm));
		bpf_map_update_elem(&idents, &sk, &id, BPF_ANY);
	}
	if (newstate != TCP_CLOSE)
		return 0;
	__u64 *start = bpf_map_lookup_elem(&birth, &sk);
	if (!start) {
		bpf_map_delete_elem(&idents, &sk);
		return 0;
	}
	__u64 ts = bpf_ktime_get_ns();
	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		goto cleanup;
	e->span_us = (ts - *start) / 1000;
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	e->rx_b = BPF_CORE_READ(tp, bytes_received);
	e->tx_b = BPF_CORE_READ(tp, bytes_acked);
	e->ts_us = ts / 1000;
	e->sport = sport;
	e->dport = dport;
	e->family = family;
	struct ident *id = bpf_map_lookup_elem(&idents, &sk);
	e->pid = id ? id->pid : bpf_get_current_pid_tgid() >> 32;
	if (id)
		__builtin_memcpy(e->comm, id->comm, sizeof(e->comm));
	if (family == AF_INET) {
		bpf_probe_read_kernel(&e->saddr, 4, &sk->__sk_common.skc_rcv_saddr);
		bpf_probe_read_kernel(&e->daddr, 4, &sk->__sk_common.skc_daddr);
	} else {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	}
	bpf_ringbuf_submit(e, 0);
cleanup:
	bpf_map_delete_elem(&birth, &sk);
	bpf_map_delete_elem(&idents, &sk);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
