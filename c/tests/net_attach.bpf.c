// Test programs for XDP and tcx attachment: count IPv4 UDP datagrams to one port, then drop or
// pass them by a rodata flag, so a test can check the exact count and what a socket receives.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_UDP_ 17

const volatile __u16 port = 0;      /* host order */
const volatile __u8 drop = 0;
const volatile __u32 mark = 0;      /* tc: skb->mark set on counted packets */

__u64 xdp_packets = 0;
__u64 tc_packets = 0;
__u64 marked_packets = 0;

static __always_inline int is_udp_to_port(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end || ip->protocol != IPPROTO_UDP_ || ip->ihl < 5)
		return 0;
	struct udphdr *udp = (void *)ip + ip->ihl * 4;
	if ((void *)(udp + 1) > data_end)
		return 0;
	return udp->dest == bpf_htons(port);
}

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	if (!is_udp_to_port((void *)(long)ctx->data, (void *)(long)ctx->data_end))
		return XDP_PASS;
	__sync_fetch_and_add(&xdp_packets, 1);
	return drop ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	if (!is_udp_to_port((void *)(long)skb->data, (void *)(long)skb->data_end))
		return TCX_NEXT;
	__sync_fetch_and_add(&tc_packets, 1);
	if (mark)
		skb->mark = mark;
	/* TCX_NEXT, not TCX_PASS: programs attached after this one still see the packet */
	return drop ? TCX_DROP : TCX_NEXT;
}

/* Attached after tc_count: sees the mark tc_count set, which proves both the write and the order. */
SEC("tc")
int tc_marked(struct __sk_buff *skb)
{
	if (mark && skb->mark == mark)
		__sync_fetch_and_add(&marked_packets, 1);
	return TCX_NEXT;
}

char LICENSE[] SEC("license") = "GPL";
