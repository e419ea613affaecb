// Example XDP program for docs/testing.md: drops IPv4 UDP packets to one port.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

const volatile __u16 blocked_port = 0;
__u64 dropped = 0;

SEC("xdp")
int port_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(0x0800) || ip->ihl != 5 || ip->protocol != 17)
		return XDP_PASS;
	if (udp->dest != bpf_htons(blocked_port))
		return XDP_PASS;
	__sync_fetch_and_add(&dropped, 1);
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
