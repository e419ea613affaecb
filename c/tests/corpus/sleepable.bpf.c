// Loader corpus: sleepable programs (BPF_F_SLEEPABLE from the .s section forms): an LSM hook on the
// kernel's sleepable list, and a uprobe. (fentry.s needs a target with error injection, which
// Debian's kernels are built without.)
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 calls = 0;

SEC("lsm.s/file_open")
int BPF_PROG(s_lsm, struct file *file, int ret) { return ret; }

SEC("uprobe.s")
int s_uprobe(void *ctx) { calls++; return 0; }

char LICENSE[] SEC("license") = "GPL";
