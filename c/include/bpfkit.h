/* bpfkit's BPF-side helpers (our own code; include after vmlinux.h and bpf_helpers.h).
 *
 * Event buffers whose records the Python side decodes as numpy batches, and whose drops are
 * never silent:
 *
 *     struct event { __u32 pid; char comm[16]; };
 *     BPFKIT_RINGBUF(events, struct event, 1 << 20);
 *
 *     SEC("tracepoint/syscalls/sys_enter_getpid")
 *     int on_getpid(void *ctx)
 *     {
 *             struct event *e = BPFKIT_RESERVE(events);   // NULL when full: counted as a drop
 *             if (!e)
 *                     return 0;
 *             e->pid = bpf_get_current_pid_tgid() >> 32;
 *             bpf_ringbuf_submit(e, 0);
 *             return 0;
 *     }
 *
 * Python: ``obj.reader("events").dropped`` reads the drop counter (a .bss global named
 * ``__bpfkit_drops__events``); ``obj.reader("events").stats()`` has received/discarded/dropped.
 * A ring buffer declared the plain libbpf way (no BPFKIT_RINGBUF) has no record type for the
 * reader: name the struct instead, ``obj.reader("rb").drain(dtype="event")`` (it must be in the
 * object's BTF, i.e. used by the program), and it has no drop counter.
 *
 * Perf buffers (BPF_MAP_TYPE_PERF_EVENT_ARRAY) count their losses in the kernel (PERF_RECORD_LOST,
 * surfaced per CPU by the reader); BPFKIT_PERF_OUTPUT additionally counts failed outputs (e.g. no
 * reader on that CPU yet):
 *
 *     BPFKIT_PERFBUF(pevents, struct event);
 *     ...  BPFKIT_PERF_OUTPUT(ctx, pevents, &e);
 */
#ifndef __BPFKIT_H
#define __BPFKIT_H

/* A read-only zero pointer named after the map: costs 8 bytes of .rodata and makes the record type
 * visible in the object's BTF as `__bpfkit_record__<map>` (libbpf rejects BTF value types on ring
 * buffers, so the map definition itself cannot carry it). */
#define BPFKIT_RECORD_TYPE(map, rec_type) \
	rec_type *const volatile __bpfkit_record__##map __attribute__((used)) = 0

/* The drop counter of `map`: a plain .bss global, so the reader maps it and reads it without a
 * syscall. Non-static and `used`, so it exists even when nothing increments it. */
#define BPFKIT_DROP_COUNTER(map) \
	__u64 __bpfkit_drops__##map __attribute__((used)) = 0

#define BPFKIT_RINGBUF(name, rec_type, bytes)                   \
	struct {                                            \
		__uint(type, BPF_MAP_TYPE_RINGBUF);         \
		__uint(max_entries, bytes);                 \
	} name SEC(".maps");                                \
	BPFKIT_RECORD_TYPE(name, rec_type);                 \
	BPFKIT_DROP_COUNTER(name)

/* A ring buffer of variable-size records (read them with drain_raw() / as bytes), with a drop counter. */
#define BPFKIT_RINGBUF_RAW(name, bytes)                         \
	struct {                                            \
		__uint(type, BPF_MAP_TYPE_RINGBUF);         \
		__uint(max_entries, bytes);                 \
	} name SEC(".maps");                                \
	BPFKIT_DROP_COUNTER(name)

/* A perf event array with one slot per possible CPU (libbpf sizes it when max_entries is 0). */
#define BPFKIT_PERFBUF(name, rec_type)                          \
	struct {                                            \
		__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); \
		__uint(key_size, sizeof(__u32));            \
		__uint(value_size, sizeof(__u32));          \
	} name SEC(".maps");                                \
	BPFKIT_RECORD_TYPE(name, rec_type);                 \
	BPFKIT_DROP_COUNTER(name)

static __always_inline void *__bpfkit_reserve(void *map, __u64 size, __u64 *drops)
{
	void *p = bpf_ringbuf_reserve(map, size, 0);

	if (!p)
		__sync_fetch_and_add(drops, 1);
	return p;
}

/* Reserve one record of the map's declared type; a failure (buffer full) increments the drop
 * counter. Submit with bpf_ringbuf_submit() or skip with bpf_ringbuf_discard() as usual. */
#define BPFKIT_RESERVE(name)                                                        \
	((__typeof__(*__bpfkit_record__##name) *)__bpfkit_reserve(                  \
		&name, sizeof(*__bpfkit_record__##name), &__bpfkit_drops__##name))

/* Reserve `size` bytes (variable-size records; `size` must be known to the verifier). */
#define BPFKIT_RESERVE_BYTES(name, size) \
	__bpfkit_reserve(&name, size, &__bpfkit_drops__##name)

/* Copy-out variant (bpf_ringbuf_output) with the same drop accounting; evaluates to 0 on success. */
#define BPFKIT_RINGBUF_OUTPUT(name, ptr, size)                                    \
	({                                                                        \
		long __r = bpf_ringbuf_output(&name, ptr, size, 0);               \
		if (__r)                                                          \
			__sync_fetch_and_add(&__bpfkit_drops__##name, 1);         \
		__r;                                                              \
	})

/* bpf_perf_event_output on the current CPU; a failure increments the map's drop counter (the
 * kernel's own PERF_RECORD_LOST covers a full buffer; this covers e.g. a CPU without a reader). */
#define BPFKIT_PERF_OUTPUT(ctx, name, ptr)                                                 \
	({                                                                                 \
		long __r = bpf_perf_event_output(ctx, &name, BPF_F_CURRENT_CPU, ptr,       \
						 sizeof(*(ptr)));                          \
		if (__r)                                                                   \
			__sync_fetch_and_add(&__bpfkit_drops__##name, 1);                  \
		__r;                                                                       \
	})

#endif /* __BPFKIT_H */
