// biolatency: block I/O latency as a histogram, from issue (or, -Q, from when the block layer
// accounted the request) to completion; per disk (-D) or per operation and flags (-F), as bcc's
// biolatency. Block tracepoints only (block_common.h).
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_filter.h"
#include "bpfkit_hist.h"
#include "block_common.h"

const volatile bool queued = 0;       /* -Q: from accounting, not from issue */
const volatile bool per_disk = 0;     /* -D */
const volatile bool per_flags = 0;    /* -F */
const volatile bool totals = 0;       /* -e: also count and total per histogram */
const volatile __u64 unit_ns = 1000;  /* usecs; -m: msecs */

struct hkey {
	__u32 dev;
	__u32 flags;
};

BPFKIT_KEYED_LOG2_HIST(hists, struct hkey, 1024);

struct total {
	__u64 count;
	__u64 ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct hkey);
	__type(value, struct total);
} sums SEC(".maps");

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
	struct hkey key = {};
	__u64 delta;

	if (!s)
		return 0;
	if (!s->issue)   /* accounted, never issued (merged away): not an I/O of its own */
		goto out;
	delta = bpf_ktime_get_ns() - (queued ? s->start : s->issue);
	if (per_disk)
		key.dev = rq_dev(rq);
	if (per_flags)
		key.flags = rq->cmd_flags;
	bpfkit_keyed_log2_record(hists, key, delta / unit_ns);
	if (totals) {
		struct total *t = bpf_map_lookup_elem(&sums, &key);

		if (!t) {
			struct total zero = {};

			bpf_map_update_elem(&sums, &key, &zero, BPF_NOEXIST);
			t = bpf_map_lookup_elem(&sums, &key);
		}
		if (t) {
			__sync_fetch_and_add(&t->count, 1);
			__sync_fetch_and_add(&t->ns, delta);
		}
	}
out:
	bpf_map_delete_elem(&starts, &rq_key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
