// tcpretrans: TCP retransmissions, as bcc's tcpretrans, from tcp:tcp_retransmit_skb (tp_btf)
// instead of a kprobe on tcp_retransmit_skb. -c: counted per flow in the kernel instead.
// (bcc's -l, tail loss probes, needs a kprobe on tcp_send_loss_probe: no tracepoint there.)
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "bpfkit.h"
#include "tcp_common.h"

const volatile bool count_only = 0;

struct retrans_event {
	struct sk_addr a;
	__u64 ts;
	__u32 pid;
	__s32 state;
};

BPFKIT_RINGBUF(events, struct retrans_event, 1 << 20);

/* -c's key, also the exporter's (bpfkit/exporter/tools.py): addresses as char arrays of 16 bytes,
 * IPv4 as v4-mapped IPv6 (::ffff:a.b.c.d), so that one column names any address. */
struct flow_key {
	char saddr[16];
	char daddr[16];
	__u32 netns;
	__u16 lport;
	__u16 dport;
	__u16 state;
	__u16 pad_;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct flow_key);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void v6_form(char *dst, const __u8 *src, __u16 family)
{
	if (family == AF_INET) {
		__builtin_memset(dst, 0, 10);
		dst[10] = dst[11] = (char)0xff;
		__builtin_memcpy(dst + 12, src, 4);
	} else {
		__builtin_memcpy(dst, src, 16);
	}
}

__u64 missed = 0;

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(on_retransmit, const struct sock *sk, const struct sk_buff *skb)
{
	struct retrans_event *e;
	struct sk_addr a = {};

	if (!sk_wanted(sk))
		return 0;
	sk_read_addr(sk, &a);
	if (count_only) {
		struct flow_key k = {};
		__u64 zero = 0, *n;

		v6_form(k.saddr, a.saddr, a.family);
		v6_form(k.daddr, a.daddr, a.family);
		k.netns = a.netns;
		k.lport = a.lport;
		k.dport = a.dport;
		k.state = BPF_CORE_READ(sk, __sk_common.skc_state);
		n = bpf_map_lookup_elem(&counts, &k);
		if (!n) {
			/* another CPU may insert the same flow first (EEXIST): look again rather than
			 * count its first retransmit as missed; only a full table loses it */
			bpf_map_update_elem(&counts, &k, &zero, BPF_NOEXIST);
			n = bpf_map_lookup_elem(&counts, &k);
		}
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			__sync_fetch_and_add(&missed, 1);
		return 0;
	}
	e = BPFKIT_RESERVE(events);
	if (!e)
		return 0;
	e->a = a;
	e->ts = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	BPFKIT_SUBMIT(events, e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
