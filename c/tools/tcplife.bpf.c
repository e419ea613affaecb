// tcplife: one line per TCP session when it closes — who, addresses, ports, bytes each way and how
// long it lived — as bcc's tcplife, from sock:inet_sock_set_state only (tp_btf). The process is
// the one in whose context the socket connected (SYN_SENT) or closed (FIN_WAIT1, LAST_ACK); a
// socket only seen from softirq (a server that never closed it itself) keeps the task current at
// its end, as bcc does.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"
#include "tcp_common.h"

const volatile bool scoped = 0;        /* a scope is set: only sockets an in-scope task touched */
const volatile __u16 filter_lports[8] = {}; /* -L PORT[,PORT...], all 0: any */
const volatile __u16 filter_dports[8] = {}; /* -D PORT[,PORT...], all 0: any */

static __always_inline bool port_in(const volatile __u16 *list, __u16 port)
{
	bool any = true;

	for (int i = 0; i < 8; i++) {
		if (!list[i])
			break;
		any = false;
		if (list[i] == port)
			return true;
	}
	return any;
}

struct ident {
	__u32 pid;
	char comm[16];
};

struct life_event {
	struct sk_addr a;
	__u64 ts;        /* close, bpf_ktime_get_ns() */
	__u64 span_ns;   /* since the last state before FIN_WAIT1 (as bcc) */
	__u64 rx_b;      /* payload bytes received (tcp_sock.bytes_received less the peer's FIN) */
	__u64 tx_b;      /* payload bytes the peer acked (tcp_sock.bytes_acked less our SYN and FIN) */
	__u32 pid;
	char comm[16];
};

BPFKIT_RINGBUF(events, struct life_event, 1 << 20);

struct born {
	__u64 ts;
	__u32 syn_acked;   /* an active open whose SYN was acked: bytes_acked counts it */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, const struct sock *);
	__type(value, struct born);
} birth SEC(".maps");

#define SEND_SHUTDOWN_ 2

/* bytes_acked and bytes_received count sequence numbers, and the SYN and FIN take one each:
 * the payload is what is left once they are taken out. Our FIN was acked when we shut down
 * sending and everything up to write_seq (which the FIN advanced) is acked; the peer's FIN came
 * when the socket is SOCK_DONE (tcp_fin sets it; a reset does not). */
static __always_inline void payload(const struct sock *sk, const struct born *b, __u64 *rx, __u64 *tx)
{
	struct tcp_sock *tp = (struct tcp_sock *)sk;
	__u64 r = BPF_CORE_READ(tp, bytes_received), t = BPF_CORE_READ(tp, bytes_acked);
	__u8 shut = BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown);
	unsigned long flags = BPF_CORE_READ(sk, __sk_common.skc_flags);

	if (b->syn_acked && t)
		t--;
	if ((shut & SEND_SHUTDOWN_) && BPF_CORE_READ(tp, snd_una) == BPF_CORE_READ(tp, write_seq) && t)
		t--;
	if ((flags & (1UL << bpf_core_enum_value(enum sock_flags, SOCK_DONE))) && r)
		r--;
	*rx = r;
	*tx = t;
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, const struct sock *);
	__type(value, struct ident);
} whoami SEC(".maps");

__u64 missed = 0;   /* sessions not timed: a map was full */

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state, const struct sock *sk, int oldstate, int newstate)
{
	struct life_event *e;
	struct ident *me;
	struct born *start, b = {};

	if (!sk_is_tcp(sk) || !sk_wanted(sk))
		return 0;
	if (newstate < TCP_FIN_WAIT1) {
		b.ts = bpf_ktime_get_ns();
		b.syn_acked = oldstate == TCP_SYN_SENT && newstate == TCP_ESTABLISHED;
		if (bpf_map_update_elem(&birth, &sk, &b, BPF_ANY))
			__sync_fetch_and_add(&missed, 1);
	}
	if (newstate == TCP_SYN_SENT || newstate == TCP_FIN_WAIT1 || newstate == TCP_LAST_ACK) {
		/* process context: connect() or close() */
		if (bpfkit_filter_pass() && !bpf_map_lookup_elem(&whoami, &sk)) {
			struct ident id = {.pid = bpf_get_current_pid_tgid() >> 32};

			bpf_get_current_comm(id.comm, sizeof(id.comm));
			bpf_map_update_elem(&whoami, &sk, &id, BPF_ANY);
		}
	}
	if (newstate != TCP_CLOSE)
		return 0;
	start = bpf_map_lookup_elem(&birth, &sk);
	if (!start)
		goto out;   /* born before we started (or a listener) */
	me = bpf_map_lookup_elem(&whoami, &sk);
	if (!me && scoped)
		goto out;
	e = BPFKIT_RESERVE(events);
	if (!e)
		goto out;
	sk_read_addr(sk, &e->a);
	if (!port_in(filter_lports, e->a.lport) || !port_in(filter_dports, e->a.dport)) {
		bpf_ringbuf_discard(e, 0);
		goto out;
	}
	e->ts = bpf_ktime_get_ns();
	e->span_ns = e->ts - start->ts;
	payload(sk, start, &e->rx_b, &e->tx_b);
	if (me) {
		e->pid = me->pid;
		__builtin_memcpy(e->comm, me->comm, sizeof(e->comm));
	} else {
		e->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
	}
	BPFKIT_SUBMIT(events, e);
out:
	bpf_map_delete_elem(&birth, &sk);
	bpf_map_delete_elem(&whoami, &sk);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
