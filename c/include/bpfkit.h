/* bpfkit's BPF-side helpers (our own code; include after vmlinux.h and bpf_helpers.h).
 *
 * BPFKIT_RINGBUF(name, rec_type, bytes) declares a ring buffer whose records are `type`, and
 * records that fact in BTF so the Python side decodes records with the right dtype:
 *
 *     struct event { __u32 pid; char comm[16]; };
 *     BPFKIT_RINGBUF(events, struct event, 1 << 20);
 */
#ifndef __BPFKIT_H
#define __BPFKIT_H

/* A read-only zero pointer named after the map: costs 8 bytes of .rodata and makes the record type
 * visible in the object's BTF as `__bpfkit_record__<map>` (libbpf rejects BTF value types on ring
 * buffers, so the map definition itself cannot carry it). */
#define BPFKIT_RECORD_TYPE(map, rec_type) \
	rec_type *const volatile __bpfkit_record__##map __attribute__((used)) = 0

#define BPFKIT_RINGBUF(name, rec_type, bytes)                   \
	struct {                                            \
		__uint(type, BPF_MAP_TYPE_RINGBUF);         \
		__uint(max_entries, bytes);                 \
	} name SEC(".maps");                                \
	BPFKIT_RECORD_TYPE(name, rec_type)

#endif /* __BPFKIT_H */
