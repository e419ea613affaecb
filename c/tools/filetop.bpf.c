// filetop: reads and writes per process and file, summed in the kernel, as bcc's filetop, from
// kprobes on vfs_read / vfs_write (the bytes asked for, as bcc counts them).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_filter.h"
#include "file_common.h"

struct file_key {
	__u32 pid;
	__u32 tid;
	__u64 ino;
	__u32 dev;
	char type;
	char pad_[3];
	char name[NAME_LEN];
	char comm[16];
};

struct file_val {
	__u64 reads;
	__u64 writes;
	__u64 rbytes;
	__u64 wbytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct file_key);
	__type(value, struct file_val);
} files SEC(".maps");

__u64 missed = 0;

static __always_inline int account(struct file *file, __u64 count, bool write)
{
	struct file_key k = {};
	struct file_val *v, zero = {};
	__u64 id = bpf_get_current_pid_tgid();

	if (!bpfkit_filter_pass() || !file_wanted(file))
		return 0;
	k.pid = id >> 32;
	k.tid = id;
	k.ino = BPF_CORE_READ(file, f_inode, i_ino);
	k.dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
	k.type = file_type(file);
	file_name(file, k.name, sizeof(k.name));
	bpf_get_current_comm(k.comm, sizeof(k.comm));
	v = bpf_map_lookup_elem(&files, &k);
	if (!v) {
		bpf_map_update_elem(&files, &k, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&files, &k);
		if (!v) {
			__sync_fetch_and_add(&missed, 1);
			return 0;
		}
	}
	if (write) {
		__sync_fetch_and_add(&v->writes, 1);
		__sync_fetch_and_add(&v->wbytes, count);
	} else {
		__sync_fetch_and_add(&v->reads, 1);
		__sync_fetch_and_add(&v->rbytes, count);
	}
	return 0;
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(on_read, struct file *file, char *buf, size_t count)
{
	return account(file, count, false);
}

SEC("kprobe/vfs_write")
int BPF_KPROBE(on_write, struct file *file, const char *buf, size_t count)
{
	return account(file, count, true);
}

char LICENSE[] SEC("license") = "GPL";
