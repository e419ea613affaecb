// Loader corpus: sleepable programs (BPF_F_SLEEPABLE from the .s section forms): fentry.s on a
// syscall (allowed where the kernel has CONFIG_FUNCTION_ERROR_INJECTION), lsm.s, uprobe.s.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 calls = 0;

SEC("fentry.s/__x64_sys_getpgid")
int BPF_PROG(s_fentry, struct pt_regs *regs) { calls++; return 0; }

SEC("lsm.s/file_open")
int BPF_PROG(s_lsm, struct file *file, int ret) { return ret; }

SEC("uprobe.s")
int s_uprobe(void *ctx) { calls++; return 0; }

char LICENSE[] SEC("license") = "GPL";
