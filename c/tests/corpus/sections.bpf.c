// Loader corpus: one program for each SEC() kind that loads on every kernel we test (tracing,
// networking, cgroup, iterators, syscall), two programs in one section, and an autoload-off one.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 n = 0;

SEC("tracepoint/sched/sched_switch") int s_tracepoint(void *ctx) { n++; return 0; }
SEC("tp/sched/sched_wakeup") int s_tp(void *ctx) { n++; return 0; }
SEC("raw_tracepoint/sched_switch") int s_raw_tracepoint(void *ctx) { n++; return 0; }
SEC("raw_tp/sched_switch") int s_raw_tp(void *ctx) { n++; return 0; }
SEC("raw_tp/sched_switch") int s_raw_tp_twice(void *ctx) { n += 2; return 0; }
SEC("tp_btf/sched_switch") int BPF_PROG(s_tp_btf, bool preempt, struct task_struct *prev, struct task_struct *next) { n += prev->pid; return 0; }
SEC("kprobe/do_nanosleep") int BPF_KPROBE(s_kprobe) { n++; return 0; }
SEC("kretprobe/do_nanosleep") int BPF_KRETPROBE(s_kretprobe, long ret) { n += ret; return 0; }
SEC("ksyscall/nanosleep") int s_ksyscall(void *ctx) { n++; return 0; }
SEC("kretsyscall/nanosleep") int s_kretsyscall(void *ctx) { n++; return 0; }
SEC("uprobe") int s_uprobe(void *ctx) { n++; return 0; }
SEC("uretprobe") int s_uretprobe(void *ctx) { n++; return 0; }
SEC("perf_event") int s_perf_event(void *ctx) { n++; return 0; }
SEC("xdp") int s_xdp(struct xdp_md *ctx) { return XDP_PASS; }
SEC("xdp.frags") int s_xdp_frags(struct xdp_md *ctx) { return XDP_PASS; }
SEC("tc") int s_tc(struct __sk_buff *skb) { return 0; }
SEC("classifier") int s_classifier(struct __sk_buff *skb) { return 0; }
SEC("action") int s_action(struct __sk_buff *skb) { return 0; }
SEC("socket") int s_socket(struct __sk_buff *skb) { return skb->len; }
SEC("cgroup_skb/ingress") int s_cgroup_skb(struct __sk_buff *skb) { return 1; }
SEC("cgroup/sock_create") int s_cgroup_sock(struct bpf_sock *sk) { return 1; }
SEC("cgroup/connect4") int s_connect4(struct bpf_sock_addr *ctx) { return 1; }
SEC("cgroup/sysctl") int s_sysctl(struct bpf_sysctl *ctx) { return 1; }
SEC("cgroup/dev") int s_dev(struct bpf_cgroup_dev_ctx *ctx) { return 1; }
SEC("sockops") int s_sockops(struct bpf_sock_ops *ctx) { return 1; }
SEC("sk_skb/stream_verdict") int s_sk_skb(struct __sk_buff *skb) { return SK_PASS; }
SEC("sk_msg") int s_sk_msg(struct sk_msg_md *msg) { return SK_PASS; }
SEC("sk_lookup") int s_sk_lookup(struct bpf_sk_lookup *ctx) { return SK_PASS; }
SEC("flow_dissector") int s_flow(struct __sk_buff *skb) { return BPF_OK; }
SEC("lwt_in") int s_lwt_in(struct __sk_buff *skb) { return BPF_OK; }
SEC("iter/task") int s_iter_task(struct bpf_iter__task *ctx) { return 0; }
SEC("syscall") int s_syscall(void *ctx) { return 0; }
SEC("?raw_tp/sys_exit") int s_not_loaded(void *ctx) { n++; return 0; }

char LICENSE[] SEC("license") = "GPL";
