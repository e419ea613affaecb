// filelife: files created and deleted while tracing, with their age, as bcc's filelife, from
// kprobes on security_inode_create (every create path, O_CREAT included, passes it) and vfs_unlink.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"
#include "file_common.h"

struct life_event {
	__u64 ts;
	__u64 age_ns;
	__u32 pid;
	__u32 tid;
	char comm[16];
	char name[NAME_LEN];
};

BPFKIT_RINGBUF(events, struct life_event, 1 << 18);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct dentry *);
	__type(value, __u64);
} births SEC(".maps");

__u64 missed = 0;

SEC("kprobe/security_inode_create")
int BPF_KPROBE(on_create, struct inode *dir, struct dentry *dentry)
{
	__u64 ts = bpf_ktime_get_ns();

	if (!bpfkit_filter_pass())
		return 0;
	if (bpf_map_update_elem(&births, &dentry, &ts, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
	return 0;
}

/* vfs_unlink(idmap or user namespace, dir, dentry, ...): the dentry is the third argument on
 * every kernel since 5.12 */
SEC("kprobe/vfs_unlink")
int BPF_KPROBE(on_unlink, void *ns, struct inode *dir, struct dentry *dentry)
{
	__u64 *born = bpf_map_lookup_elem(&births, &dentry);
	struct life_event *e;
	__u64 id;

	if (!born)
		return 0;
	e = BPFKIT_RESERVE(events);
	if (e) {
		id = bpf_get_current_pid_tgid();
		e->ts = bpf_ktime_get_ns();
		e->age_ns = e->ts - *born;
		e->pid = id >> 32;
		e->tid = id;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		dentry_name(dentry, e->name, sizeof(e->name));
		BPFKIT_SUBMIT(events, e);
	}
	bpf_map_delete_elem(&births, &dentry);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
