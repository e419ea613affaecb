// Test program for ring/perf buffer readers: every getpid() of `target_pid` becomes one event with a
// sequence number, so a test can check exactly which events arrived.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "bpfkit.h"

struct event {
	__u32 pid;
	__u32 cpu;
	__u64 seq;
	__u64 ts;
	char comm[16];
};

BPFKIT_RINGBUF(events, struct event, 256 * 1024);
BPFKIT_RINGBUF_RAW(varevents, 256 * 1024);
BPFKIT_PERFBUF(pevents, struct event);

/* Declared the plain libbpf way, without BPFKIT_RINGBUF: the reader gets no record type and is
 * given one by name (dtype="event"). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} plain SEC(".maps");

/* Declared the plain libbpf way, records of 24 bytes whose type the BTF does not have (a u64[3]
 * local): read without a dtype they come as a RawBatch of fixed-size records. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} plain24 SEC(".maps");

/* Perf buffers declared the plain libbpf/bcc way, without BPFKIT_PERFBUF: struct event samples
 * (a type the BTF has) and 24-byte u64[3] samples (one it does not have). */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} plainperf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} plainperf24 SEC(".maps");

/* Names an 8-byte struct in the BTF the way libbpf-bootstrap programs do, so that a reader of
 * varevents given no dtype may take it for the record type if the first records are all 8 bytes. */
struct var_head {
	__u64 seq;
};
const struct var_head *unused_var_head __attribute__((unused));

const volatile __u32 target_pid = 0;
const volatile __u32 discard_every = 0;	/* discard records whose seq % discard_every == 0 */
__u64 seq = 0;
__u64 pseq = 0;
__u64 vseq = 0;
__u64 plainseq = 0;
__u64 plain24seq = 0;
__u32 var_cycle = 4;	/* varevents record sizes cycle through 8, 16, ... var_cycle * 8 bytes */

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == target_pid;
}

static __always_inline void fill(struct event *e, __u64 s)
{
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->cpu = bpf_get_smp_processor_id();
	e->seq = s;
	e->ts = bpf_ktime_get_ns();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int ring_getpid(void *ctx)
{
	if (!mine())
		return 0;
	__u64 s = __sync_fetch_and_add(&seq, 1);
	struct event *e = BPFKIT_RESERVE(events);
	if (!e)
		return 0;
	fill(e, s);
	if (discard_every && s % discard_every == 0)
		bpf_ringbuf_discard(e, 0);
	else
		bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int perf_getpid(void *ctx)
{
	if (!mine())
		return 0;
	struct event e = {};
	fill(&e, __sync_fetch_and_add(&pseq, 1));
	BPFKIT_PERF_OUTPUT(ctx, pevents, &e);
	return 0;
}

/* The same records as ring_getpid, submitted with bpfkit.h's adaptive wake-ups. */
SEC("tracepoint/syscalls/sys_enter_getpid")
int ring_adaptive_getpid(void *ctx)
{
	if (!mine())
		return 0;
	struct event *e = BPFKIT_RESERVE(events);
	if (!e)
		return 0;
	fill(e, __sync_fetch_and_add(&seq, 1));
	BPFKIT_SUBMIT(events, e);
	return 0;
}

/* Variable-size records: 8-byte seq followed by (seq % 4) * 8 bytes each holding seq. */
SEC("tracepoint/syscalls/sys_enter_getpid")
int var_getpid(void *ctx)
{
	if (!mine())
		return 0;
	__u64 s = __sync_fetch_and_add(&vseq, 1);
	__u32 cycle = var_cycle;
	__u32 n = cycle > 1 ? s % cycle : 0;
	__u64 *p;
	switch (n) {
	case 0: p = BPFKIT_RESERVE_BYTES(varevents, 8); break;
	case 1: p = BPFKIT_RESERVE_BYTES(varevents, 16); break;
	case 2: p = BPFKIT_RESERVE_BYTES(varevents, 24); break;
	default: p = BPFKIT_RESERVE_BYTES(varevents, 32); break;
	}
	if (!p)
		return 0;
	p[0] = s;
	if (n >= 1) p[1] = s;
	if (n >= 2) p[2] = s;
	if (n >= 3) p[3] = s;
	bpf_ringbuf_submit(p, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int plain_getpid(void *ctx)
{
	if (!mine())
		return 0;
	struct event e = {};
	fill(&e, __sync_fetch_and_add(&plainseq, 1));
	bpf_ringbuf_output(&plain, &e, sizeof(e), 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int plain24_getpid(void *ctx)
{
	if (!mine())
		return 0;
	__u64 v[3];
	v[0] = __sync_fetch_and_add(&plain24seq, 1);
	v[1] = bpf_get_current_pid_tgid() >> 32;
	v[2] = ~v[0];
	bpf_ringbuf_output(&plain24, v, sizeof(v), 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_getpid")
int plainperf_getpid(void *ctx)
{
	if (!mine())
		return 0;
	struct event e = {};
	fill(&e, __sync_fetch_and_add(&plainseq, 1));
	bpf_perf_event_output(ctx, &plainperf, BPF_F_CURRENT_CPU, &e, sizeof(e));
	__u64 v[3];
	v[0] = __sync_fetch_and_add(&plain24seq, 1);
	v[1] = e.pid;
	v[2] = ~v[0];
	bpf_perf_event_output(ctx, &plainperf24, BPF_F_CURRENT_CPU, v, sizeof(v));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
