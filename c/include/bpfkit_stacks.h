/* Collecting stacks on the BPF side (our own code; include after vmlinux.h and bpf_helpers.h).
 *
 * Two ways, both with their failures counted instead of lost silently:
 *
 * 1. Into a stack-trace map (bpf_get_stackid): the kernel stores each distinct stack once and
 *    hands back an id; a hash map keyed by the ids counts them. This is how profile, offcputime
 *    and stackcount aggregate in the kernel.
 *
 *        BPFKIT_STACK_MAP(stacks, 16384);            // or BPFKIT_STACK_MAP_BUILD_ID(...)
 *
 *        key.user_stack_id = BPFKIT_USER_STACKID(ctx, stacks);
 *        key.kernel_stack_id = BPFKIT_KERNEL_STACKID(ctx, stacks);
 *
 *    Python: ``obj.maps.stacks.read(ids)`` gives every id's frames as one numpy array;
 *    ``obj.bss.__bpfkit_stack_lost__stacks["collision"]`` (and "nomem", "empty", "other") the
 *    failure counters.
 *
 * 2. Straight into a record (bpf_get_stack), e.g. a ring-buffer event, so that a stack and the
 *    event it belongs to arrive together and nothing is kept in the kernel:
 *
 *        struct event { __u32 pid; struct bpfkit_stack user; };
 *        BPFKIT_RINGBUF(events, struct event, 1 << 22);
 *        BPFKIT_STACK_COUNTERS(events_stacks);
 *        ...
 *        e = BPFKIT_RESERVE(events);
 *        BPFKIT_GET_STACK(ctx, &e->user, BPF_F_USER_STACK, events_stacks);
 *
 *    Python: the record's ``user`` field is ``(len, ips[127])``; ips are zero-padded (the kernel
 *    clears the rest of the buffer, also on failure) and ``len`` is the frame count or -errno.
 *
 * Build-id stacks (BPF_F_USER_BUILD_ID) give (build-id, file offset) frames that resolve after the
 * process is gone: use BPFKIT_STACK_MAP_BUILD_ID, or struct bpfkit_build_id_stack with
 * BPF_F_USER_STACK | BPF_F_USER_BUILD_ID.
 */
#ifndef __BPFKIT_STACKS_H
#define __BPFKIT_STACKS_H

/* PERF_MAX_STACK_DEPTH: what the kernel walks at most (kernel.perf_event_max_stack, 127 default) */
#ifndef BPFKIT_STACK_DEPTH
#define BPFKIT_STACK_DEPTH 127
#endif

/* errno values bpf_get_stackid / bpf_get_stack return (vmlinux.h has no errno.h) */
#define BPFKIT_ENOMEM 12
#define BPFKIT_EFAULT 14
#define BPFKIT_EEXIST 17

/* Why stacks were not collected. `collision` and `nomem` are lost stacks (a full or colliding
 * stack map: raise its size); `empty` is no stack to walk (a kernel thread's user stack, a user
 * sample's kernel stack), which tools show as missing but do not call lost. */
struct bpfkit_stack_counters {
	__u64 collision; /* -EEXIST: another stack with the same hash holds the bucket */
	__u64 nomem;     /* -ENOMEM: the stack map (or the kernel's callchain buffers) is full */
	__u64 empty;     /* -EFAULT: nothing to walk */
	__u64 other;     /* any other error */
};

/* The counters of `name` (a map or a ring buffer): a .bss global ``__bpfkit_stack_lost__NAME``. */
#define BPFKIT_STACK_COUNTERS(name) \
	struct bpfkit_stack_counters __bpfkit_stack_lost__##name __attribute__((used)) = {}

/* A stack-trace map of `entries` stacks of instruction pointers, and its failure counters. */
#define BPFKIT_STACK_MAP(name, entries)                                          \
	struct {                                                                 \
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);                          \
		__uint(key_size, sizeof(__u32));                                 \
		__uint(value_size, BPFKIT_STACK_DEPTH * sizeof(__u64));          \
		__uint(max_entries, entries);                                    \
	} name SEC(".maps");                                                     \
	BPFKIT_STACK_COUNTERS(name)

/* The same holding build-id frames (user stacks only: struct bpf_stack_build_id each). */
#define BPFKIT_STACK_MAP_BUILD_ID(name, entries)                                           \
	struct {                                                                           \
		__uint(type, BPF_MAP_TYPE_STACK_TRACE);                                    \
		__uint(key_size, sizeof(__u32));                                           \
		__uint(value_size, BPFKIT_STACK_DEPTH * sizeof(struct bpf_stack_build_id)); \
		__uint(max_entries, entries);                                              \
		__uint(map_flags, BPF_F_STACK_BUILD_ID);                                   \
	} name SEC(".maps");                                                               \
	BPFKIT_STACK_COUNTERS(name)

static __always_inline void bpfkit_stack_count_error(long err, struct bpfkit_stack_counters *c)
{
	if (err == -BPFKIT_EEXIST)
		__sync_fetch_and_add(&c->collision, 1);
	else if (err == -BPFKIT_ENOMEM)
		__sync_fetch_and_add(&c->nomem, 1);
	else if (err == -BPFKIT_EFAULT)
		__sync_fetch_and_add(&c->empty, 1);
	else
		__sync_fetch_and_add(&c->other, 1);
}

static __always_inline long bpfkit_stackid(void *ctx, void *map, __u64 flags, struct bpfkit_stack_counters *c)
{
	long id = bpf_get_stackid(ctx, map, flags);

	if (id < 0)
		bpfkit_stack_count_error(id, c);
	return id;
}

/* bpf_get_stackid() into stack map `map` (the map itself, not a pointer), counting failures.
 * Evaluates to the id, or -errno as bcc stores it in its keys. */
#define BPFKIT_STACKID(ctx, map, flags) \
	((__s32)bpfkit_stackid(ctx, &map, flags, &__bpfkit_stack_lost__##map))
#define BPFKIT_USER_STACKID(ctx, map) BPFKIT_STACKID(ctx, map, BPF_F_USER_STACK)
#define BPFKIT_KERNEL_STACKID(ctx, map) BPFKIT_STACKID(ctx, map, 0)

/* A stack inside a record: frame count (or -errno) and zero-padded instruction pointers. */
struct bpfkit_stack {
	__s32 len;
	__u32 __pad;
	__u64 ips[BPFKIT_STACK_DEPTH];
};

/* A build-id stack inside a record (BPF_F_USER_STACK | BPF_F_USER_BUILD_ID). */
struct bpfkit_build_id_stack {
	__s32 len;
	__u32 __pad;
	struct bpf_stack_build_id frames[BPFKIT_STACK_DEPTH];
};

static __always_inline __s32 bpfkit_get_stack(void *ctx, void *buf, __u32 size, __u32 frame_size, __u64 flags,
					      struct bpfkit_stack_counters *c)
{
	long n = bpf_get_stack(ctx, buf, size, flags);

	if (n < 0) {
		bpfkit_stack_count_error(n, c);
		return n;
	}
	if (n == 0) /* nothing to walk: the same thing -EFAULT means to get_stackid */
		__sync_fetch_and_add(&c->empty, 1);
	return n / frame_size;
}

/* Fill `s` (a struct bpfkit_stack *) with the current stack (flags 0: kernel, BPF_F_USER_STACK:
 * user); `counters` names the BPFKIT_STACK_COUNTERS to count failures in. Sets and evaluates to
 * s->len: the frame count, or -errno. */
#define BPFKIT_GET_STACK(ctx, s, flags, counters)                                                   \
	((s)->len = bpfkit_get_stack(ctx, (s)->ips, sizeof((s)->ips), sizeof((s)->ips[0]), flags,   \
				     &__bpfkit_stack_lost__##counters))

/* Fill `s` (a struct bpfkit_build_id_stack *) with the current user stack as build-id frames. */
#define BPFKIT_GET_BUILD_ID_STACK(ctx, s, counters)                                                  \
	((s)->len = bpfkit_get_stack(ctx, (s)->frames, sizeof((s)->frames), sizeof((s)->frames[0]),    \
				     BPF_F_USER_STACK | BPF_F_USER_BUILD_ID,                          \
				     &__bpfkit_stack_lost__##counters))

#endif /* __BPFKIT_STACKS_H */
