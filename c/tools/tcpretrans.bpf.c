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

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sk_addr);
	__type(value, __u64);
} counts SEC(".maps");

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
		__u64 one = 1, *n = bpf_map_lookup_elem(&counts, &a);

		if (n)
			__sync_fetch_and_add(n, 1);
		else if (bpf_map_update_elem(&counts, &a, &one, BPF_NOEXIST))
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
