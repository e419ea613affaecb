// SPDX-License-Identifier: GPL-2.0
/* Test program for bpfkit.symbols: real stacks from the kernel to symbolize.
 * A uprobe on the symbols_target fixture's innermost function records the user
 * stack twice, as instruction pointers and as build-id frames
 * (BPF_F_USER_BUILD_ID); the write(2) syscall tracepoint records a kernel stack.
 * Only the first hit of each is kept, only for target_pid. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#define DEPTH 32

const volatile __u32 target_pid = 0;

__u64 ustack[DEPTH];
long ustack_bytes = 0;
struct bpf_stack_build_id bstack[DEPTH];
long bstack_bytes = 0;
__u64 kstack[DEPTH];
long kstack_bytes = 0;
__u64 uhits = 0;
__u64 khits = 0;

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

SEC("uprobe")
int on_inner(struct pt_regs *ctx)
{
	if (!mine() || uhits++)
		return 0;
	ustack_bytes = bpf_get_stack(ctx, ustack, sizeof(ustack), BPF_F_USER_STACK);
	bstack_bytes = bpf_get_stack(ctx, bstack, sizeof(bstack), BPF_F_USER_STACK | BPF_F_USER_BUILD_ID);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int on_write(void *ctx)
{
	if (!mine() || khits++)
		return 0;
	kstack_bytes = bpf_get_stack(ctx, kstack, sizeof(kstack), 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
