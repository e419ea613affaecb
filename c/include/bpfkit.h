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
 *             BPFKIT_SUBMIT(events, e);                   // adaptive wake-up (below)
 *             return 0;
 *     }
 *
 * Wake-ups. bpf_ringbuf_submit(e, 0) wakes the reader whenever it has caught up: one wake-up
 * (an irq_work, ~2 us paid by the traced process) per record for a fast reader. BPFKIT_SUBMIT and
 * BPFKIT_RINGBUF_OUTPUT wake it only when
 *   - the time since the ring's last wake-up is at least __bpfkit_wake_ns__<map> (2 ms by
 *     default), so a record after a quiet spell wakes the reader at once, or
 *   - the unread data crosses __bpfkit_wake_bytes__<map> (default 0: an eighth of the ring),
 *     so a burst is read before the ring fills;
 * both `const volatile` (.rodata): set them on the spec before load, e.g.
 * spec.rodata.__bpfkit_wake_ns__events = 500_000. The records in between wait for the reader's
 * next look: obj.reader() knows the window and looks that long after records came, so each
 * record reaches Python within about __bpfkit_wake_ns__ (a light stream: at once). The number of
 * wake-ups sent is in the .bss global __bpfkit_wakeups__<map>.
 *
 * Python: ``obj.reader("events").dropped`` reads the drop counter (a .bss global named
 * ``__bpfkit_drops__events``); ``obj.reader("events").stats()`` has received/discarded/dropped.
 * A ring buffer declared the plain libbpf way (no BPFKIT_RINGBUF) has no declared record type:
 * the reader takes it from the object's BTF when the program names the struct anywhere (e.g.
 * ``const struct event *unused __attribute__((unused));``) and the records have its size, else
 * it hands out RawBatches; or name it, ``obj.reader("rb").drain(dtype="event")``. Such a ring
 * has no drop counter.
 *
 * Perf buffers (BPF_MAP_TYPE_PERF_EVENT_ARRAY):
 *
 *     BPFKIT_PERFBUF(pevents, struct event);
 *     ...  BPFKIT_PERF_OUTPUT(ctx, pevents, &e);
 *
 * Where each lost event is counted -- exactly once, in exactly one place:
 *   ring buffer  full buffer (reserve/output failed)      -> `dropped` (this header's counter)
 *   perf buffer  full buffer (-ENOSPC)                     -> `lost` (the kernel's own count:
 *                                                             PERF_FORMAT_LOST, or PERF_RECORD_LOST
 *                                                             before 6.0); NOT counted here
 *                any other failure (no reader on that CPU, -> `dropped` (this header's counter)
 *                a CPU slot out of range, ...)
 * so received + lost + dropped is what the program tried to send.
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

#ifndef BPFKIT_WAKE_NS
#define BPFKIT_WAKE_NS 2000000ULL	/* the default of __bpfkit_wake_ns__<map>: 2 ms */
#endif

/* A ring's adaptive wake-up settings (rodata) and state (.bss): see the top of this file. */
#define BPFKIT_WAKE_STATE(map)                                                          \
	const volatile __u64 __bpfkit_wake_ns__##map __attribute__((used)) = BPFKIT_WAKE_NS; \
	const volatile __u64 __bpfkit_wake_bytes__##map __attribute__((used)) = 0;       \
	__u64 __bpfkit_woken_at__##map __attribute__((used)) = 0;                         \
	__u64 __bpfkit_wakeups__##map __attribute__((used)) = 0

#define BPFKIT_RINGBUF(name, rec_type, bytes)                   \
	struct {                                            \
		__uint(type, BPF_MAP_TYPE_RINGBUF);         \
		__uint(max_entries, bytes);                 \
	} name SEC(".maps");                                \
	BPFKIT_RECORD_TYPE(name, rec_type);                 \
	BPFKIT_DROP_COUNTER(name);                          \
	BPFKIT_WAKE_STATE(name)

/* A ring buffer of variable-size records (read them with drain_raw() / as bytes), with a drop counter. */
#define BPFKIT_RINGBUF_RAW(name, bytes)                         \
	struct {                                            \
		__uint(type, BPF_MAP_TYPE_RINGBUF);         \
		__uint(max_entries, bytes);                 \
	} name SEC(".maps");                                \
	BPFKIT_DROP_COUNTER(name);                          \
	BPFKIT_WAKE_STATE(name)

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

/* The wake-up flag for a record of `size` bytes about to be submitted to `map`: FORCE_WAKEUP when
 * wake_ns passed since the last wake-up, or when this record took the unread data across
 * wake_bytes (0: an eighth of the ring); NO_WAKEUP otherwise. Two CPUs may both wake at once:
 * harmless. */
static __always_inline __u64 __bpfkit_wake_flag(void *map, __u64 size, __u64 wake_ns, __u64 wake_bytes,
						__u64 *woken_at, __u64 *wakeups)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 unread = bpf_ringbuf_query(map, BPF_RB_AVAIL_DATA);	/* this record included */
	__u64 rec = (size + 8 + 7) & ~7ULL;				/* with its header, aligned */
	__u64 mark = wake_bytes ? wake_bytes : bpf_ringbuf_query(map, BPF_RB_RING_SIZE) / 8;

	if (now - *woken_at >= wake_ns || (unread >= mark && unread < mark + rec)) {
		*woken_at = now;
		__sync_fetch_and_add(wakeups, 1);
		return BPF_RB_FORCE_WAKEUP;
	}
	return BPF_RB_NO_WAKEUP;
}

#define __BPFKIT_WAKE_FLAG(name, size)                                                       \
	__bpfkit_wake_flag(&name, size, __bpfkit_wake_ns__##name, __bpfkit_wake_bytes__##name, \
			   &__bpfkit_woken_at__##name, &__bpfkit_wakeups__##name)

/* Submit a record reserved with BPFKIT_RESERVE (or _BYTES, giving its size) with an adaptive
 * wake-up (see the top of this file). */
#define BPFKIT_SUBMIT(name, rec) \
	bpf_ringbuf_submit(rec, __BPFKIT_WAKE_FLAG(name, sizeof(*(rec))))
#define BPFKIT_SUBMIT_BYTES(name, rec, size) \
	bpf_ringbuf_submit(rec, __BPFKIT_WAKE_FLAG(name, size))

/* Copy-out variant (bpf_ringbuf_output) with the same drop accounting and adaptive wake-ups;
 * evaluates to 0 on success. */
#define BPFKIT_RINGBUF_OUTPUT(name, ptr, size)                                    \
	({                                                                        \
		long __r = bpf_ringbuf_output(&name, ptr, size,                   \
					      __BPFKIT_WAKE_FLAG(name, size));    \
		if (__r)                                                          \
			__sync_fetch_and_add(&__bpfkit_drops__##name, 1);         \
		__r;                                                              \
	})

/* -ENOSPC from bpf_perf_event_output: the CPU's ring is full, and the kernel has counted the loss
 * itself (vmlinux.h has no errno macros). */
#define __BPFKIT_ENOSPC 28

/* bpf_perf_event_output on the current CPU; evaluates to its result. A full ring is the kernel's
 * to count (`lost`); any other failure (e.g. a CPU without a reader) increments the map's drop
 * counter (`dropped`), so no event is counted twice. */
#define BPFKIT_PERF_OUTPUT(ctx, name, ptr)                                                 \
	({                                                                                 \
		long __r = bpf_perf_event_output(ctx, &name, BPF_F_CURRENT_CPU, ptr,       \
						 sizeof(*(ptr)));                          \
		if (__r && __r != -__BPFKIT_ENOSPC)                                        \
			__sync_fetch_and_add(&__bpfkit_drops__##name, 1);                  \
		__r;                                                                       \
	})

#endif /* __BPFKIT_H */
