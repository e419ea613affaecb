// memleak: outstanding user-space allocations of one process, by stack, as bcc's memleak -p:
// uprobes on the allocator's entries (the size, per thread) and uretprobes on its returns (the
// address, the size and the caller's stack), a uprobe on free() forgets the address. What is
// still in `allocs` when read is outstanding. The Python side attaches to the process only.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit.h"
#include "bpfkit_stacks.h"

const volatile __u64 min_size = 0;            /* -z */
const volatile __u64 max_size = (__u64)-1;    /* -Z */
const volatile __u32 sample_every = 1;        /* -s: record one allocation in this many */

struct alloc_info {
	__u64 size;
	__u64 ts;
	__s32 stack_id;
	__u32 pad_;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);     /* tid */
	__type(value, __u64);   /* the size asked for */
} sizes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1000000);
	__type(key, __u64);     /* the address returned */
	__type(value, struct alloc_info);
} allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);     /* tid */
	__type(value, __u64);   /* posix_memalign's memptr */
} memptrs SEC(".maps");

BPFKIT_STACK_MAP(stacks, 10240);

__u64 allocs_full = 0;  /* allocations not recorded: `allocs` was full */
__u64 seen = 0;         /* allocations seen (before sampling) */

static __always_inline int alloc_enter(__u64 size)
{
	__u32 tid = bpf_get_current_pid_tgid();

	if (size < min_size || size > max_size)
		return 0;
	if (sample_every > 1 && bpf_ktime_get_ns() % sample_every)
		return 0;
	bpf_map_update_elem(&sizes, &tid, &size, BPF_ANY);
	return 0;
}

static __always_inline int alloc_exit(struct pt_regs *ctx, __u64 addr)
{
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 *size = bpf_map_lookup_elem(&sizes, &tid);
	struct alloc_info info = {};

	if (!size)
		return 0;
	info.size = *size;
	bpf_map_delete_elem(&sizes, &tid);
	__sync_fetch_and_add(&seen, 1);
	if (!addr)
		return 0;
	info.ts = bpf_ktime_get_ns();
	info.stack_id = BPFKIT_USER_STACKID(ctx, stacks);
	if (bpf_map_update_elem(&allocs, &addr, &info, BPF_ANY))
		__sync_fetch_and_add(&allocs_full, 1);
	return 0;
}

static __always_inline int free_enter(__u64 addr)
{
	if (addr)
		bpf_map_delete_elem(&allocs, &addr);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, size_t size)
{
	return alloc_enter(size);
}

SEC("uretprobe")
int BPF_KRETPROBE(malloc_exit, void *ret)
{
	return alloc_exit(ctx, (__u64)ret);
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, size_t nmemb, size_t size)
{
	return alloc_enter(nmemb * size);
}

SEC("uprobe")
int BPF_KPROBE(realloc_enter, void *ptr, size_t size)
{
	free_enter((__u64)ptr);
	return alloc_enter(size);
}

SEC("uprobe")
int BPF_KPROBE(free_enter_prog, void *ptr)
{
	return free_enter((__u64)ptr);
}

SEC("uprobe")
int BPF_KPROBE(memalign_enter, size_t align, size_t size)   /* memalign, aligned_alloc */
{
	return alloc_enter(size);
}

SEC("uprobe")
int BPF_KPROBE(valloc_enter, size_t size)                   /* valloc, pvalloc */
{
	return alloc_enter(size);
}

SEC("uprobe")
int BPF_KPROBE(posix_memalign_enter, void **memptr, size_t align, size_t size)
{
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 where = (__u64)memptr;

	bpf_map_update_elem(&memptrs, &tid, &where, BPF_ANY);
	return alloc_enter(size);
}

SEC("uretprobe")
int BPF_KRETPROBE(posix_memalign_exit, int ret)
{
	__u32 tid = bpf_get_current_pid_tgid();
	__u64 *where = bpf_map_lookup_elem(&memptrs, &tid);
	__u64 addr = 0;

	if (!where)
		return 0;
	if (!ret)
		bpf_probe_read_user(&addr, sizeof(addr), (void *)*where);
	bpf_map_delete_elem(&memptrs, &tid);
	return alloc_exit(ctx, addr);
}

char LICENSE[] SEC("license") = "GPL";
