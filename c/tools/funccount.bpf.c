// funccount: calls per function, tracepoint or USDT probe. One program serves every target: the
// Python side attaches it to each with a BPF cookie that is the target's slot in `counts` (one
// uprobe_multi / kprobe_multi link carries a cookie per function), so the hot path is a cookie
// read and a per-CPU add.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include "bpfkit_filter.h"

const volatile __s32 fc_cpu = -1; /* count on this CPU only (-c); -1: every CPU */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1); /* one slot per target: sized by the Python side */
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline int count(__u32 slot)
{
	if (fc_cpu >= 0 && bpf_get_smp_processor_id() != (__u32)fc_cpu)
		return 0;
	if (!bpfkit_filter_pass())
		return 0;
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);
	if (c)
		*c += 1;
	return 0;
}

SEC("kprobe")
int fc_fn(struct pt_regs *ctx)
{
	return count(bpf_get_attach_cookie(ctx));
}

SEC("tracepoint")
int fc_tp(void *ctx)
{
	return count(bpf_get_attach_cookie(ctx));
}

/* syscalls:sys_enter_* / sys_exit_* patterns: one raw_syscalls tracepoint and a table from syscall
 * number to slot (+1; 0: not counted) instead of hundreds of perf events -- attaching and, above
 * all, detaching each syscall tracepoint costs an RCU grace period. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} sys_enter_slots SEC(".maps"), sys_exit_slots SEC(".maps");

static __always_inline int count_syscall(void *slots, long id)
{
	if (id < 0 || id >= 1024)
		return 0;
	__u32 nr = id;
	__u32 *slot = bpf_map_lookup_elem(slots, &nr);
	if (slot && *slot)
		return count(*slot - 1);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int fc_sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	return count_syscall(&sys_enter_slots, ctx->id);
}

SEC("tracepoint/raw_syscalls/sys_exit")
int fc_sys_exit(struct trace_event_raw_sys_exit *ctx)
{
	return count_syscall(&sys_exit_slots, ctx->id);
}

SEC("usdt")
int fc_usdt(struct pt_regs *ctx)
{
	return count(bpf_usdt_cookie(ctx));
}

char LICENSE[] SEC("license") = "GPL";
