// Benchmark program for bench_events.py: a ring buffer written the plain libbpf way, as in a program
// being ported to bpfkit -- no bpfkit.h, bpf_ringbuf_reserve + bpf_ringbuf_submit, 4 MiB, one 32-byte
// record per getpid() of `target_pid`. The reader is given no dtype.
//
// Built twice: as is, the record type is only in the DWARF, not in the object's BTF (the reader sees
// 32-byte records of unknown type); with -DNAME_RECORD_TYPE the program also names it the way
// libbpf-bootstrap and bpf2go programs do (`const struct event *unused`), which puts it in the BTF.
//
// wake_every (rodata): 0 = the kernel's default wake-ups (whenever the reader has caught up);
// K > 1 = BPF_RB_NO_WAKEUP except every K-th record (BPF_RB_FORCE_WAKEUP).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

struct event {
	__u32 pid;
	__u32 cpu;
	__u64 ts;
	__u64 counter;
	__u64 spare;
};

#ifdef NAME_RECORD_TYPE
const struct event *unused __attribute__((unused));
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} plain SEC(".maps");

const volatile __u32 target_pid = 0;
const volatile __u32 wake_every = 0;
__u64 counter = 0;
__u64 plain_drops = 0;

SEC("tracepoint/syscalls/sys_enter_getpid")
int plain_getpid(void *ctx)
{
	if ((bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	__u64 c = __sync_fetch_and_add(&counter, 1);
	struct event *e = bpf_ringbuf_reserve(&plain, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&plain_drops, 1);
		return 0;
	}
	e->pid = target_pid;
	e->cpu = bpf_get_smp_processor_id();
	e->ts = bpf_ktime_get_ns();
	e->counter = c;
	e->spare = 0;
	__u64 flags = 0;
	if (wake_every > 1)
		flags = c % wake_every == wake_every - 1 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
