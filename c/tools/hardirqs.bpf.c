// hardirqs: hard interrupt handler time (or counts, or time distributions) per handler name, from
// the irq_handler_entry and irq_handler_exit BTF tracepoints. Handlers run with interrupts off,
// so one per-CPU slot holds the one running.
//
// BTF (not plain) tracepoints: a plain tracepoint program is skipped whenever it interrupts
// another kprobe/tracepoint BPF program on its CPU (the kernel's global bpf_prog_active guard),
// and interrupts often do; a BTF tracepoint program is only skipped when it interrupts itself.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_hist.h"

#define NAME_LEN 32

const volatile __s32 target_cpu = -1;   /* -c */
const volatile __u8 dist = 0;           /* -d */
const volatile __u64 unit_ns = 1000;

struct start_val {
	__u64 ts;
	__s32 irq;
	__u32 pad;
	char name[NAME_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct start_val);
} start SEC(".maps");

struct irq_key {
	char name[NAME_LEN];
};

struct irq_stats {
	__u64 count;       /* handled (the handler did not return IRQ_NONE), as bcc counts */
	__u64 total_ns;    /* time in handled invocations */
	__u64 unhandled;   /* IRQ_NONE: the interrupt was not this handler's */
	__s32 irq;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct irq_key);
	__type(value, struct irq_stats);
} stats SEC(".maps");

struct hist_by__hkey {
	char name[NAME_LEN];
	__u32 slot;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024 * 16);
	__type(key, struct hist_by__hkey);
	__type(value, __u64);
} hist_by SEC(".maps");

__u64 missed = 0;   /* invocations not recorded: a map full */

static __always_inline bool other_cpu(void)
{
	return target_cpu >= 0 && bpf_get_smp_processor_id() != (__u32)target_cpu;
}

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(on_entry, int irq, struct irqaction *action)
{
	__u32 zero = 0;
	struct start_val *s = bpf_map_lookup_elem(&start, &zero);

	if (other_cpu() || !s)
		return 0;
	/* the name is a map key: no bytes of an earlier, longer name after its NUL */
	__builtin_memset(s->name, 0, sizeof(s->name));
	bpf_probe_read_kernel_str(s->name, sizeof(s->name), BPF_CORE_READ(action, name));
	s->irq = irq;
	s->ts = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/irq_handler_exit")
int BPF_PROG(on_exit, int irq, struct irqaction *action, int ret)
{
	__u32 zero = 0;
	struct start_val *s = bpf_map_lookup_elem(&start, &zero);
	struct irq_stats *st, init = {};
	struct irq_key key = {};
	__u64 delta;

	if (other_cpu() || !s || !s->ts || s->irq != irq)
		return 0;
	delta = bpf_ktime_get_ns() - s->ts;
	s->ts = 0;
	__builtin_memcpy(key.name, s->name, sizeof(key.name));
	st = bpf_map_lookup_elem(&stats, &key);
	if (!st) {
		init.irq = irq;
		bpf_map_update_elem(&stats, &key, &init, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&stats, &key);
		if (!st) {
			__sync_fetch_and_add(&missed, 1);
			return 0;
		}
	}
	if (ret == 0) {    /* IRQ_NONE */
		__sync_fetch_and_add(&st->unhandled, 1);
		return 0;
	}
	__sync_fetch_and_add(&st->count, 1);
	__sync_fetch_and_add(&st->total_ns, delta);
	if (dist) {
		struct hist_by__hkey hk = {};
		__u64 one = 1, *c;

		__builtin_memcpy(hk.name, key.name, sizeof(hk.name));
		hk.slot = bpfkit_log2_slot(delta / unit_ns);
		c = bpf_map_lookup_elem(&hist_by, &hk);
		if (c)
			__sync_fetch_and_add(c, 1);
		else if (bpf_map_update_elem(&hist_by, &hk, &one, BPF_NOEXIST)) {
			c = bpf_map_lookup_elem(&hist_by, &hk);
			if (c)
				__sync_fetch_and_add(c, 1);
			else
				__sync_fetch_and_add(&missed, 1);
		}
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
