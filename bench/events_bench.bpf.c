// Benchmark program for bench_events.py: one 32-byte event per getpid() of `target_pid`, into a
// 16 MiB ring buffer (ring_getpid) or a perf buffer (perf_getpid). Drops are counted (bpfkit.h).
// Built with -DADAPTIVE, ring_getpid submits with bpfkit.h's adaptive wake-ups (BPFKIT_SUBMIT); with
// -DNOWAKE it never wakes the reader (readers look every 10 ms): the cost of the program alone.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfkit.h"

struct event {
	__u32 pid;
	__u32 cpu;
	__u64 ts;
	__u64 counter;
	__u64 spare;
};

BPFKIT_RINGBUF(events, struct event, 16 * 1024 * 1024);
BPFKIT_PERFBUF(pevents, struct event);

const volatile __u32 target_pid = 0;
__u64 counter = 0;

static __always_inline void fill(struct event *e)
{
	e->pid = target_pid;
	e->cpu = bpf_get_smp_processor_id();
	e->ts = bpf_ktime_get_ns();
	e->counter = __sync_fetch_and_add(&counter, 1);
	e->spare = 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int ring_getpid(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	struct event *e = BPFKIT_RESERVE(events);
	if (!e)
		return 0;
	fill(e);
#if defined(ADAPTIVE)
	BPFKIT_SUBMIT(events, e);	/* bpfkit.h's adaptive wake-ups */
#elif defined(NOWAKE)
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);	/* never: the floor of the program's own cost */
#else
	bpf_ringbuf_submit(e, 0);	/* a wake-up whenever the reader has caught up */
#endif
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int perf_getpid(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	struct event e;
	fill(&e);
	BPFKIT_PERF_OUTPUT(ctx, pevents, &e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
