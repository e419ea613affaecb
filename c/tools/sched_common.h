/* What the scheduler tools (runqlat, runqslower, cpudist) share: a task's state across kernels
 * (`state` became `__state` in 5.14), and the per-thread timestamp map. Include after vmlinux.h,
 * bpf_helpers.h, bpf_core_read.h. */
#ifndef __BPFKIT_SCHED_COMMON_H
#define __BPFKIT_SCHED_COMMON_H

#define TASK_RUNNING 0

struct task_struct___pre514 {
	volatile long state;
} __attribute__((preserve_access_index));

/* t is a BTF pointer (tp_btf argument): direct loads */
static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return t->__state;
	return ((struct task_struct___pre514 *)t)->state;
}

/* thread -> bpf_ktime_get_ns() of its last enqueue / switch; entries live from one event to the
 * next of the same thread, so the size bounds only threads in flight at once */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

__u64 missed = 0;   /* events not recorded: `start` or a histogram map full */

static __always_inline void remember(__u32 key, __u64 ts)
{
	if (bpf_map_update_elem(&start, &key, &ts, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
}

/* ns since `key` was remembered, and forget it; -1 if it was not */
static __always_inline __s64 since(__u32 key, __u64 now)
{
	__u64 *tsp = bpf_map_lookup_elem(&start, &key);
	__s64 delta;

	if (!tsp)
		return -1;
	delta = now - *tsp;
	bpf_map_delete_elem(&start, &key);
	return delta < 0 ? -1 : delta;
}

/* A per-key log2 histogram that allocates only what is used, read by bpfkit.hist like
 * BPFKIT_KEYED_LOG2_HIST: key {key, slot} -> count. */
#define SCHED_KEYED_HIST(name, max)                             \
	struct name##__hkey {                                   \
		__u32 key;                                      \
		__u32 slot;                                     \
	};                                                      \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_HASH);                \
		__uint(max_entries, max);                       \
		__uint(map_flags, BPF_F_NO_PREALLOC);           \
		__type(key, struct name##__hkey);               \
		__type(value, __u64);                           \
	} name SEC(".maps")

#define SCHED_KEYED_RECORD(map, k, v)                                                   \
	do {                                                                            \
		struct map##__hkey __hk = { .key = (k), .slot = bpfkit_log2_slot(v) };  \
		__u64 *__c = bpf_map_lookup_elem(&map, &__hk), __one = 1;               \
		if (__c)                                                                \
			__sync_fetch_and_add(__c, 1);                                   \
		else if (bpf_map_update_elem(&map, &__hk, &__one, BPF_NOEXIST)) {       \
			__c = bpf_map_lookup_elem(&map, &__hk);                         \
			if (__c)                                                        \
				__sync_fetch_and_add(__c, 1);                           \
			else                                                            \
				__sync_fetch_and_add(&missed, 1);                       \
		}                                                                       \
	} while (0)

#endif
