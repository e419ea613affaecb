// Test program for the foundation: counts getpid() per pid, filtered by a rodata pid,
// keeps totals in globals and submits one ring buffer event per call.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit.h"

struct event {
	__u32 pid;
	__u32 seq;
	__u64 ts;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

BPFKIT_RINGBUF(events, struct event, 256 * 1024);

const volatile __u32 target_pid = 0;
const volatile __u64 multiplier = 1;
__u64 total = 0;           /* .bss */
__u64 seen_by_slot[4];     /* .bss array */
__u32 in_value = 7;        /* .data, written from Python, copied to out_value by the program */
__u32 out_value = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int on_getpid(void *ctx)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	if (target_pid && pid != target_pid)
		return 0;
	__u64 one = 1, *v = bpf_map_lookup_elem(&counts, &pid);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&counts, &pid, &one, BPF_NOEXIST);
	__u64 seq = __sync_fetch_and_add(&total, multiplier);
	seen_by_slot[seq & 3] += 1;
	out_value = in_value;

	struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->seq = seq;
	e->ts = bpf_ktime_get_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
