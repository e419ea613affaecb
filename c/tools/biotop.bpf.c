// biotop: block I/O by process, disk and direction — count, bytes, total latency — summed in the
// kernel and printed as a top table every interval, as bcc's biotop. Block tracepoints only
// (block_common.h); the process is the one the request was accounted in.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "bpfkit_filter.h"
#include "block_common.h"

struct io_key {
	__u32 pid;
	__u32 dev;
	__u32 write;
	char comm[16];
};

struct io_val {
	__u64 bytes;
	__u64 ns;
	__u64 io;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, struct io_key);
	__type(value, struct io_val);
} counts SEC(".maps");

__u64 full = 0;   /* I/Os not counted: `counts` was full */

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
	struct io_key key = {};
	struct io_val *v;

	if (!s)
		return 0;
	if (!s->issue)
		goto out;
	key.pid = s->pid;
	key.dev = rq_dev(rq);
	key.write = rq_is_write(rq);
	__builtin_memcpy(key.comm, s->comm, sizeof(key.comm));
	v = bpf_map_lookup_elem(&counts, &key);
	if (!v) {
		struct io_val zero = {};

		bpf_map_update_elem(&counts, &key, &zero, BPF_NOEXIST);
		v = bpf_map_lookup_elem(&counts, &key);
		if (!v) {
			__sync_fetch_and_add(&full, 1);
			goto out;
		}
	}
	__sync_fetch_and_add(&v->bytes, rq->__data_len);
	__sync_fetch_and_add(&v->ns, bpf_ktime_get_ns() - s->issue);
	__sync_fetch_and_add(&v->io, 1);
out:
	bpf_map_delete_elem(&starts, &rq_key);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
