// fileslower: synchronous file reads and writes slower than a threshold, one line each, as bcc's
// fileslower, from kprobes and kretprobes on vfs_read / vfs_write.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"
#include "file_common.h"

const volatile __u64 min_ns = 10000000;   /* bcc's default: 10 ms */

struct io_start {
	__u64 ts;
	__u64 size;
	struct file *file;
	__u32 write;
};

struct slow_event {
	__u64 ts;
	__u64 delta_ns;
	__u64 size;      /* bytes asked for */
	__s64 ret;       /* bytes done, or -errno */
	__u32 pid;
	__u32 tid;
	__u32 write;
	__u32 pad_;
	char comm[16];
	char name[NAME_LEN];
};

BPFKIT_RINGBUF(events, struct slow_event, 1 << 20);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, struct io_start);
} starts SEC(".maps");

__u64 missed = 0;

static __always_inline int enter(struct file *file, __u64 size, __u32 write)
{
	__u32 tid = bpf_get_current_pid_tgid();
	struct io_start s = {.ts = bpf_ktime_get_ns(), .size = size, .file = file, .write = write};

	if (!bpfkit_filter_pass() || !file_wanted(file))
		return 0;
	if (bpf_map_update_elem(&starts, &tid, &s, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
	return 0;
}

static __always_inline int leave(long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tid = id;
	struct io_start *s = bpf_map_lookup_elem(&starts, &tid);
	struct slow_event *e;
	__u64 now, delta;

	if (!s)
		return 0;
	now = bpf_ktime_get_ns();
	delta = now - s->ts;
	if (delta >= min_ns) {
		e = BPFKIT_RESERVE(events);
		if (e) {
			e->ts = now;
			e->delta_ns = delta;
			e->size = s->size;
			e->ret = ret;
			e->pid = id >> 32;
			e->tid = tid;
			e->write = s->write;
			bpf_get_current_comm(e->comm, sizeof(e->comm));
			file_name(s->file, e->name, sizeof(e->name));
			BPFKIT_SUBMIT(events, e);
		}
	}
	bpf_map_delete_elem(&starts, &tid);
	return 0;
}

SEC("kprobe/vfs_read")
int BPF_KPROBE(on_read, struct file *file, char *buf, size_t count)
{
	return enter(file, count, 0);
}

SEC("kprobe/vfs_write")
int BPF_KPROBE(on_write, struct file *file, const char *buf, size_t count)
{
	return enter(file, count, 1);
}

SEC("kretprobe/vfs_read")
int BPF_KRETPROBE(on_read_ret, long ret)
{
	return leave(ret);
}

SEC("kretprobe/vfs_write")
int BPF_KRETPROBE(on_write_ret, long ret)
{
	return leave(ret);
}

char LICENSE[] SEC("license") = "GPL";
