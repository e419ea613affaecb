// biosnoop: one line per block I/O with its submitter, disk, direction, sector, size and latency
// (-Q: and its time queued in the OS), as bcc's biosnoop. Block tracepoints only
// (block_common.h); the submitter is the task the request was accounted in.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit.h"
#include "bpfkit_filter.h"
#include "block_common.h"

enum { PATTERN_UNKNOWN, PATTERN_SEQUENTIAL, PATTERN_RANDOM };

struct bio_event {
	__u64 ts;        /* completion, bpf_ktime_get_ns() */
	__u64 delta;     /* issue -> completion, ns */
	__u64 qdelta;    /* accounted -> issue, ns (0: accounting not seen) */
	__u64 sector;
	__u32 len;       /* bytes */
	__u32 pid;       /* submitter (0: not seen) */
	__u32 dev;       /* MKDEV of the disk */
	__u32 flags;     /* cmd_flags: operation and REQ_ flags */
	__u32 pattern;   /* against the disk's previous request (completion order) */
	char comm[16];
	char disk[DISK_NAME_LEN];
};

BPFKIT_RINGBUF(events, struct bio_event, 1 << 20);

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);     /* dev */
	__type(value, __u64);   /* the sector after the last request */
} next_sector SEC(".maps");

SEC("raw_tp/block_io_start")
int BPF_PROG(on_io_start, struct request *rq)
{
	return block_started(rq);
}

SEC("raw_tp/block_rq_insert")
int BPF_PROG(on_insert, struct request *rq)
{
	return block_started(rq);
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(on_issue, struct request *rq)
{
	block_issued(rq);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(on_complete, struct request *rq, blk_status_t error, unsigned int nr_bytes)
{
	/* the key is a copy: the verifier forgets that a stack slot held a kernel pointer once a
	 * helper reads it as a map key (6.1, 6.12), and rq must stay a pointer it can follow */
	__u64 rq_key = (__u64)rq;
	struct rq_start *s = bpf_map_lookup_elem(&starts, &rq_key);
	struct gendisk *disk;
	struct bio_event *e;
	__u64 *next, end;
	__u32 dev;

	if (!s)
		return 0;
	if (!s->issue)
		goto out;
	e = BPFKIT_RESERVE(events);
	if (!e)
		goto out;
	e->ts = bpf_ktime_get_ns();
	e->delta = e->ts - s->issue;
	e->qdelta = s->issue - s->start;
	e->sector = rq->__sector;
	e->len = rq->__data_len;
	e->pid = s->pid;
	e->flags = rq->cmd_flags;
	__builtin_memcpy(e->comm, s->comm, sizeof(e->comm));
	disk = rq->q->disk;
	e->dev = disk ? MKDEV(disk->major, disk->first_minor) : 0;
	if (disk)
		bpf_probe_read_kernel_str(e->disk, sizeof(e->disk), disk->disk_name);
	else
		e->disk[0] = 0;
	end = e->sector + (e->len >> 9);
	dev = e->dev;   /* a key on the stack: before 6.2 a map key may not point into a ring buffer record */
	next = bpf_map_lookup_elem(&next_sector, &dev);
	if (next) {
		e->pattern = *next == e->sector ? PATTERN_SEQUENTIAL : PATTERN_RANDOM;
		*next = end;
	} else {
		e->pattern = PATTERN_UNKNOWN;
		bpf_map_update_elem(&next_sector, &dev, &end, BPF_ANY);
	}
	BPFKIT_SUBMIT(events, e);
out:
	bpf_map_delete_elem(&starts, &rq_key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
