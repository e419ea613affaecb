/* bpfkit's BPF-side histograms and stats (our own code; include after vmlinux.h and
 * bpf_helpers.h). The Python side reads these maps with bpfkit.hist:
 *
 *     BPFKIT_LOG2_HIST(lat);                          // one log2 histogram
 *     BPFKIT_LINEAR_HIST(sizes, 0, 100, 10);          // <0, [0,10) ... [90,100), >=100
 *     BPFKIT_KEYED_LOG2_HIST(lat_by_pid, __u32, 1024) // one log2 histogram per pid
 *     BPFKIT_STATS(st);                               // count/total/min/max
 *     BPFKIT_KEYED_STATS(st_by_pid, __u32, 1024);
 *
 *     bpfkit_log2_record(&lat, delta_ns);
 *     bpfkit_linear_record(&sizes, bytes, 0, 100, 10);
 *     bpfkit_keyed_log2_record(lat_by_pid, pid, delta_ns);   // map by name, not pointer
 *     bpfkit_stats_record(&st, v);
 *     bpfkit_keyed_stats_record(&st_by_pid, &pid, v);
 *
 * Slots follow bpftrace's hist(): slot 0 counts negative values, slot 1 the value 0,
 * slot k >= 2 the range [2^(k-2), 2^(k-1)). Linear slot 0 counts values below lo, slot
 * (hi-lo)/step + 1 values >= hi.
 */
#ifndef __BPFKIT_HIST_H
#define __BPFKIT_HIST_H

#define BPFKIT_LOG2_SLOTS 66

/* floor(log2(v)) for v > 0, branch-free so the verifier sees a bounded result */
static __always_inline __u32 bpfkit_log2l(__u64 v)
{
	__u32 r, shift;

	r = (v > 0xFFFFFFFFULL) << 5; v >>= r;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* bpftrace's log2 slot of an unsigned value */
static __always_inline __u32 bpfkit_log2_slot(__u64 v)
{
	return v ? bpfkit_log2l(v) + 2 : 1;
}

/* bpftrace's log2 slot of a signed value (negative values land in slot 0) */
static __always_inline __u32 bpfkit_log2_slot_signed(__s64 v)
{
	return v < 0 ? 0 : bpfkit_log2_slot((__u64)v);
}

/* Linear slot: 0 below lo, 1 + (v - lo) / step inside, (hi - lo) / step + 1 at or above hi.
 * Unsigned division only: BPF before cpu v4 has no signed divide. */
static __always_inline __u32 bpfkit_linear_slot(__s64 v, __s64 lo, __s64 hi, __u64 step)
{
	if (v < lo)
		return 0;
	if (v >= hi)
		return (__u32)((__u64)(hi - lo) / step) + 1;
	return (__u32)((__u64)(v - lo) / step) + 1;
}

#define BPFKIT_LINEAR_SLOTS(lo, hi, step) ((((hi) - (lo)) / (step)) + 2)

/* per-CPU counters: no atomics on the hot path, summed over CPUs when read */
#define BPFKIT_LOG2_HIST(name)                                  \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);        \
		__uint(max_entries, BPFKIT_LOG2_SLOTS);         \
		__type(key, __u32);                             \
		__type(value, __u64);                           \
	} name SEC(".maps")

#define BPFKIT_LINEAR_HIST(name, lo, hi, step)                                  \
	struct {                                                                \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);                        \
		__uint(max_entries, BPFKIT_LINEAR_SLOTS(lo, hi, step));         \
		__type(key, __u32);                                             \
		__type(value, __u64);                                           \
	} name SEC(".maps")

/* A histogram per key: hash of { key, slot } -> count. bpfkit.hist groups by `key`. */
#define BPFKIT_KEYED_HIST(name, key_type, max_keys, slots)      \
	struct name##__hkey {                                   \
		key_type key;                                   \
		__u32 slot;                                     \
	};                                                      \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_HASH);                \
		__uint(max_entries, (max_keys) * (slots));      \
		__type(key, struct name##__hkey);               \
		__type(value, __u64);                           \
	} name SEC(".maps")

#define BPFKIT_KEYED_LOG2_HIST(name, key_type, max_keys) \
	BPFKIT_KEYED_HIST(name, key_type, max_keys, BPFKIT_LOG2_SLOTS)

#define BPFKIT_KEYED_LINEAR_HIST(name, key_type, max_keys, lo, hi, step) \
	BPFKIT_KEYED_HIST(name, key_type, max_keys, BPFKIT_LINEAR_SLOTS(lo, hi, step))

/* add n to the u64 counter at *key, creating it if needed */
static __always_inline void bpfkit_count_add(void *map, const void *key, __u64 n)
{
	__u64 *c = bpf_map_lookup_elem(map, key);

	if (c) {
		__sync_fetch_and_add(c, n);
		return;
	}
	/* another CPU may create it between our lookup and update: then add to theirs */
	if (bpf_map_update_elem(map, key, &n, BPF_NOEXIST)) {
		c = bpf_map_lookup_elem(map, key);
		if (c)
			__sync_fetch_and_add(c, n);
	}
}

/* bump slot `slot` of an array histogram (per-CPU: plain add is safe) */
static __always_inline void bpfkit_slot_add(void *map, __u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(map, &slot);

	if (c)
		*c += 1;
}

#define bpfkit_log2_record(map, v) bpfkit_slot_add(map, bpfkit_log2_slot(v))
#define bpfkit_log2_record_signed(map, v) bpfkit_slot_add(map, bpfkit_log2_slot_signed(v))
#define bpfkit_linear_record(map, v, lo, hi, step) bpfkit_slot_add(map, bpfkit_linear_slot(v, lo, hi, step))

/* keyed: `map` is the map variable itself (its key type is taken from the definition) */
#define bpfkit_keyed_slot_add(map, keyval, slotval)                     \
	do {                                                            \
		__typeof__(*(map).key) __bpfkit_k;                      \
		__builtin_memset(&__bpfkit_k, 0, sizeof(__bpfkit_k));   \
		__bpfkit_k.key = (keyval);                              \
		__bpfkit_k.slot = (slotval);                            \
		bpfkit_count_add(&(map), &__bpfkit_k, 1);               \
	} while (0)

#define bpfkit_keyed_log2_record(map, keyval, v) \
	bpfkit_keyed_slot_add(map, keyval, bpfkit_log2_slot(v))
#define bpfkit_keyed_log2_record_signed(map, keyval, v) \
	bpfkit_keyed_slot_add(map, keyval, bpfkit_log2_slot_signed(v))
#define bpfkit_keyed_linear_record(map, keyval, v, lo, hi, step) \
	bpfkit_keyed_slot_add(map, keyval, bpfkit_linear_slot(v, lo, hi, step))

/* count / total / min / max, like bpftrace's stats() plus min() and max() */
struct bpfkit_stats {
	__u64 count;
	__s64 total;
	__s64 min;
	__s64 max;
};

#define BPFKIT_STATS(name)                                      \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);        \
		__uint(max_entries, 1);                         \
		__type(key, __u32);                             \
		__type(value, struct bpfkit_stats);             \
	} name SEC(".maps")

#define BPFKIT_KEYED_STATS(name, key_type, max_keys)            \
	struct {                                                \
		__uint(type, BPF_MAP_TYPE_PERCPU_HASH);         \
		__uint(max_entries, max_keys);                  \
		__type(key, key_type);                          \
		__type(value, struct bpfkit_stats);             \
	} name SEC(".maps")

static __always_inline void bpfkit_stats_add(struct bpfkit_stats *s, __s64 v)
{
	if (!s->count || v < s->min)
		s->min = v;
	if (!s->count || v > s->max)
		s->max = v;
	s->count += 1;
	s->total += v;
}

static __always_inline void bpfkit_stats_record(void *map, __s64 v)
{
	__u32 zero = 0;
	struct bpfkit_stats *s = bpf_map_lookup_elem(map, &zero);

	if (s)
		bpfkit_stats_add(s, v);
}

static __always_inline void bpfkit_keyed_stats_record(void *map, const void *key, __s64 v)
{
	struct bpfkit_stats *s = bpf_map_lookup_elem(map, key);

	if (!s) {
		struct bpfkit_stats init = {};

		bpf_map_update_elem(map, key, &init, BPF_NOEXIST);
		s = bpf_map_lookup_elem(map, key);
		if (!s)
			return;
	}
	bpfkit_stats_add(s, v);
}

#endif /* __BPFKIT_HIST_H */
