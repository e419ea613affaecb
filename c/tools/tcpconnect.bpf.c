// tcpconnect (and tcpconnlat): active TCP opens, from sock:inet_sock_set_state (tp_btf) instead
// of bcc's kprobes on tcp_v4/v6_connect. connect() moves the socket to SYN_SENT in the caller's
// context: the process, its uid and the time are taken there; the record is made when the
// socket leaves SYN_SENT (ESTABLISHED, or CLOSE for a refused or failed connect), when its local
// port is known, with the connect latency (tcpconnlat's) on the way.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"
#include "tcp_common.h"

const volatile __u32 filter_uid = (__u32)-1;  /* -u UID, -1: any */
const volatile __u16 filter_dports[8] = {};  /* -P PORT[,PORT...], all 0: any */
const volatile __u64 min_lat_ns = 0;         /* tcpconnlat's minimum latency */

struct connect_event {
	struct sk_addr a;
	__u64 ts;        /* connect(), bpf_ktime_get_ns() */
	__u64 lat_ns;    /* SYN_SENT -> the next state */
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__s32 state;     /* ESTABLISHED (1), or CLOSE (7): refused, reset, timed out */
	char comm[16];
};

BPFKIT_RINGBUF(events, struct connect_event, 1 << 20);

struct pending {
	__u64 ts;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, const struct sock *);
	__type(value, struct pending);
} connecting SEC(".maps");

__u64 missed = 0;

static __always_inline bool port_wanted(__u16 dport)
{
	bool any = true;

	for (int i = 0; i < 8; i++) {
		if (!filter_dports[i])
			break;
		any = false;
		if (filter_dports[i] == dport)
			return true;
	}
	return any;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_state, const struct sock *sk, int oldstate, int newstate)
{
	struct connect_event *e;
	struct pending *p;
	struct sk_addr a = {};
	__u64 now;

	if (!sk_is_tcp(sk))
		return 0;
	if (newstate == TCP_SYN_SENT) {
		struct pending fresh = {};
		__u64 id = bpf_get_current_pid_tgid();
		__u32 uid = bpf_get_current_uid_gid();

		if (!sk_wanted(sk) || !bpfkit_filter_pass())
			return 0;
		if (filter_uid != (__u32)-1 && uid != filter_uid)
			return 0;
		if (!port_wanted(bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport))))
			return 0;
		fresh.ts = bpf_ktime_get_ns();
		fresh.pid = id >> 32;
		fresh.tid = id;
		fresh.uid = uid;
		bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
		if (bpf_map_update_elem(&connecting, &sk, &fresh, BPF_ANY))
			__sync_fetch_and_add(&missed, 1);
		return 0;
	}
	if (oldstate != TCP_SYN_SENT)
		return 0;
	p = bpf_map_lookup_elem(&connecting, &sk);
	if (!p)
		return 0;
	now = bpf_ktime_get_ns();
	if (now - p->ts < min_lat_ns)
		goto out;
	e = BPFKIT_RESERVE(events);
	if (!e)
		goto out;
	sk_read_addr(sk, &e->a);
	e->ts = p->ts;
	e->lat_ns = now - p->ts;
	e->pid = p->pid;
	e->tid = p->tid;
	e->uid = p->uid;
	e->state = newstate;
	__builtin_memcpy(e->comm, p->comm, sizeof(e->comm));
	BPFKIT_SUBMIT(events, e);
out:
	bpf_map_delete_elem(&connecting, &sk);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
