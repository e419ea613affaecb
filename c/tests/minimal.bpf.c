// SPDX-License-Identifier: GPL-2.0
/* Smallest useful program: counts getpid() calls. The build test checks that
 * every .bpf.c under c/, this one included, is compiled into bpfkit/bpf/. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

__u64 getpid_calls = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int count_getpid(void *ctx)
{
	__sync_fetch_and_add(&getpid_calls, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
