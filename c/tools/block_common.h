/* What the block tools (biolatency, biosnoop, biotop, bitesize) share: the request being timed,
 * keyed by its `struct request *` from the moment the block layer accounts it (block_io_start,
 * 6.5+, where bcc's kprobe on blk_account_io_start sat; block_rq_insert before that) or issues it
 * to the driver (block_rq_issue) to its completion (block_rq_complete).
 *
 * The hot path (issue, complete) is tp_btf: the request's fields are read directly. The start
 * program is a raw_tp, which only uses the pointer as a key, so that the object also loads on
 * kernels without block_io_start (the Python side attaches whichever exists). */
#ifndef __BPFKIT_BLOCK_COMMON_H
#define __BPFKIT_BLOCK_COMMON_H

#define DISK_NAME_LEN 32
#define MKDEV(ma, mi) (((__u32)(ma) << 20) | (__u32)(mi))
#define REQ_OP_MASK_ 0xff
#define REQ_OP_WRITE_ 1

const volatile __u32 filter_dev = 0;   /* -d DISK: this whole disk only (MKDEV), 0: any */
const volatile bool scoped = 0;        /* a scope is set: only requests the start program saw count */
const volatile bool want_submitter = 1; /* record the submitter's pid and comm (biolatency does not) */
const volatile bool start_attached = 1; /* the start program runs: an issued request may have an entry */

struct rq_start {
	__u64 start;   /* accounted (io_start/insert), or issued when the queue time is not wanted */
	__u64 issue;   /* issued to the driver (0: not yet) */
	__u32 pid;     /* the submitter (0: not seen) */
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct request *);
	__type(value, struct rq_start);
} starts SEC(".maps");

__u64 missed = 0;   /* requests not timed: `starts` was full */

static __always_inline __u32 rq_dev(struct request *rq)
{
	struct gendisk *disk = rq->q->disk;

	return disk ? MKDEV(disk->major, disk->first_minor) : 0;
}

static __always_inline bool rq_is_write(struct request *rq)
{
	return (rq->cmd_flags & REQ_OP_MASK_) == REQ_OP_WRITE_;
}

/* The request was accounted: remember when and by whom, if it is in the scope. */
static __always_inline int block_started(struct request *rq)
{
	__u64 key = (__u64)rq;   /* a copy as the key: see biolatency.bpf.c's on_complete */
	struct rq_start s = {};

	if (!bpfkit_filter_pass())
		return 0;
	s.start = bpf_ktime_get_ns();
	if (want_submitter) {
		s.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(s.comm, sizeof(s.comm));
	}
	if (bpf_map_update_elem(&starts, &key, &s, BPF_ANY))
		__sync_fetch_and_add(&missed, 1);
	return 0;
}

/* The request was issued: its entry (NULL when it is not traced, or the entry was made here).
 * Without the start program, the entry is made here, with the issuing task as the submitter. */
static __always_inline struct rq_start *block_issued(struct request *rq)
{
	__u64 key = (__u64)rq;
	struct rq_start *s;
	__u64 now;

	if (filter_dev && rq_dev(rq) != filter_dev)
		return NULL;
	now = bpf_ktime_get_ns();
	s = start_attached ? bpf_map_lookup_elem(&starts, &key) : NULL;
	if (!s) {
		struct rq_start fresh = {};

		/* scoped, a request the start program did not see is out of scope (or older than
		 * us); otherwise it is timed from here, the issuing task standing for its submitter */
		if (scoped)
			return NULL;
		fresh.start = now;
		fresh.issue = now;
		if (want_submitter) {
			fresh.pid = bpf_get_current_pid_tgid() >> 32;
			bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
		}
		/* one map operation on the hot path, as for a plain timestamp */
		if (bpf_map_update_elem(&starts, &key, &fresh, BPF_ANY))
			__sync_fetch_and_add(&missed, 1);
		return NULL;
	}
	s->issue = now;
	return s;
}

#endif
