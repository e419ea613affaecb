// Loader corpus, shaped like BCC's biolatency: block request issue/complete through BTF
// tracepoints, per-disk histograms keyed by dev_t read with CO-RE through request->q->disk.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#define MAX_SLOTS 27
const volatile bool targ_per_disk = false;
const volatile bool targ_ms = false;
const volatile bool filter_dev = false;
const volatile __u32 targ_dev = 0;

struct hist_key { __u32 dev; __u32 cmd_flags; };
struct hist { __u32 slots[MAX_SLOTS]; };
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, struct request *); __type(value, u64); } start SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 10240); __type(key, struct hist_key); __type(value, struct hist); } hists SEC(".maps");
static struct hist initial_hist;
__u64 completions = 0;

struct request_queue___x { struct gendisk *disk; } __attribute__((preserve_access_index));
struct request___x { struct request_queue___x *q; struct gendisk *rq_disk; } __attribute__((preserve_access_index));

static __always_inline struct gendisk *get_disk(void *request)
{
	struct request___x *r = request;
	if (bpf_core_field_exists(r->rq_disk))
		return BPF_CORE_READ(r, rq_disk);
	return BPF_CORE_READ(r, q, disk);
}

static __always_inline int trace_rq_start(struct request *rq)
{
	if (filter_dev) {
		struct gendisk *disk = get_disk(rq);
		u32 dev = disk ? (BPF_CORE_READ(disk, major) << 20) | BPF_CORE_READ(disk, first_minor) : 0;
		if (targ_dev != dev)
			return 0;
	}
	u64 ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &rq, &ts, 0);
	return 0;
}

SEC("tp_btf/block_rq_insert")
int BPF_PROG(block_rq_insert, struct request *rq) { return trace_rq_start(rq); }

SEC("tp_btf/block_rq_issue")
int BPF_PROG(block_rq_issue, struct request *rq) { return trace_rq_start(rq); }

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, int error, unsigned int nr_bytes)
{
	u64 *tsp = bpf_map_lookup_elem(&start, &rq);
	if (!tsp)
		return 0;
	completions++;
	u64 delta = bpf_ktime_get_ns() - *tsp;
	struct hist_key hkey = {};
	if (targ_per_disk) {
		struct gendisk *disk = get_disk(rq);
		hkey.dev = disk ? (BPF_CORE_READ(disk, major) << 20) | BPF_CORE_READ(disk, first_minor) : 0;
	}
	hkey.cmd_flags = BPF_CORE_READ(rq, cmd_flags);
	struct hist *histp = bpf_map_lookup_elem(&hists, &hkey);
	if (!histp) {
		bpf_map_update_elem(&hists, &hkey, &initial_hist, 0);
		histp = bpf_map_lookup_elem(&hists, &hkey);
		if (!histp)
			goto cleanup;
	}
	delta /= targ_ms ? 1000000U : 1000U;
	u64 slot = 0;
	for (int i = 0; i < 26 && delta > 1; i++) { delta >>= 1; slot++; }
	__sync_fetch_and_add(&histp->slots[slot], 1);
cleanup:
	bpf_map_delete_elem(&start, &rq);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
