// tcpstates: every TCP state change of every socket, with the time spent in the old state, as
// bcc's tcpstates; from sock:inet_sock_set_state (tp_btf). The process is whichever was current
// (as bcc's C-PID: often none, for changes made in softirq).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "bpfkit.h"
#include "tcp_common.h"

const volatile __u16 filter_lport = 0; /* -L PORT, 0: any */
const volatile __u16 filter_dport = 0; /* -D PORT, 0: any */

struct state_event {
	struct sk_addr a;
	__u64 skaddr;
	__u64 ts;        /* bpf_ktime_get_ns() */
	__u64 delta_ns;  /* in the old state (0: not seen entering it) */
	__u32 pid;
	__s32 oldstate;
	__s32 newstate;
	char comm[16];
};

BPFKIT_RINGBUF(events, struct state_event, 1 << 20);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, const struct sock *);
	__type(value, __u64);
} last SEC(".maps");

__u64 missed = 0;

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state, const struct sock *sk, int oldstate, int newstate)
{
	struct state_event *e;
	struct sk_addr a = {};
	__u64 now, *prev;

	if (!sk_is_tcp(sk) || !sk_wanted(sk))
		return 0;
	sk_read_addr(sk, &a);
	if ((filter_lport && a.lport != filter_lport) || (filter_dport && a.dport != filter_dport))
		return 0;
	now = bpf_ktime_get_ns();
	prev = bpf_map_lookup_elem(&last, &sk);
	e = BPFKIT_RESERVE(events);
	if (e) {
		e->a = a;
		e->skaddr = (__u64)sk;
		e->ts = now;
		e->delta_ns = prev ? now - *prev : 0;
		e->pid = bpf_get_current_pid_tgid() >> 32;
		e->oldstate = oldstate;
		e->newstate = newstate;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		BPFKIT_SUBMIT(events, e);
	}
	if (newstate == TCP_CLOSE)
		bpf_map_delete_elem(&last, &sk);
	else if (bpf_map_update_elem(&last, &sk, &now, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
