/* What the TCP tools (tcplife, tcpstates, tcpconnect, tcpconnlat, tcpaccept, solisten, tcpretrans,
 * tcptop) share: a socket's addresses, ports and network namespace read from its struct sock (CO-RE
 * reads, so a tp_btf program and a plain tracepoint program can both use them), and the filters
 * every one of them takes (-4/-6, a network namespace).
 *
 * Addresses are kept as 16 bytes (IPv4 in the first four) in network order; ports in host order.
 * The network namespace is its inode number, as `ls -l /proc/PID/ns/net` shows it: tools (and the
 * tests, which run their fixtures in a namespace of their own) can keep to one. */
#ifndef __BPFKIT_TCP_COMMON_H
#define __BPFKIT_TCP_COMMON_H

#include <bpf/bpf_core_read.h>

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6

const volatile __u32 filter_netns = 0;   /* a network namespace (its inode), 0: any */
const volatile __u16 filter_family = 0;  /* AF_INET or AF_INET6 (-4/-6), 0: both */

struct sk_addr {
	__u8 saddr[16];
	__u8 daddr[16];
	__u32 netns;
	__u16 family;
	__u16 lport;
	__u16 dport;
	__u16 pad_;
};

static __always_inline bool sk_is_tcp(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

static __always_inline __u32 sk_netns(const struct sock *sk)
{
	return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
}

/* Whether the socket passes -4/-6 and the network namespace filter. */
static __always_inline bool sk_wanted(const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	if (family != AF_INET && family != AF_INET6)
		return false;
	if (filter_family && family != filter_family)
		return false;
	if (filter_netns && sk_netns(sk) != filter_netns)
		return false;
	return true;
}

static __always_inline void sk_read_addr(const struct sock *sk, struct sk_addr *a)
{
	a->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	/* inet_sport, not skc_num: the port number is released (0) by the time of TCP_CLOSE */
	a->lport = bpf_ntohs(BPF_CORE_READ((struct inet_sock *)sk, inet_sport));
	a->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	a->netns = sk_netns(sk);
	if (a->family == AF_INET) {
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(a->saddr, &s, 4);
		__builtin_memcpy(a->daddr, &d, 4);
	} else {
		BPF_CORE_READ_INTO(&a->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&a->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	}
}

/* The socket behind file descriptor `fd` of the current task (NULL: none), for the syscall
 * tracepoints that only see descriptors (accept). */
static __always_inline struct sock *fd_sock(int fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct file **fds = BPF_CORE_READ(task, files, fdt, fd);
	struct file *f = NULL;
	struct socket *sock;

	if (fd < 0 || bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return NULL;
	return BPF_CORE_READ(sock, sk);
}

#endif /* __BPFKIT_TCP_COMMON_H */
