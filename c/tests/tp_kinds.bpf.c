// Test program for raw tracepoints and BTF-typed tracepoints: both count getpid() of one pid;
// the map value is a nested struct with arrays, to check the BTF -> dtype conversion.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define NR_getpid 39

const volatile __u32 target_pid = 0;

struct inner {
	__u16 kind;
	__s8 small[3];
	__u64 big;
};

struct outer {
	__u32 raw_tp_hits;
	__u32 tp_btf_hits;
	struct inner in[2];
	char tag[8];
	union {
		__u32 as_u32;
		float as_f32;
	};
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct outer);
} stats SEC(".maps");

/* a value with bitfields: numpy has no dtype for it, Python must refuse to guess */
struct packed_flags {
	__u32 kind : 3;
	__u32 level : 5;
	__u32 rest : 24;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct packed_flags);
} bits SEC(".maps");

static __always_inline struct outer *mine(long id)
{
	__u32 zero = 0;
	if (id != NR_getpid || (bpf_get_current_pid_tgid() >> 32) != target_pid)
		return 0;
	return bpf_map_lookup_elem(&stats, &zero);
}

SEC("raw_tp/sys_enter")
int BPF_PROG(on_raw_sys_enter, struct pt_regs *regs, long id)
{
	struct outer *o = mine(id);
	if (o) {
		__sync_fetch_and_add(&o->raw_tp_hits, 1);
		o->in[1].big = 1000 + id; /* the syscall number, seen through the raw args */
	}
	return 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_btf_sys_enter, struct pt_regs *regs, long id)
{
	struct outer *o = mine(id);
	if (o) {
		__sync_fetch_and_add(&o->tp_btf_hits, 1);
		o->in[0].kind = 7;
		o->in[0].small[2] = -3;
		__builtin_memcpy(o->tag, "bpfkit!", 8);
		o->as_u32 = 0x3f800000; /* 1.0f */
		__u32 zero = 0;
		struct packed_flags *f = bpf_map_lookup_elem(&bits, &zero);
		if (f) {
			f->kind = 5;
			f->level = 17;
		}
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
