// Programs for BPF_PROG_TEST_RUN tests (bpfkit.testing.testrun): each one's output is a known
// function of its synthetic input, so the tests can check exact return values, packets and contexts.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_HLEN 14
#define ETH_P_IP 0x0800
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define MARKER_DROP 0xff

__u64 xdp_runs = 0;
__u64 tc_runs = 0;

/* Swaps the Ethernet addresses and increments the first payload byte, then answers XDP_TX,
 * except for a payload starting with 0xff (XDP_DROP) and runts without payload (XDP_ABORTED). */
SEC("xdp")
int xdp_bounce(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;
	__u8 mac[6];

	__sync_fetch_and_add(&xdp_runs, 1);
	if (data + ETH_HLEN + 1 > end)
		return XDP_ABORTED;
	if (data[ETH_HLEN] == MARKER_DROP)
		return XDP_DROP;
	__builtin_memcpy(mac, data, 6);
	__builtin_memcpy(data, data + 6, 6);
	__builtin_memcpy(data + 6, mac, 6);
	data[ETH_HLEN] += 1;
	return XDP_TX;
}

/* Shortens the packet by its first payload byte (0..15) so the output length differs from the input. */
SEC("xdp")
int xdp_trim(struct xdp_md *ctx)
{
	__u8 *data = (void *)(long)ctx->data;
	__u8 *end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN + 1 > end)
		return XDP_ABORTED;
	if (bpf_xdp_adjust_tail(ctx, -(int)(data[ETH_HLEN] & 0xf)))
		return XDP_ABORTED;
	return XDP_PASS;
}

/* TC classifier: mark = mark * 2 + 1, priority = first payload byte, payload byte 1 set to 0xab
 * with bpf_skb_store_bytes; TC_ACT_SHOT for a payload starting with 0xff, else TC_ACT_OK. */
SEC("tc")
int tc_mark(struct __sk_buff *skb)
{
	__u8 first, ab = 0xab;

	__sync_fetch_and_add(&tc_runs, 1);
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &first, 1))
		return TC_ACT_SHOT;
	skb->mark = skb->mark * 2 + 1;
	skb->priority = first;
	if (first == MARKER_DROP)
		return TC_ACT_SHOT;
	if (bpf_skb_store_bytes(skb, ETH_HLEN + 1, &ab, 1, 0))
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}

/* Minimal IPv4 flow dissector: fills addresses, protocol and UDP/TCP ports. */
SEC("flow_dissector")
int dissect(struct __sk_buff *skb)
{
	struct bpf_flow_keys *keys = skb->flow_keys;
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u16 nhoff = keys->nhoff;
	struct iphdr *ip;
	__u16 *ports;

	if (keys->n_proto != bpf_htons(ETH_P_IP))
		return BPF_DROP;
	/* A bounded offset keeps the verifier's packet range tracking happy. */
	if (nhoff > 64)
		return BPF_DROP;
	ip = data + nhoff;
	if ((void *)(ip + 1) > end || ip->ihl != 5)
		return BPF_DROP;
	keys->addr_proto = ETH_P_IP;
	keys->ip_proto = ip->protocol;
	keys->ipv4_src = ip->saddr;
	keys->ipv4_dst = ip->daddr;
	keys->thoff = nhoff + sizeof(*ip);
	ports = (void *)(ip + 1);
	if ((void *)(ports + 2) > end)
		return BPF_DROP;
	keys->sport = ports[0];
	keys->dport = ports[1];
	return BPF_OK;
}

/* raw_tp: records its first three arguments and the CPU it ran on; returns 0 (the kernel ignores
 * a raw tracepoint program's return value, and recent verifiers insist on 0). */
__u64 raw_args[3];
__u32 raw_cpu = ~0U;
__u64 raw_runs = 0;

SEC("raw_tp/sys_enter")
int raw_args_probe(struct bpf_raw_tracepoint_args *ctx)
{
	raw_args[0] = ctx->args[0];
	raw_args[1] = ctx->args[1];
	raw_args[2] = ctx->args[2];
	raw_cpu = bpf_get_smp_processor_id();
	__sync_fetch_and_add(&raw_runs, 1);
	return 0;
}

/* syscall program: its context is whatever struct the caller passes in; the kernel copies it back. */
struct calc_args {
	__s32 a;
	__s32 b;
	__s64 product;
};

SEC("syscall")
int calc(struct calc_args *args)
{
	args->product = (__s64)args->a * args->b;
	return args->a + args->b;
}

char LICENSE[] SEC("license") = "GPL";
