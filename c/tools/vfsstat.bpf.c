// vfsstat: VFS calls per second — read, write, fsync, open, create — as bcc's vfsstat, from
// kprobes on the vfs_* functions (the VFS has no tracepoints). Optionally scoped.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_filter.h"

enum { S_READ, S_WRITE, S_FSYNC, S_OPEN, S_CREATE, S_MAX };

__u64 counts[S_MAX] = {};

static __always_inline int count(int i)
{
	if (bpfkit_filter_pass())
		__sync_fetch_and_add(&counts[i], 1);
	return 0;
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(on_read)
{
	return count(S_READ);
}

SEC("kprobe/vfs_write")
int BPF_KPROBE(on_write)
{
	return count(S_WRITE);
}

SEC("kprobe/vfs_fsync_range")
int BPF_KPROBE(on_fsync)
{
	return count(S_FSYNC);
}

SEC("kprobe/vfs_open")
int BPF_KPROBE(on_open)
{
	return count(S_OPEN);
}

SEC("kprobe/vfs_create")
int BPF_KPROBE(on_create)
{
	return count(S_CREATE);
}

char LICENSE[] SEC("license") = "GPL";
