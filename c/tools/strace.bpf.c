// strace: system calls of chosen threads (and, with -f, their children), captured at the raw
// sys_enter/sys_exit tracepoints -- one program pair for every system call.
//
// Which threads: `traced` (tid -> 1; 2: from its next execve on), filled by the Python side and, with st_follow, by
// sched_process_fork for children of traced threads; a thread leaves it when it exits.
// Enter saves the arguments (and fetches what must be read before the call: paths, buffers
// written); exit reads what the call filled in (buffers read, structs), then either counts the call
// per syscall number (st_mode 1, strace -c: nothing crosses to user space) or sends one record.
// What to fetch for a syscall is a row of `plans`, written by bpfkit/tools/strace/decode.py.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bpfkit.h"

#define ST_MAX_NR 1024
#define ST_FETCHES 3
#define ST_MAX_BLOB 4096  /* bytes per fetched string/buffer */
#define ST_RECORD (sizeof(struct st_event) + ST_FETCHES * (ST_MAX_BLOB + 8))

/* fetch kinds */
#define ST_STR 1      /* NUL-terminated string at arg, at enter */
#define ST_BUF_IN 2   /* bytes at arg, as many as arg `len_arg` says (capped), at enter */
#define ST_BUF_OUT 3  /* bytes at arg, as many as the return value says (capped), at exit */
#define ST_STRUCT 4   /* `size` bytes at arg, at exit when the call succeeded */
#define ST_STRUCT_IN 5 /* `size` bytes at arg, at enter */

const volatile __u8 st_mode = 0;      /* 0: records, 1: counts only (-c) */
const volatile __u8 st_follow = 0;    /* -f: trace children of traced threads */
const volatile __u32 st_strsize = 32; /* cap of buffers (strace -s) */
const volatile __u32 st_pathsize = 256;

struct st_fetch {
	__u8 kind;
	__u8 arg;     /* 0-5 */
	__u8 len_arg; /* ST_BUF_IN: the argument holding the length; 0xff: none */
	__u8 pad;
	__u32 size;   /* ST_STRUCT: bytes; strings/buffers: a cap (0: st_strsize / st_pathsize) */
};

struct st_plan {
	struct st_fetch f[ST_FETCHES];
	__u32 at_enter; /* read the arguments at enter, in a record of their own (execve: the old
			 * image is gone at exit) */
	__u32 pad;
};

struct st_inflight {
	__u64 ts;
	__u64 args[6];
	__s64 nr;
};

/* A record: this header, then for each fetch of the plan a u32 length (or -errno), a u32 kind,
 * and the bytes, padded to 8. */
struct st_event {
	__u64 ts;       /* enter */
	__u64 duration; /* ns, enter to exit */
	__u32 pid;
	__u32 tid;
	__s64 nr;
	__s64 ret;
	__u64 args[6];
	__u32 flags;    /* ST_EV_* */
	__u32 size;     /* bytes of this record */
};

#define ST_EV_NO_RETURN 1 /* exit/exit_group: sent at enter */
#define ST_EV_EXIT 2      /* the process exited: args[0] = exit code (wait status) */
#define ST_EV_ENTER 4     /* the arguments of a call that has not returned yet (plan at_enter) */
#define ST_EV_FORK 8      /* -f: a traced thread's child is traced from now on: args[0] = its tid */

struct st_count {
	__u64 calls;
	__u64 errors;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u8);
} traced SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct st_inflight);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, ST_MAX_NR);
	__type(key, __u32);
	__type(value, struct st_plan);
} plans SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, ST_MAX_NR);
	__type(key, __u32);
	__type(value, struct st_count);
} counts SEC(".maps");

/* Offsets and sizes are masked to 16 KiB (> ST_RECORD) for the verifier; a blob may start at any
 * such offset, so the scratch record has room for one more after it. */
#define ST_SCRATCH 32768

struct st_scratch {
	__u8 data[ST_SCRATCH];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct st_scratch);
} scratch SEC(".maps");

BPFKIT_RINGBUF_RAW(events, 1 << 24);

__u64 st_lost_inflight = 0; /* enters not saved (inflight full) */

/* `v` masked to the scratch size in a way clang cannot drop (it knows v <= ST_RECORD already and
 * would keep an unbounded copy), so the verifier sees the bound at the helper call. */
static __always_inline __u64 st_bound(__u64 v)
{
	asm volatile("%0 &= 0x3fff" : "+r"(v));
	return v;
}

static __always_inline __s64 st_bound_blob(__s64 v)
{
	asm volatile("%0 &= 0x1fff" : "+r"(v));
	return v;
}

static __always_inline bool is_traced(__u32 tid)
{
	return bpf_map_lookup_elem(&traced, &tid) != 0;
}

static __always_inline __u32 cap_of(const struct st_fetch *f)
{
	__u32 cap = f->size;
	if (!cap)
		cap = f->kind == ST_STR ? st_pathsize : st_strsize;
	if (cap > ST_MAX_BLOB)
		cap = ST_MAX_BLOB;
	return cap;
}

/* Append one fetched blob at `off` of `buf`; returns the new offset. */
static __always_inline __u32 put_blob(__u8 *buf, __u32 off, const struct st_fetch *f, __u64 ptr, __s64 len)
{
	__u32 cap = cap_of(f);
	__s32 got = 0;

	if (off > ST_RECORD - ST_MAX_BLOB - 8)
		return off;
	off = st_bound(off);
	__u8 *dst = buf + off + 8;
	if (f->kind == ST_STR) {
		got = bpf_probe_read_user_str(dst, cap, (const void *)ptr);
	} else {
		if (len < 0)
			len = 0;
		if (len > cap)
			len = cap;
		/* a no-op for len <= cap (<= ST_MAX_BLOB), but a constant bound: 6.1's verifier does not
		 * carry the bound of a comparison between two registers */
		len = st_bound_blob(len);
		got = len ? bpf_probe_read_user(dst, len, (const void *)ptr) : 0;
		if (got == 0)
			got = len;
	}
	*(__s32 *)(buf + off) = got;
	*(__u32 *)(buf + off + 4) = f->kind;
	__u32 n = got > 0 ? got : 0;
	if (n > ST_MAX_BLOB)
		n = ST_MAX_BLOB;
	return off + 8 + ((n + 7) & ~7);
}

SEC("raw_tracepoint/sys_enter")
int st_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;

	__u8 *state = bpf_map_lookup_elem(&traced, &tid);
	if (!state)
		return 0;
	if (*state == 2) {
		/* a command strace runs is traced from its execve on, as strace does */
		if (ctx->args[1] != 59 && ctx->args[1] != 322) /* x86-64 execve, execveat */
			return 0;
		*state = 1;
	}
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	struct st_inflight in = {
		.ts = bpf_ktime_get_ns(),
		.nr = ctx->args[1],
	};
	if (st_mode == 1) {
		if (bpf_map_update_elem(&inflight, &tid, &in, BPF_ANY))
			__sync_fetch_and_add(&st_lost_inflight, 1);
		return 0;
	}
	in.args[0] = PT_REGS_PARM1_CORE_SYSCALL(regs);
	in.args[1] = PT_REGS_PARM2_CORE_SYSCALL(regs);
	in.args[2] = PT_REGS_PARM3_CORE_SYSCALL(regs);
	in.args[3] = PT_REGS_PARM4_CORE_SYSCALL(regs);
	in.args[4] = PT_REGS_PARM5_CORE_SYSCALL(regs);
	in.args[5] = BPF_CORE_READ(regs, r9);

	__u32 nr = in.nr;
	struct st_plan *plan = nr < ST_MAX_NR ? bpf_map_lookup_elem(&plans, &nr) : 0;
	bool no_return = nr == 60 || nr == 231; /* x86-64 exit, exit_group */
	if (no_return || (plan && plan->at_enter)) {
		__u32 zero = 0;
		__u8 *rec = bpf_map_lookup_elem(&scratch, &zero);
		if (!rec)
			return 0;
		struct st_event *e = (struct st_event *)rec;
		e->ts = in.ts;
		e->duration = 0;
		e->pid = id >> 32;
		e->tid = tid;
		e->nr = in.nr;
		e->ret = 0;
		__builtin_memcpy(e->args, in.args, sizeof(e->args));
		e->flags = no_return ? ST_EV_NO_RETURN : ST_EV_ENTER;
		__u32 off = sizeof(*e);
		if (plan) {
#pragma unroll
			for (int i = 0; i < ST_FETCHES; i++) {
				const struct st_fetch *f = &plan->f[i];
				if (f->kind == ST_STR || f->kind == ST_BUF_IN || f->kind == ST_STRUCT_IN) {
					__s64 len = f->kind == ST_STRUCT_IN ? f->size : 0;
					if (f->kind == ST_BUF_IN && f->len_arg < 6)
						len = in.args[f->len_arg & 7];
					off = put_blob(rec, off, f, in.args[f->arg & 7], len);
				}
			}
		}
		e->size = off;
		if (off <= ST_RECORD)
			BPFKIT_RINGBUF_OUTPUT(events, rec, st_bound(off));
		if (no_return)
			return 0;
	}
	if (bpf_map_update_elem(&inflight, &tid, &in, BPF_ANY))
		__sync_fetch_and_add(&st_lost_inflight, 1);
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int st_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;
	struct st_inflight *in = bpf_map_lookup_elem(&inflight, &tid);

	if (!in)
		return 0;
	__u64 now = bpf_ktime_get_ns();
	__s64 ret = ctx->args[1];
	__s64 nr64 = in->nr;
	if (st_mode == 1) {
		__u32 nr = nr64;
		if (nr < ST_MAX_NR) {
			struct st_count *c = bpf_map_lookup_elem(&counts, &nr);
			if (c) {
				c->calls += 1;
				c->ns += now - in->ts;
				if (ret < 0 && ret >= -4095)
					c->errors += 1;
			}
		}
		bpf_map_delete_elem(&inflight, &tid);
		return 0;
	}
	__u32 zero = 0;
	__u8 *rec = bpf_map_lookup_elem(&scratch, &zero);
	if (!rec) {
		bpf_map_delete_elem(&inflight, &tid);
		return 0;
	}
	struct st_event *e = (struct st_event *)rec;
	e->ts = in->ts;
	e->duration = now - in->ts;
	e->pid = id >> 32;
	e->tid = tid;
	e->nr = nr64;
	e->ret = ret;
	__builtin_memcpy(e->args, in->args, sizeof(e->args));
	e->flags = 0;
	__u32 nr = nr64;
	struct st_plan *plan = nr < ST_MAX_NR ? bpf_map_lookup_elem(&plans, &nr) : 0;
	__u32 off = sizeof(*e);
	bool failed = ret < 0 && ret >= -4095;
	/* everything is read now, from the saved arguments (the caller's memory is still there),
	 * except for calls whose arguments went out at enter */
	if (plan && !plan->at_enter) {
#pragma unroll
		for (int i = 0; i < ST_FETCHES; i++) {
			const struct st_fetch *f = &plan->f[i];
			__u8 kind = f->kind;
			if (!kind)
				continue;
			if ((kind == ST_STRUCT || kind == ST_BUF_OUT) && failed) {
				if (off <= ST_RECORD - 8) {
					*(__s32 *)(rec + off) = -14; /* not read: the call failed */
					*(__u32 *)(rec + off + 4) = kind;
					off += 8;
				}
				continue;
			}
			__s64 len = kind == ST_BUF_OUT ? ret : (kind == ST_STR ? 0 : f->size);
			if (kind == ST_BUF_IN && f->len_arg < 6)
				len = e->args[f->len_arg & 7];
			off = put_blob(rec, off, f, e->args[f->arg & 7], len);
		}
	}
	bpf_map_delete_elem(&inflight, &tid);
	if (off > ST_RECORD)
		return 0;
	e->size = off;
	BPFKIT_RINGBUF_OUTPUT(events, rec, st_bound(off));
	return 0;
}

SEC("raw_tracepoint/sched_process_fork")
int st_fork(struct bpf_raw_tracepoint_args *ctx)
{
	if (!st_follow)
		return 0;
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptid = BPF_CORE_READ(parent, pid);
	__u8 *state = bpf_map_lookup_elem(&traced, &ptid);
	if (!state || *state != 1)
		return 0;
	__u32 ctid = BPF_CORE_READ(child, pid);
	__u8 one = 1;
	bpf_map_update_elem(&traced, &ctid, &one, BPF_ANY);
	if (st_mode == 1)
		return 0;
	/* strace's "Process N attached": from here on, lines carry [pid N] */
	__u64 id = bpf_get_current_pid_tgid();
	struct st_event e = {
		.ts = bpf_ktime_get_ns(),
		.pid = id >> 32,
		.tid = (__u32)id,
		.nr = -1,
		.flags = ST_EV_FORK,
		.size = sizeof(e),
	};
	e.args[0] = ctid;
	BPFKIT_RINGBUF_OUTPUT(events, &e, sizeof(e));
	return 0;
}

SEC("raw_tracepoint/sched_process_exit")
int st_task_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)id;

	if (!is_traced(tid))
		return 0;
	bpf_map_delete_elem(&traced, &tid);
	bpf_map_delete_elem(&inflight, &tid);
	if (st_mode == 1 || (__u32)(id >> 32) != tid)
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct st_event e = {
		.ts = bpf_ktime_get_ns(),
		.pid = id >> 32,
		.tid = tid,
		.nr = -1,
		.flags = ST_EV_EXIT,
		.size = sizeof(e),
	};
	e.args[0] = BPF_CORE_READ(task, exit_code);
	e.args[1] = BPF_CORE_READ(task, signal, group_exit_code);
	BPFKIT_RINGBUF_OUTPUT(events, &e, sizeof(e));
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
