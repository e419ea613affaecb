// The generic probe of bpfkit's one-liner tools (trace, argdist, the bpfkit.trace() API): one
// prebuilt program per probe kind, configured before load through .rodata by
// bpfkit/tools/oneliner/plan.py, so no compiler runs when a user asks a question.
//
// Every event is built in a per-CPU scratch record, laid out as
//
//     struct ol_header | value area | fetched strings and buffers
//
// The value area is what the probe gives for free: the raw tracepoint record (ol_tp), the six
// argument registers, the return value, and for paired return probes the latency and the entry's
// arguments (ol_fn), or the USDT arguments (ol_usdt). The comparisons of ol_cond (a small fixed
// table: "value at offset O of size S, signed or not, OP constant", all of which must hold) run on
// the value area before anything else is read, so a filtered-out event costs a few loads and never
// reaches the ring buffer. Then the fetch plan (ol_fetch) copies strings and buffers behind
// pointers in the value area (or a tracepoint's __data_loc strings) into the record, stacks are
// taken if asked, and the record goes out whole: every record of one load has the same size
// (ol_rec_size), so Python reads batches of them as one numpy structured array.
//
// All configuration is `const volatile`: the verifier sees it as constants, so the loops below
// (unrolled by clang) keep only the rows that are in use and an unused feature costs nothing.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"

/* libbpf before 1.2 stops at PARM5 */
#ifndef PT_REGS_PARM6
#if defined(__TARGET_ARCH_x86)
#define PT_REGS_PARM6(x) (((const struct pt_regs *)(x))->r9)
#elif defined(__TARGET_ARCH_arm64)
#define PT_REGS_PARM6(x) (((const struct user_pt_regs *)(x))->regs[5])
#else
#define PT_REGS_PARM6(x) 0
#endif
#endif

#define OL_MAX_RECORD 8192 /* scratch record size: header + values + fetched data */
#define OL_MAX_FETCH 8
#define OL_MAX_COND 8
#define OL_MAX_USDT_ARGS 12
#define OL_FN_VALUES 14 /* args 0-5, retval (6), latency (7), entry args 0-5 (8-13) */
#define OL_HEADER 56

/* fetch kinds */
#define OL_STR 1     /* NUL-terminated string behind the pointer at src */
#define OL_BYTES 2   /* up to `size` bytes behind the pointer at src; the length is at len_src (or size) */
#define OL_DATALOC 3 /* a tracepoint __data_loc string: the u32 at src is (len << 16 | offset) */

/* where fetched memory lives */
#define OL_KERNEL 0
#define OL_USER 1
#define OL_ANY 2 /* kernel first, then user (kprobes on functions taking __user pointers) */

/* comparison operators */
#define OL_EQ 1
#define OL_NE 2
#define OL_LT 3
#define OL_LE 4
#define OL_GT 5
#define OL_GE 6
#define OL_AND 7  /* (v & value) != 0 */
#define OL_NAND 8 /* (v & value) == 0 */

struct ol_header {
	__u64 ts;       /* bpf_ktime_get_ns() */
	__u32 pid;      /* tgid */
	__u32 tid;
	__u32 uid;
	__u32 gid;
	__u32 cpu;
	__s32 ustack;   /* stack ids in ol_stacks, <0: not taken or failed (-errno) */
	__s32 kstack;
	__u32 cookie;   /* the attach cookie: which of several attached targets fired */
	char comm[16];
};

struct ol_fetch {
	__u16 src;      /* offset of the pointer (or __data_loc word) in the value area */
	__u16 dst;      /* offset in the record of the fetched bytes */
	__u16 size;     /* bytes reserved at dst */
	__u16 len_src;  /* OL_BYTES: offset in the value area of the length; 0xffff: always `size` */
	__u16 len_dst;  /* offset in the record of the s32 result (bytes copied or -errno) */
	__u8 kind;      /* OL_STR, OL_BYTES, OL_DATALOC */
	__u8 mem;       /* OL_KERNEL, OL_USER, OL_ANY */
};

struct ol_cond {
	__u64 value;
	__u16 off;      /* in the value area */
	__u8 size;      /* 1, 2, 4, 8 */
	__u8 is_signed;
	__u8 op;
	__u8 pad[3];
};

const volatile __u32 ol_rec_size = OL_HEADER;   /* bytes per record, a multiple of 8 */
const volatile __u32 ol_tp_size = 0;            /* ol_tp: bytes of the tracepoint record to copy */
const volatile __u32 ol_usdt_nargs = 0;         /* ol_usdt: arguments to read */
const volatile __u8 ol_paired = 0;              /* ol_fn is a return probe paired with ol_fn_entry */
const volatile __u8 ol_want_comm = 1;
const volatile __u8 ol_ustack = 0;
const volatile __u8 ol_kstack = 0;
const volatile __u32 ol_nfetch = 0;
const volatile struct ol_fetch ol_fetches[OL_MAX_FETCH] = {};
const volatile __u32 ol_ncond = 0;
const volatile struct ol_cond ol_conds[OL_MAX_COND] = {};

struct ol_scratch {
	__u8 data[OL_MAX_RECORD];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct ol_scratch);
} ol_scratch SEC(".maps");

/* What a paired return probe needs from its entry: when, and the arguments. */
struct ol_entry {
	__u64 ts;
	__u64 args[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct ol_entry);
} ol_entries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 1); /* sized by the Python side when stacks are asked for */
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} ol_stacks SEC(".maps");

BPFKIT_RINGBUF_RAW(ol_events, 1 << 22);

__u64 ol_filtered = 0; /* events the BPF-side comparisons dropped (read by the Python side) */
__u64 ol_unpaired = 0; /* paired return probes whose entry was not seen (or ol_entries was full) */

static __always_inline __u64 ol_load(const __u8 *p, __u8 size, __u8 is_signed)
{
	switch (size) {
	case 1:
		return is_signed ? (__u64)(__s64) * (const __s8 *)p : *p;
	case 2:
		return is_signed ? (__u64)(__s64) * (const __s16 *)p : *(const __u16 *)p;
	case 4:
		return is_signed ? (__u64)(__s64) * (const __s32 *)p : *(const __u32 *)p;
	default:
		return *(const __u64 *)p;
	}
}

static __always_inline bool ol_cmp(__u64 v, __u64 c, __u8 op, __u8 is_signed)
{
	switch (op) {
	case OL_EQ:
		return v == c;
	case OL_NE:
		return v != c;
	case OL_LT:
		return is_signed ? (__s64)v < (__s64)c : v < c;
	case OL_LE:
		return is_signed ? (__s64)v <= (__s64)c : v <= c;
	case OL_GT:
		return is_signed ? (__s64)v > (__s64)c : v > c;
	case OL_GE:
		return is_signed ? (__s64)v >= (__s64)c : v >= c;
	case OL_AND:
		return (v & c) != 0;
	case OL_NAND:
		return (v & c) == 0;
	}
	return false;
}

/* All comparisons of ol_conds hold for the value area at `vals` (the record's, after the header). */
static __always_inline bool ol_pass(const __u8 *rec)
{
#pragma unroll
	for (int i = 0; i < OL_MAX_COND; i++) {
		if (i >= ol_ncond)
			break;
		__u32 off = ol_conds[i].off;
		if (off > OL_MAX_RECORD - OL_HEADER - 8)
			return false;
		__u64 v = ol_load(rec + OL_HEADER + off, ol_conds[i].size, ol_conds[i].is_signed);
		if (!ol_cmp(v, ol_conds[i].value, ol_conds[i].op, ol_conds[i].is_signed)) {
			__sync_fetch_and_add(&ol_filtered, 1);
			return false;
		}
	}
	return true;
}

static __always_inline long ol_read_str(void *dst, __u32 size, const void *src, __u8 mem)
{
	long n;

	if (mem == OL_USER)
		return bpf_probe_read_user_str(dst, size, src);
	n = bpf_probe_read_kernel_str(dst, size, src);
	if (n < 0 && mem == OL_ANY)
		n = bpf_probe_read_user_str(dst, size, src);
	return n;
}

static __always_inline long ol_read(void *dst, __u32 size, const void *src, __u8 mem)
{
	long n;

	if (mem == OL_USER)
		return bpf_probe_read_user(dst, size, src);
	n = bpf_probe_read_kernel(dst, size, src);
	if (n < 0 && mem == OL_ANY)
		n = bpf_probe_read_user(dst, size, src);
	return n;
}

/* Run the fetch plan. `ctx` is the tracepoint record (for __data_loc strings), else unused. */
static __always_inline void ol_fetch_all(__u8 *rec, const void *ctx)
{
#pragma unroll
	for (int i = 0; i < OL_MAX_FETCH; i++) {
		if (i >= ol_nfetch)
			break;
		__u32 src = ol_fetches[i].src, dst = ol_fetches[i].dst, size = ol_fetches[i].size;
		__u32 len_src = ol_fetches[i].len_src, len_dst = ol_fetches[i].len_dst;
		__u8 kind = ol_fetches[i].kind, mem = ol_fetches[i].mem;
		long got = -22; /* EINVAL: a plan the checks below refuse */

		if (src > OL_MAX_RECORD - OL_HEADER - 8 || size == 0 || dst + size > OL_MAX_RECORD ||
		    len_dst > OL_MAX_RECORD - 4)
			continue;
		if (kind == OL_DATALOC) {
			__u32 loc = *(__u32 *)(rec + OL_HEADER + src);
			got = ol_read_str(rec + dst, size, (const __u8 *)ctx + (loc & 0xffff), OL_KERNEL);
		} else {
			const void *ptr = (const void *)*(__u64 *)(rec + OL_HEADER + src);
			if (kind == OL_STR) {
				got = ol_read_str(rec + dst, size, ptr, mem);
			} else if (kind == OL_BYTES) {
				__u64 len = size;
				if (len_src != 0xffff && len_src <= OL_MAX_RECORD - OL_HEADER - 8) {
					len = *(__u64 *)(rec + OL_HEADER + len_src);
					if ((__s64)len < 0)
						len = 0;
					if (len > size)
						len = size;
				}
				got = len ? ol_read(rec + dst, len, ptr, mem) : 0;
				if (got == 0)
					got = len;
			}
		}
		*(__s32 *)(rec + len_dst) = got;
	}
}

static __always_inline __u8 *ol_scratch_record(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&ol_scratch, &zero);
}

/* The filter first (so a rejected event costs only its loads), then the header, strings, stacks,
 * and out. */
static __always_inline int ol_finish(void *ctx, __u8 *rec, const void *tp, __u32 cookie, __u64 ts)
{
	struct ol_header *h = (struct ol_header *)rec;

	if (!ol_pass(rec))
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ug = bpf_get_current_uid_gid();
	h->ts = ts ? ts : bpf_ktime_get_ns();
	h->pid = id >> 32;
	h->tid = (__u32)id;
	h->uid = (__u32)ug;
	h->gid = ug >> 32;
	h->cpu = bpf_get_smp_processor_id();
	h->ustack = -1;
	h->kstack = -1;
	h->cookie = cookie;
	if (ol_want_comm)
		bpf_get_current_comm(h->comm, sizeof(h->comm));
	else
		__builtin_memset(h->comm, 0, sizeof(h->comm));
	ol_fetch_all(rec, tp);
	if (ol_ustack)
		h->ustack = bpf_get_stackid(ctx, &ol_stacks, BPF_F_USER_STACK);
	if (ol_kstack)
		h->kstack = bpf_get_stackid(ctx, &ol_stacks, 0);
	__u32 size = ol_rec_size;
	if (size > OL_MAX_RECORD)
		return 0;
	BPFKIT_RINGBUF_OUTPUT(ol_events, rec, size);
	return 0;
}

SEC("tracepoint")
int ol_tp(void *ctx)
{
	if (!bpfkit_filter_pass())
		return 0;
	__u8 *rec = ol_scratch_record();
	if (!rec)
		return 0;
	__u32 n = ol_tp_size;
	if (n > OL_MAX_RECORD - OL_HEADER)
		return 0;
	if (bpf_probe_read_kernel(rec + OL_HEADER, n, ctx))
		return 0;
	return ol_finish(ctx, rec, ctx, bpf_get_attach_cookie(ctx), 0);
}

SEC("kprobe")
int ol_fn(struct pt_regs *ctx)
{
	if (!bpfkit_filter_pass())
		return 0;
	__u8 *rec = ol_scratch_record();
	if (!rec)
		return 0;
	__u64 *v = (__u64 *)(rec + OL_HEADER);
	__u64 ts = 0;
	v[0] = PT_REGS_PARM1(ctx);
	v[1] = PT_REGS_PARM2(ctx);
	v[2] = PT_REGS_PARM3(ctx);
	v[3] = PT_REGS_PARM4(ctx);
	v[4] = PT_REGS_PARM5(ctx);
	v[5] = PT_REGS_PARM6(ctx);
	v[6] = PT_REGS_RC(ctx);
	v[7] = 0;
	if (ol_paired) {
		__u64 id = bpf_get_current_pid_tgid();
		struct ol_entry *e = bpf_map_lookup_elem(&ol_entries, &id);
		if (!e) {
			__sync_fetch_and_add(&ol_unpaired, 1);
			return 0;
		}
		ts = bpf_ktime_get_ns();
		v[7] = ts - e->ts;
#pragma unroll
		for (int i = 0; i < 6; i++)
			v[8 + i] = e->args[i];
		bpf_map_delete_elem(&ol_entries, &id);
	}
	return ol_finish(ctx, rec, 0, bpf_get_attach_cookie(ctx), ts);
}

/* The entry half of a paired return probe ($latency, $entry(arg) in argdist). */
SEC("kprobe")
int ol_fn_entry(struct pt_regs *ctx)
{
	if (!bpfkit_filter_pass())
		return 0;
	__u64 id = bpf_get_current_pid_tgid();
	struct ol_entry e = {
		.ts = bpf_ktime_get_ns(),
		.args = {PT_REGS_PARM1(ctx), PT_REGS_PARM2(ctx), PT_REGS_PARM3(ctx), PT_REGS_PARM4(ctx),
			 PT_REGS_PARM5(ctx), PT_REGS_PARM6(ctx)},
	};
	if (bpf_map_update_elem(&ol_entries, &id, &e, BPF_ANY))
		__sync_fetch_and_add(&ol_unpaired, 1);
	return 0;
}

SEC("usdt")
int ol_usdt(struct pt_regs *ctx)
{
	if (!bpfkit_filter_pass())
		return 0;
	__u8 *rec = ol_scratch_record();
	if (!rec)
		return 0;
	__u64 *v = (__u64 *)(rec + OL_HEADER);
#pragma unroll
	for (int i = 0; i < OL_MAX_USDT_ARGS; i++) {
		if (i >= ol_usdt_nargs)
			break;
		long x = 0;
		bpf_usdt_arg(ctx, i, &x);
		v[i] = x;
	}
	/* the attach cookie of a USDT site is libbpf's spec id; ours travels in the spec */
	return ol_finish(ctx, rec, 0, bpf_usdt_cookie(ctx), 0);
}

char LICENSE[] SEC("license") = "GPL";
