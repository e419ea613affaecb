// Loader corpus: BTF-attached programs resolved at load (attach_btf_id): fentry, fexit, an LSM hook
// and a task iterator. Kernels that refuse trampolines (this CI host: EPERM) refuse them with either
// loader. Sleepable ones are in sleepable.bpf.c.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 calls = 0, rets = 0;

SEC("fentry/do_nanosleep")
int BPF_PROG(t_fentry, struct hrtimer_sleeper *t, enum hrtimer_mode mode) { calls++; return 0; }

SEC("fexit/do_nanosleep")
int BPF_PROG(t_fexit, struct hrtimer_sleeper *t, enum hrtimer_mode mode, int ret) { rets += ret; return 0; }

SEC("lsm/file_open")
int BPF_PROG(t_lsm, struct file *file, int ret) { return ret; }

SEC("iter/task")
int t_iter(struct bpf_iter__task *ctx) { return 0; }

char LICENSE[] SEC("license") = "GPL";
