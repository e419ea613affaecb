// SPDX-License-Identifier: GPL-2.0
/* Test program for bpfkit_stacks.h: one uprobe hit records the same user stack three ways --
 * an id in a stack map, the frames in a ring-buffer record, and build-id frames in a build-id
 * stack map and in the record -- so the test can check the readers agree. Only target_pid. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit.h"
#include "bpfkit_stacks.h"

const volatile __u32 target_pid = 0;

struct event {
	__s32 stack_id;
	__s32 build_id_stack_id;
	struct bpfkit_stack user;
	struct bpfkit_build_id_stack build_ids;
};

BPFKIT_RINGBUF(events, struct event, 1 << 20);
BPFKIT_STACK_COUNTERS(events_stacks);
BPFKIT_STACK_MAP(stacks, 64);
BPFKIT_STACK_MAP_BUILD_ID(bid_stacks, 64);

SEC("uprobe")
int on_target(struct pt_regs *ctx)
{
	struct event *e;

	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	e = BPFKIT_RESERVE(events);
	if (!e)
		return 0;
	e->stack_id = BPFKIT_USER_STACKID(ctx, stacks);
	e->build_id_stack_id = BPFKIT_STACKID(ctx, bid_stacks, BPF_F_USER_STACK);
	BPFKIT_GET_STACK(ctx, &e->user, BPF_F_USER_STACK, events_stacks);
	BPFKIT_GET_BUILD_ID_STACK(ctx, &e->build_ids, events_stacks);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
