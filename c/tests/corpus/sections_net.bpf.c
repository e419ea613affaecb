// Loader corpus, second part of sections.bpf.c: the SEC() kinds whose program type is shared and
// whose expected attach type differs (cgroup socket hooks, XDP in device/CPU maps, sk_reuseport,
// sk_skb parsers, LWT hooks), plus sleepable uretprobes and the raw cgroup/skb and cgroup/sock
// aliases. Each loads on 6.1 and later without attaching; the program and expected attach type each
// section sets are compared with libbpf's in tests/test_loader_differential.py (the spec parts).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define PASS1(name, sec, ctx_t) SEC(sec) int name(ctx_t *ctx) { return 1; }

PASS1(s_cgroup_skb_egress, "cgroup_skb/egress", struct __sk_buff)
PASS1(s_cgroup_skb_alias, "cgroup/skb", struct __sk_buff)
PASS1(s_sock_alias, "cgroup/sock", struct bpf_sock)
PASS1(s_sock_release, "cgroup/sock_release", struct bpf_sock)
PASS1(s_post_bind4, "cgroup/post_bind4", struct bpf_sock)
PASS1(s_post_bind6, "cgroup/post_bind6", struct bpf_sock)
PASS1(s_bind4, "cgroup/bind4", struct bpf_sock_addr)
PASS1(s_bind6, "cgroup/bind6", struct bpf_sock_addr)
PASS1(s_connect6, "cgroup/connect6", struct bpf_sock_addr)
PASS1(s_sendmsg4, "cgroup/sendmsg4", struct bpf_sock_addr)
PASS1(s_sendmsg6, "cgroup/sendmsg6", struct bpf_sock_addr)
PASS1(s_recvmsg4, "cgroup/recvmsg4", struct bpf_sock_addr)
PASS1(s_recvmsg6, "cgroup/recvmsg6", struct bpf_sock_addr)
PASS1(s_getpeername4, "cgroup/getpeername4", struct bpf_sock_addr)
PASS1(s_getpeername6, "cgroup/getpeername6", struct bpf_sock_addr)
PASS1(s_getsockname4, "cgroup/getsockname4", struct bpf_sock_addr)
PASS1(s_getsockname6, "cgroup/getsockname6", struct bpf_sock_addr)
PASS1(s_getsockopt, "cgroup/getsockopt", struct bpf_sockopt)
PASS1(s_setsockopt, "cgroup/setsockopt", struct bpf_sockopt)

SEC("xdp/devmap") int s_xdp_devmap(struct xdp_md *ctx) { return XDP_PASS; }
SEC("xdp/cpumap") int s_xdp_cpumap(struct xdp_md *ctx) { return XDP_PASS; }
SEC("sk_reuseport") int s_reuseport(struct sk_reuseport_md *ctx) { return SK_PASS; }
SEC("sk_reuseport/migrate") int s_reuseport_migrate(struct sk_reuseport_md *ctx) { return SK_PASS; }
SEC("sk_skb/stream_parser") int s_stream_parser(struct __sk_buff *skb) { return skb->len; }
SEC("sk_skb") int s_sk_skb_plain(struct __sk_buff *skb) { return SK_PASS; }
SEC("lwt_out") int s_lwt_out(struct __sk_buff *skb) { return BPF_OK; }
SEC("lwt_xmit") int s_lwt_xmit(struct __sk_buff *skb) { return BPF_OK; }
SEC("lwt_seg6local") int s_lwt_seg6local(struct __sk_buff *skb) { return BPF_OK; }

__u64 n = 0;
SEC("uretprobe.s") int s_uretprobe_s(void *ctx) { n++; return 0; }

char LICENSE[] SEC("license") = "GPL";
