// capable: security capability checks with their verdict. Linux 6.14+ has a tracepoint for them
// (capability:cap_capable, after the check, with its result); older kernels need a kprobe and a
// kretprobe on cap_capable(), which also tell whether the check is audited. The Python side
// loads one pair or the other.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"
#include "bpfkit_stacks.h"

const volatile __u32 self_pid = 0;      /* the tool itself: its own bpf() calls check capabilities */
const volatile __u8 audit_only = 0;     /* not -v: only audited checks (known on the kprobe path) */
const volatile __u8 kernel_stack = 0;   /* -K */
const volatile __u8 user_stack = 0;     /* -U */

#define CAP_OPT_NOAUDIT 0x2
#define CAP_OPT_INSETID 0x4

struct cap_event {
	__u64 ts;
	__u32 pid;
	__u32 tid;
	__u32 uid;
	__s32 cap;
	__s32 audit;        /* 1 audited, 0 not, -1 unknown (the tracepoint does not say) */
	__s32 insetid;      /* 1/0, -1 unknown */
	__s32 ret;          /* 0: granted; -EPERM: denied */
	__s32 kernel_stack_id;  /* in `stacks` (-K), or -errno; -1 when not asked */
	__s32 user_stack_id;    /* (-U) */
	char comm[16];
};

/* ids of the stacks of -K/-U; a stack-trace map sized like bcc's */
BPFKIT_STACK_MAP(stacks, 2048);

BPFKIT_RINGBUF(events, struct cap_event, 1 << 20);

__u64 missed = 0;   /* checks not traced: `inflight` full */

static __always_inline bool skip(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == self_pid || !bpfkit_filter_pass();
}

/* -K/-U: the stacks of the check, taken inside cap_capable (tracepoint, kprobe entry) so that they
 * start there, as bcc's do; -1 when not asked */
static __always_inline void stack_ids(void *ctx, __s32 *kernel, __s32 *user)
{
	*kernel = kernel_stack ? BPFKIT_KERNEL_STACKID(ctx, stacks) : -1;
	*user = user_stack ? BPFKIT_USER_STACKID(ctx, stacks) : -1;
}

static __always_inline void report(__s32 cap, __s32 audit, __s32 insetid, __s32 ret, __s32 kstack, __s32 ustack)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct cap_event *e = BPFKIT_RESERVE(events);

	if (!e)
		return;
	e->ts = bpf_ktime_get_ns();
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->uid = (__u32)bpf_get_current_uid_gid();
	e->cap = cap;
	e->audit = audit;
	e->insetid = insetid;
	e->ret = ret;
	e->kernel_stack_id = kstack;
	e->user_stack_id = ustack;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

/* the tracepoint's record (its format file; laid out by hand so this program also loads on
 * kernels whose BTF has no such tracepoint) */
struct cap_capable_record {
	__u64 common;
	const void *cred;
	void *target_ns;
	const void *capable_ns;
	int cap;
	int ret;
};

SEC("tracepoint/capability/cap_capable")
int on_cap_capable(struct cap_capable_record *ctx)
{
	__s32 kstack, ustack;

	if (skip())
		return 0;
	stack_ids(ctx, &kstack, &ustack);
	report(ctx->cap, -1, -1, ctx->ret, kstack, ustack);
	return 0;
}

/* kprobe path: cap_capable(const struct cred *cred, struct user_namespace *ns, int cap,
 * unsigned int opts) */
struct cap_args {
	__s32 cap;
	__u32 opts;
	__s32 kernel_stack_id;
	__s32 user_stack_id;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct cap_args);
} inflight SEC(".maps");

SEC("kprobe/cap_capable")
int BPF_KPROBE(on_cap_entry, const void *cred, void *ns, int cap, unsigned int opts)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cap_args a = { .cap = cap, .opts = opts };

	if (skip())
		return 0;
	if (audit_only && (opts & CAP_OPT_NOAUDIT))
		return 0;
	stack_ids(ctx, &a.kernel_stack_id, &a.user_stack_id);
	if (bpf_map_update_elem(&inflight, &tid, &a, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
	return 0;
}

SEC("kretprobe/cap_capable")
int BPF_KRETPROBE(on_cap_return, int ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct cap_args *a = bpf_map_lookup_elem(&inflight, &tid);

	if (!a)
		return 0;
	report(a->cap, !(a->opts & CAP_OPT_NOAUDIT), !!(a->opts & CAP_OPT_INSETID), ret, a->kernel_stack_id,
	       a->user_stack_id);
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
